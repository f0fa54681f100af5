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
/** Requests kept on a chain's stream; a subscriber far enough behind to lose some has bigger problems. */
const REPLAY_STREAM_MAX_LENGTH = 10_000

export interface ReplayRequest {
  replayId: string
  watchId: string
  fromBlock: number
  toBlock: number
}

export async function requestReplay(redis: Redis, keys: RedisKeys, chain: string, range: Omit<ReplayRequest, 'replayId'>): Promise<string> {
  const replayId = newId('rpl')
  await redis.xadd(
    keys.chainReplays(chain), 'MAXLEN', '~', REPLAY_STREAM_MAX_LENGTH, '*',
    'replayId', replayId, 'watchId', range.watchId, 'fromBlock', String(range.fromBlock), 'toBlock', String(range.toBlock),
  )
  return replayId
}

/** A stream entry's fields (`[name, value, …]`) as a request, or undefined when they are not one. */
export function parseReplayRequest(fields: readonly string[]): ReplayRequest | undefined {
  const entry: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!
  const fromBlock = Number(entry.fromBlock)
  const toBlock = Number(entry.toBlock)
  if (!entry.replayId?.startsWith('rpl_') || !entry.watchId?.startsWith('wch_')) return undefined
  if (!Number.isSafeInteger(fromBlock) || !Number.isSafeInteger(toBlock) || fromBlock < 0 || toBlock < fromBlock) return undefined
  if (toBlock - fromBlock + 1 > MAX_REPLAY_BLOCKS) return undefined
  return { replayId: entry.replayId, watchId: entry.watchId, fromBlock, toBlock }
}
