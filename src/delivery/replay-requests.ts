/**
 * Replay requests (POST /watches/:id/replay) and `fromBlock` backfills, queued for the subscriber
 * of the watch's chain, which scans each range again and queues every match with
 * `deliveryQueue.enqueue(events, { replayId })`, so each one goes out again under the
 * `webhook-id` it had (README, "Replays").
 *
 * Nothing accepted is dropped: a request is a hash of its own (`keys.replay`) with its progress,
 * on its tenant's list for the chain; the chain keeps a list of the tenants with work, which the
 * subscriber turns round one chunk of blocks at a time, so one tenant's hundred long replays
 * delay another tenant's short one by one chunk per turn, not by their length. A tenant's
 * unfinished work is bounded instead (`MAX_PENDING_REPLAY_BLOCKS`, `MAX_PENDING_REPLAYS`): past
 * it, a replay is refused with 429. Backfills count towards it but are never refused, since they
 * belong to a watch change already made.
 */
import type { RedisClient } from '../storage/redis.js'
import { BlockhookError } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import type { RedisKeys } from '../storage/keys.js'
import { acceptReplay, advanceReplay, dropIdleReplayTenant } from '../storage/redis-scripts.js'

/** Widest range one request may scan (inclusive), so one call cannot make a subscriber rescan a chain. */
export const MAX_REPLAY_BLOCKS = 10_000
/** How far behind the head a `fromBlock` backfill may start (README, "Concepts"). */
export const MAX_BACKFILL_DEPTH = 10_000
/** Blocks a tenant's unfinished replays and backfills may still have to scan before a new replay is refused. */
export const MAX_PENDING_REPLAY_BLOCKS = 100_000
/** Unfinished replays and backfills of a tenant before a new replay is refused. */
export const MAX_PENDING_REPLAYS = 100
/** Blocks the subscriber scans per turn: the most one tenant's turn holds up the next tenant's. */
export const REPLAY_CHUNK_BLOCKS = 50
/** How long a finished request's progress can still be read. */
const FINISHED_KEPT_MS = 7 * 24 * 60 * 60 * 1000

export type ReplayStatus = 'queued' | 'running' | 'completed'

export interface ReplayRequest {
  replayId: string
  watchId: string
  tenantId: string
  chain: string
  fromBlock: number
  toBlock: number
  /**
   * A `fromBlock` backfill (POST /watches, PATCH /watches/:id/addresses) rather than a replay:
   * only matches without a delivery record are queued (like live ones, nothing is sent twice),
   * each block waits until it is confirmed for the watch (the follower will not deliver those
   * blocks: they are before the watch's start or were matched without the added addresses), and
   * with `addresses` only the matches that these added addresses brought are kept.
   */
  backfill?: { addresses?: string[] }
}

/** A request with how far it got. */
export interface ReplayProgress extends ReplayRequest {
  status: ReplayStatus
  /** The next block to scan; `toBlock + 1` once every block is scanned. */
  nextBlock: number
  /** Matches queued for delivery so far. */
  eventsQueued: number
  createdAt: string
  updatedAt: string
  completedAt: string | null
}

export type NewReplay = Omit<ReplayRequest, 'replayId'>

function parseAddresses(text: string | undefined): string[] | undefined | false {
  if (text === undefined) return undefined
  try {
    const list: unknown = JSON.parse(text)
    return Array.isArray(list) && list.every((a) => typeof a === 'string') ? list as string[] : false
  } catch {
    return false // not JSON: the hash is malformed, and the caller skips it with a log line
  }
}

const STATUSES: readonly ReplayStatus[] = ['queued', 'running', 'completed']

/** A request's hash as progress, or undefined when it is not one (gone, or not written by blockhook). */
export function parseReplay(hash: Record<string, string>): ReplayProgress | undefined {
  const [fromBlock, toBlock, nextBlock, eventsQueued] = [hash.fromBlock, hash.toBlock, hash.nextBlock, hash.eventsQueued].map(Number)
  if (!hash.replayId?.startsWith('rpl_') || !hash.watchId?.startsWith('wch_') || !hash.tenantId || !hash.chain) return undefined
  if (![fromBlock, toBlock, nextBlock, eventsQueued].every((n) => Number.isSafeInteger(n) && n! >= 0)) return undefined
  if (toBlock! < fromBlock! || toBlock! - fromBlock! + 1 > (hash.backfill === '1' ? MAX_BACKFILL_DEPTH + 1 : MAX_REPLAY_BLOCKS)) return undefined
  const status = STATUSES.find((s) => s === hash.status)
  if (!status || !hash.createdAt || !hash.updatedAt) return undefined
  const progress: ReplayProgress = {
    replayId: hash.replayId, watchId: hash.watchId, tenantId: hash.tenantId, chain: hash.chain,
    fromBlock: fromBlock!, toBlock: toBlock!, status, nextBlock: nextBlock!, eventsQueued: eventsQueued!,
    createdAt: hash.createdAt, updatedAt: hash.updatedAt, completedAt: hash.completedAt || null,
  }
  if (hash.backfill !== '1') return progress
  const addresses = parseAddresses(hash.addresses)
  if (addresses === false) return undefined
  return { ...progress, backfill: addresses ? { addresses } : {} }
}

export const replayQuotaExceeded = (pending: { blocks: number; replays: number }) => new BlockhookError(
  'BH_REPLAY_QUOTA_EXCEEDED',
  `the tenant's unfinished replays already hold ${pending.replays} requests and ${pending.blocks} blocks to scan `
    + `(at most ${MAX_PENDING_REPLAYS} and ${MAX_PENDING_REPLAY_BLOCKS}); try again once one has completed`,
  429,
)

export class ReplayQueue {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  /**
   * Queues a request and returns its id. A replay beyond the tenant's quota is refused (429);
   * a backfill always goes in.
   */
  async request(request: NewReplay, nowMs = Date.now()): Promise<string> {
    const replayId = newId('rpl')
    const now = new Date(nowMs).toISOString()
    const fields: Record<string, string | number> = {
      replayId, watchId: request.watchId, tenantId: request.tenantId, chain: request.chain,
      fromBlock: request.fromBlock, toBlock: request.toBlock, nextBlock: request.fromBlock, eventsQueued: 0,
      status: 'queued', createdAt: now, updatedAt: now,
      ...(request.backfill && { backfill: '1' }),
      ...(request.backfill?.addresses && { addresses: JSON.stringify(request.backfill.addresses) }),
    }
    const refused = await acceptReplay(this.#redis, {
      ...this.#queueKeys(request.chain, request.tenantId), replay: this.#keys.replay(replayId),
      replayId, tenantId: request.tenantId, blocks: request.toBlock - request.fromBlock + 1,
      limits: request.backfill ? undefined : { blocks: MAX_PENDING_REPLAY_BLOCKS, replays: MAX_PENDING_REPLAYS },
      fields,
    })
    if (refused) throw replayQuotaExceeded(refused)
    return replayId
  }

  async get(replayId: string): Promise<ReplayProgress | undefined> {
    return parseReplay(await this.#redis.hgetall(this.#keys.replay(replayId)))
  }

  /**
   * The chain's next turn: the tenant after the last one served, and the first request on its
   * list. Waits up to `timeoutSec` on `blocking` (a connection of its own) while no tenant has
   * work. `tenants` is how many have work, so a caller knows when a whole round was idle.
   */
  async nextTurn(blocking: RedisClient, chain: string, timeoutSec: number): Promise<{ tenantId: string; replayId: string | undefined; tenants: number } | undefined> {
    const tenants = this.#keys.chainReplayTenants(chain)
    const tenantId = await blocking.blmove(tenants, tenants, 'LEFT', 'RIGHT', timeoutSec)
    if (tenantId === null) return undefined
    const [[, replayId], [, count]] = (await this.#redis.multi().lindex(this.#keys.tenantReplays(tenantId, chain), 0).llen(tenants).exec()) as [
      [null, string | null], [null, number],
    ]
    if (replayId === null) await dropIdleReplayTenant(this.#redis, { ...this.#queueKeys(chain, tenantId), tenantId })
    return { tenantId, replayId: replayId ?? undefined, tenants: count }
  }

  /**
   * Records that every block before `nextBlock` is scanned and `events` more matches queued;
   * with `finished`, the request is done (its remaining blocks, if any, need no scan) and leaves
   * the queue. Only forward: a second subscriber redoing a chunk changes nothing.
   */
  async advance(replay: Pick<ReplayRequest, 'replayId' | 'tenantId' | 'chain'>, nextBlock: number, events: number, finished: boolean, nowMs = Date.now()): Promise<void> {
    await advanceReplay(this.#redis, {
      ...this.#queueKeys(replay.chain, replay.tenantId), replay: this.#keys.replay(replay.replayId),
      replayId: replay.replayId, tenantId: replay.tenantId, nextBlock, events, finished, now: new Date(nowMs).toISOString(),
      keptMs: FINISHED_KEPT_MS,
    })
  }

  #queueKeys(chain: string, tenantId: string) {
    return {
      quota: this.#keys.tenantReplayQuota(tenantId), queue: this.#keys.tenantReplays(tenantId, chain),
      tenants: this.#keys.chainReplayTenants(chain),
    }
  }
}
