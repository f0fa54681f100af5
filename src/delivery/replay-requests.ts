/**
 * POST /watches/:id/replay asks the subscriber of the watch's chain to scan a block range again:
 * a request is an entry on the chain's replay stream (`keys.chainReplays`), and the subscriber
 * queues every match with `deliveryQueue.enqueue(events, { replayId })`, so each one goes out
 * again under the `webhook-id` it had.
 */
import type { Redis } from 'ioredis'
import { newId } from '../domain/ids.js'
import type { RedisKeys } from '../storage/keys.js'

/** Widest range one request may scan (inclusive), so one call cannot make a subscriber rescan a chain. */
export const MAX_REPLAY_BLOCKS = 10_000
/** How far behind the head a `fromBlock` backfill may start (README, "Concepts"). */
export const MAX_BACKFILL_DEPTH = 10_000
/** Requests kept on a chain's stream; a subscriber far enough behind to lose some has bigger problems. */
const REPLAY_STREAM_MAX_LENGTH = 10_000

export interface ReplayRequest {
  replayId: string
  watchId: string
  fromBlock: number
  toBlock: number
  /**
   * A `fromBlock` backfill (POST /watches, PATCH /watches/:id/addresses) rather than a replay:
   * only matches without a delivery record are queued (like live ones, nothing is sent twice),
   * the scan waits until `toBlock` is confirmed for the watch (the follower will not deliver those
   * blocks: they are before the watch's start or were matched without the added addresses), and
   * with `addresses` only the matches that these added addresses brought are kept.
   */
  backfill?: { addresses?: string[] }
}

export async function requestReplay(redis: Redis, keys: RedisKeys, chain: string, range: Omit<ReplayRequest, 'replayId'>): Promise<string> {
  const replayId = newId('rpl')
  const backfill = range.backfill
    ? ['backfill', '1', ...(range.backfill.addresses ? ['addresses', JSON.stringify(range.backfill.addresses)] : [])]
    : []
  await redis.xadd(
    keys.chainReplays(chain), 'MAXLEN', '~', REPLAY_STREAM_MAX_LENGTH, '*',
    'replayId', replayId, 'watchId', range.watchId, 'fromBlock', String(range.fromBlock), 'toBlock', String(range.toBlock), ...backfill,
  )
  return replayId
}

function parseAddresses(text: string | undefined): string[] | undefined | false {
  if (text === undefined) return undefined
  try {
    const list: unknown = JSON.parse(text)
    return Array.isArray(list) && list.every((a) => typeof a === 'string') ? list as string[] : false
  } catch {
    return false // not JSON: the entry is malformed, and the caller skips it with a log line
  }
}

/** A stream entry's fields (`[name, value, …]`) as a request, or undefined when they are not one. */
export function parseReplayRequest(fields: readonly string[]): ReplayRequest | undefined {
  const entry: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!
  const fromBlock = Number(entry.fromBlock)
  const toBlock = Number(entry.toBlock)
  if (!entry.replayId?.startsWith('rpl_') || !entry.watchId?.startsWith('wch_')) return undefined
  if (!Number.isSafeInteger(fromBlock) || !Number.isSafeInteger(toBlock) || fromBlock < 0 || toBlock < fromBlock) return undefined
  if (toBlock - fromBlock + 1 > (entry.backfill === '1' ? MAX_BACKFILL_DEPTH + 1 : MAX_REPLAY_BLOCKS)) return undefined
  const request: ReplayRequest = { replayId: entry.replayId, watchId: entry.watchId, fromBlock, toBlock }
  if (entry.backfill !== '1') return request
  const addresses = parseAddresses(entry.addresses)
  if (addresses === false) return undefined
  return { ...request, backfill: addresses ? { addresses } : {} }
}
