/**
 * Delivery records in Redis and every change of their status, each one script (a named command of
 * src/storage/redis-scripts.ts) so the record, the watch's pending set and the watch's stats move
 * together. Status changes only leave `pending` (or return to it on a replay or a manual retry),
 * so a worker finishing an attempt after the delivery was cancelled records the attempt but does
 * not resurrect it.
 *
 * A watch's pending set is a sorted set scored by when each delivery became pending (Unix ms), and
 * the oldest-pending index (`keys.oldestPending`) holds each watch that has pending deliveries,
 * scored by its oldest or earlier: the operator's backlog alert reads the old ones from there,
 * with no scan of the watches (`watchesPendingSince`, `refreshOldestPending`).
 *
 * Stats (`keys.watchStats`): `matched` and `delivered`/`failed` count events and final outcomes,
 * `pending` is how many are pending now. They are touched only while the watch exists, so a late
 * write cannot recreate a deleted watch's stats.
 */
import type { Redis } from 'ioredis'
import { BlockhookError } from '../domain/errors.js'
import type { RedisKeys } from '../storage/keys.js'
import {
  cancelPendingDelivery, recordDeliveryAttempt, refreshOldestPending, requeueFailedDelivery, storeDeliveries, takeNextOrdered,
  type DeliveryRecordKeys,
} from '../storage/redis-scripts.js'
import { MINUTE_RETENTION_MS, minuteIncrements, minuteOf } from './delivery-minutes.js'
import { attemptJson, eventLocation, payloadJson, recordFromHash, type DeliveryAttempt, type DeliveryRecord, type DeliveryStatus, type MatchedEvent } from './delivery-record.js'

/** Attempts kept on one record (replays and manual retries add more); the oldest go first. */
export const MAX_ATTEMPTS_KEPT = 50
export const MAX_LIST_LIMIT = 100
/** Records one list request reads at most, however few match its status filter. */
const MAX_SCANNED_PER_LIST = 1_000

export const deliveryNotFound = () => new BlockhookError('BH_DELIVERY_NOT_FOUND', 'delivery not found', 404)

/** Events per store script call: bounds how long one call holds Redis (~5 ms at ~25 µs per event). */
const STORE_BATCH = 200

/** How long a record, and its payload, are kept once final (see the delivery config). */
export interface DeliveryRetention {
  payloadRetentionMs: number
  recordRetentionMs: number
  failedRetentionMs: number
}

export type AttemptOutcome = 'delivered' | 'retrying' | 'failed'

export interface StoredRecord {
  /** `held`: an ordered watch's record that waits for an earlier one, so no job for now. */
  /** `streamed`: a watch without a url, whose event went to the event log only. */
  outcome: 'new' | 'replayed' | 'held' | 'streamed' | DeliveryStatus
  jobId: string
}

export interface DeliveryListQuery {
  status?: DeliveryStatus
  limit: number
  cursor?: string
}

/** Position in a watch's log, newest first: the score reached and how many of that score were passed. */
interface LogPosition {
  score: number
  passed: number
}

function encodeCursor(position: LogPosition): string {
  return Buffer.from(`${position.score}:${position.passed}`).toString('base64url')
}

function decodeCursor(cursor: string): LogPosition {
  const [score, passed] = Buffer.from(cursor, 'base64url').toString('utf8').split(':').map(Number)
  if (!Number.isSafeInteger(score) || !Number.isSafeInteger(passed) || passed! < 0) {
    throw new BlockhookError('BH_INVALID_CURSOR', 'querystring/cursor is not a cursor this API returned', 400)
  }
  return { score: score!, passed: passed! }
}

export class DeliveryStore {
  readonly #redis: Redis
  readonly #keys: RedisKeys
  readonly #retention: DeliveryRetention & { retryScheduleMs: readonly number[] }
  readonly #eventLogRetentionMs: number

  constructor(redis: Redis, keys: RedisKeys, retention: DeliveryRetention & { retryScheduleMs: readonly number[] }, eventLogRetentionMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#retention = retention
    this.#eventLogRetentionMs = eventLogRetentionMs
  }

  /**
   * A watch's log is scored by creation time and holds an id as long as its record may live: the
   * longest retention (a failed one's), after as long as its retries may take.
   */
  get #logRetentionMs(): number {
    const { recordRetentionMs, failedRetentionMs, retryScheduleMs } = this.#retention
    return Math.max(recordRetentionMs, failedRetentionMs) + retryScheduleMs.reduce((sum, ms) => sum + ms, 0)
  }

  /** Stores each event once (see delivery-queue.ts); with `replayJobIds`, finished records go back to pending. */
  async storeMatched(events: readonly MatchedEvent[], replayJobIds: readonly string[] | undefined, nowMs: number): Promise<StoredRecord[]> {
    const k = this.#keys
    const createdAt = new Date(nowMs).toISOString()
    const calls: Promise<{ outcome: string; jobId: string }[]>[] = []
    // One script per batch, not per event: the per-call cost (script lookup, argument conversion,
    // a reply each) was a third of Redis's time per event. The calls go out back to back.
    for (let from = 0; from < events.length; from += STORE_BATCH) {
      calls.push(storeDeliveries(this.#redis, {
        oldestPending: k.oldestPending, createdAt, nowMs, eventLogRetentionMs: this.#eventLogRetentionMs,
        events: events.slice(from, from + STORE_BATCH).map((e, i) => ({
          keys: {
            ...this.#recordKeys(e.id, e.watchId), sequence: k.watchSequence(e.watchId), log: k.watchDeliveries(e.watchId),
            eventLog: k.tenantEventLog(e.tenantId), ordered: k.watchOrderedDeliveries(e.watchId), streamOnlyMarker: k.streamOnlyEvent(e.id),
          },
          args: {
            id: e.id, watchId: e.watchId, tenantId: e.tenantId, chain: e.chain, type: e.type, payload: payloadJson(e),
            firstSeenAt: e.firstSeenAt, replayJobId: replayJobIds?.[from + i] ?? '', ...eventLocation(e.data),
            ordered: e.ordered === true, streamOnly: e.streamOnly === true,
          },
        })),
      }))
    }
    return (await Promise.all(calls)).flat().map(({ outcome, jobId }) => ({ outcome: outcome as StoredRecord['outcome'], jobId }))
  }

  #recordKeys(deliveryId: string, watchId: string): DeliveryRecordKeys {
    const k = this.#keys
    return {
      record: k.delivery(deliveryId), payload: k.deliveryPayload(deliveryId),
      pending: k.watchPendingDeliveries(watchId), stats: k.watchStats(watchId), watch: k.watch(watchId),
    }
  }

  /**
   * failed → pending under `jobId`. Returns the status it had (`held`: it was failed, and waits
   * behind an earlier delivery of its ordered watch), undefined when there is no record.
   */
  async requeueFailed(deliveryId: string, watchId: string, jobId: string, nowMs: number): Promise<DeliveryStatus | 'held' | undefined> {
    const previous = await requeueFailedDelivery(this.#redis, {
      keys: this.#recordKeys(deliveryId, watchId), ordered: this.#keys.watchOrderedDeliveries(watchId), oldestPending: this.#keys.oldestPending,
      deliveryId, watchId, jobId, nowMs,
    })
    return (previous ?? undefined) as DeliveryStatus | 'held' | undefined
  }

  /**
   * Takes a finished delivery out of its ordered watch's set; returns the next one to send with
   * its job id, if any. Idempotent: a second call for the same id just names the current first.
   */
  async nextOrdered(watchId: string, finishedId: string): Promise<{ deliveryId: string; jobId: string } | undefined> {
    const next = await takeNextOrdered(this.#redis, { ordered: this.#keys.watchOrderedDeliveries(watchId), finishedId })
    if (next === undefined) return undefined
    const jobId = await this.#redis.hget(this.#keys.delivery(next), 'jobId')
    return { deliveryId: next, jobId: jobId ?? next }
  }

  /** A watch's ordered set goes with its deliveries (they are cancelled). */
  async forgetOrdered(watchId: string): Promise<void> {
    await this.#redis.del(this.#keys.watchOrderedDeliveries(watchId))
  }

  /** pending → cancelled; returns the job id to remove from the queue, undefined if it was not pending. */
  async cancel(deliveryIds: readonly string[], watchId: string): Promise<string[]> {
    const { recordRetentionMs, payloadRetentionMs } = this.#retention
    const jobIds = await Promise.all(deliveryIds.map((id) => cancelPendingDelivery(this.#redis, {
      keys: this.#recordKeys(id, watchId), deliveryId: id, recordRetentionMs, payloadRetentionMs,
    })))
    return jobIds.filter((jobId): jobId is string => jobId !== null)
  }

  /** After a watch is disabled its failure streak starts again, so re-enabling it gives it a full `disableAfterMs`. */
  async clearFailingSince(watchId: string): Promise<void> {
    await this.#redis.del(this.#keys.watchFailingSince(watchId))
  }

  /** Pages through the ids of a watch's pending deliveries. */
  async scanPending(watchId: string, cursor: string): Promise<[next: string, ids: string[]]> {
    const [next, flat] = await this.#redis.zscan(this.#keys.watchPendingDeliveries(watchId), cursor, 'COUNT', 500)
    return [next, flat.filter((_, i) => i % 2 === 0)]
  }

  /**
   * Watches whose oldest pending delivery became pending at or before `atOrBeforeMs`, from the
   * oldest-pending index: at most `limit` of its entries are read (each put right
   * first), so the cost follows the answer, not the number of watches or deliveries. `complete`
   * is false when entries were left unread.
   */
  async watchesPendingSince(atOrBeforeMs: number, limit: number): Promise<{ watches: { watchId: string; oldestPendingAtMs: number }[]; complete: boolean }> {
    const flat = await this.#redis.zrangebyscore(this.#keys.oldestPending, '-inf', atOrBeforeMs, 'LIMIT', 0, limit + 1)
    const ids = flat.slice(0, limit)
    const oldest = await Promise.all(ids.map((watchId) => this.refreshOldestPending(watchId)))
    const watches = ids.flatMap((watchId, i) => {
      const oldestPendingAtMs = oldest[i]
      return oldestPendingAtMs !== undefined && oldestPendingAtMs <= atOrBeforeMs ? [{ watchId, oldestPendingAtMs }] : []
    })
    return { watches, complete: flat.length <= limit }
  }

  /** Sets the watch's entry in the oldest-pending index from its pending set; returns its oldest (ms), if any. */
  async refreshOldestPending(watchId: string): Promise<number | undefined> {
    return refreshOldestPending(this.#redis, { oldest: this.#keys.oldestPending, pending: this.#keys.watchPendingDeliveries(watchId), watchId })
  }

  /**
   * Records an attempt; for a pending record also its outcome, and counts it in the watch's minute
   * (with `latencyMs`, event to delivery, when it is a first-time delivery). Returns the status
   * after, and since when (Unix ms) the watch's deliveries have been failing, if they are.
   */
  async recordAttempt(
    record: Pick<DeliveryRecord, 'id' | 'watchId'>,
    attempt: DeliveryAttempt,
    outcome: AttemptOutcome,
    nextAttemptAt: string | null,
    failing: { ttlMs: number; counts: boolean },
    nowMs: number,
    latencyMs?: number,
  ): Promise<{ status: DeliveryStatus | undefined; failingSinceMs: number | undefined }> {
    const r = this.#retention
    // A failed record keeps its payload as long as itself, so POST /deliveries/:id/retry still has a body to send.
    const [recordRetentionMs, payloadRetentionMs] = outcome === 'failed'
      ? [r.failedRetentionMs, r.failedRetentionMs]
      : [r.recordRetentionMs, r.payloadRetentionMs]
    const [status, failingSince] = await recordDeliveryAttempt(this.#redis, {
      keys: this.#recordKeys(record.id, record.watchId),
      failingSince: this.#keys.watchFailingSince(record.watchId),
      log: this.#keys.watchDeliveries(record.watchId),
      minute: this.#keys.watchMinute(record.watchId, minuteOf(nowMs)),
      minuteRetentionMs: MINUTE_RETENTION_MS,
      minuteIncrements: minuteIncrements(outcome === 'delivered' ? 'delivered' : 'failed', latencyMs),
      attempt: {
        deliveryId: record.id, attemptJson: attemptJson(attempt), attemptAt: attempt.at, outcome, nextAttemptAt: nextAttemptAt ?? '', nowMs,
        recordRetentionMs, payloadRetentionMs, maxAttemptsKept: MAX_ATTEMPTS_KEPT,
        failingTtlMs: failing.ttlMs, failureCounts: failing.counts, logRetentionMs: this.#logRetentionMs,
      },
    })
    return { status: (status ?? undefined) as DeliveryStatus | undefined, failingSinceMs: failingSince === null ? undefined : Number(failingSince) }
  }

  async get(deliveryId: string): Promise<DeliveryRecord | undefined> {
    return (await this.getMany([deliveryId]))[0]
  }

  /** Records in the order of `ids`, undefined where there is none (past its retention). */
  async getMany(ids: readonly string[]): Promise<(DeliveryRecord | undefined)[]> {
    if (ids.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const id of ids) pipeline.hgetall(this.#keys.delivery(id)).get(this.#keys.deliveryPayload(id))
    const replies = ((await pipeline.exec()) ?? []).map(([err, reply]) => {
      if (err) throw err
      return reply
    })
    return ids.map((_, i) => recordFromHash(replies[2 * i] as Record<string, string>, replies[2 * i + 1] as string | null))
  }

  /** Another tenant's delivery reads as not found. */
  async getForTenant(tenantId: string, deliveryId: string): Promise<DeliveryRecord> {
    const record = await this.get(deliveryId)
    if (!record || record.tenantId !== tenantId) throw deliveryNotFound()
    return record
  }

  /**
   * A watch's deliveries, newest first. Records past their retention are gone and skipped. The
   * cursor is a position (score, how many of that score were passed), stable while new
   * deliveries arrive, since they sort before it. A page may hold fewer than `limit` items and
   * still have a next cursor when a status filter matched few of the records read.
   */
  async listByWatch(watchId: string, query: DeliveryListQuery): Promise<{ items: DeliveryRecord[]; nextCursor: string | null }> {
    const key = this.#keys.watchDeliveries(watchId)
    const limit = Math.min(Math.max(query.limit, 1), MAX_LIST_LIMIT)
    const items: DeliveryRecord[] = []
    let position = query.cursor ? decodeCursor(query.cursor) : undefined
    const page = Math.max(limit, MAX_LIST_LIMIT)
    for (let scanned = 0; ; scanned += page) {
      // Bounded work per request: a status filter that matches little returns a short page and a cursor.
      if (scanned >= MAX_SCANNED_PER_LIST && position) return { items, nextCursor: encodeCursor(position) }
      const max = position ? String(position.score) : '+inf'
      const reply = await this.#redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', position?.passed ?? 0, page)
      if (reply.length === 0) return { items, nextCursor: null }
      const entries: { id: string; score: number }[] = []
      for (let i = 0; i + 1 < reply.length; i += 2) entries.push({ id: reply[i]!, score: Number(reply[i + 1]) })
      const records = await this.getMany(entries.map(({ id }) => id))
      for (const [i, { score }] of entries.entries()) {
        position = { score, passed: position && position.score === score ? position.passed + 1 : 1 }
        const record = records[i]
        if (!record || (query.status && record.status !== query.status)) continue
        items.push(record)
        if (items.length === limit) {
          const more = i + 1 < entries.length || entries.length === page
          return { items, nextCursor: more ? encodeCursor(position) : null }
        }
      }
      if (entries.length < page) return { items, nextCursor: null }
    }
  }
}
