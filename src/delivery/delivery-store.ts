/**
 * Delivery records in Redis and every change of their status, each one script (a named command of
 * src/storage/redis-scripts.ts) so the record, the watch's pending set and the watch's stats move
 * together. Status changes only leave `pending` (or return to it on a replay or a manual retry),
 * so a worker finishing an attempt after the delivery was cancelled records the attempt but does
 * not resurrect it.
 *
 * Stats (`keys.watchStats`): `matched` and `delivered`/`failed` count events and final outcomes,
 * `pending` is how many are pending now. They are touched only while the watch exists, so a late
 * write cannot recreate a deleted watch's stats.
 *
 * A watch's pending set is a sorted set scored by when each delivery became pending (Unix ms), and
 * its shard's oldest-pending index (`keys.oldestPending`) holds each watch of the shard that has
 * pending deliveries, scored by its oldest or earlier: the operator's backlog alert reads the old
 * ones from every shard's, with no scan of the watches (`watchesPendingSince`, `refreshOldestPending`).
 *
 * Everything of a delivery is on its watch's shard (storage/keys.ts), so every script here
 * touches one slot. What knows only a delivery id (GET /deliveries/:id, a reorg's retraction)
 * looks on every shard: one on a single Redis.
 *
 * What a delivered event keeps, and for how long (README, "Sizing Redis"):
 * - the record, one packed string (delivery-record.ts), `recordRetention` once final;
 * - the body, once: while the record may need it (pending, failed, cancelled, replayed) in its
 *   payload key; once delivered, in the tenant's event log entry the store script wrote anyway
 *   for GET /events/stream, which therefore keeps entries for the longer of `stream.retention`
 *   and `payloadRetention` plus a margin. `GET /deliveries/:id` shows it `payloadRetention`
 *   after the delivery, not longer, whichever copy it reads;
 * - its compact id in the watch's log: time buckets (lists, which stay compact at any length,
 *   unlike a sorted set past 128 entries) that expire whole, so nothing ever scans the log to
 *   trim it. Redis 7.0 has no per-field expiry: buckets are the time-based way to expire parts
 *   of one index.
 */
import { BlockhookError } from '../domain/errors.js'
import { groupBy } from '../domain/group-by.js'
import { compactWebhookId, webhookIdFromCompact } from '../domain/ids.js'
import type { RedisKeys } from '../storage/keys.js'
import { mgetPerSlot, pipelinePerSlot, type RedisClient } from '../storage/redis.js'
import { parseEntryId, parseLoggedEvent } from '../stream/stream-entry.js'
import {
  cancelPendingDeliveries, recordDeliveryAttempt, refreshOldestPending, requeueFailedDelivery, storeDeliveries, takeNextOrdered,
  type DeliveryRecordKeys,
} from '../storage/redis-scripts.js'
import { MINUTE_RETENTION_MS, minuteIncrements, minuteOf } from './delivery-minutes.js'
import {
  decodeRecord, payloadOfBody, recordWithBody, staticRecordFields, statusOfCode, storedAttemptTail, storedBodyParts, expandText,
  type DeliveryAttempt, type DeliveryRecord, type DeliveryStatus, type DeliverySummary, type MatchedEvent, type StoredDelivery,
} from './delivery-record.js'

/** Attempts kept on one record (replays and manual retries add more); the oldest go first. */
export const MAX_ATTEMPTS_KEPT = 50
export const MAX_LIST_LIMIT = 100
/** Records one list request reads at most, however few match its status filter. */
const MAX_SCANNED_PER_LIST = 1_000
/** Events per store script call: bounds how long one call holds Redis (~5 ms at ~25 µs per event). */
const STORE_BATCH = 200
const HOUR_MS = 3_600_000
/** A watch's log has at most this many buckets alive (fewer once a bucket is an hour). */
const LOG_BUCKETS_PER_RETENTION = 16

export const deliveryNotFound = () => new BlockhookError('BH_DELIVERY_NOT_FOUND', 'delivery not found', 404)

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

/** What the worker needs to send a delivery: the record and its stored body, exactly the bytes to send. */
export type DeliveryToSend = DeliverySummary & { body: string | null }

/** Position in a watch's log, newest first: a bucket, and the index in it below which the next entries are. */
interface LogPosition {
  bucket: number
  before: number
}

function encodeCursor(position: LogPosition): string {
  return Buffer.from(`${position.bucket}:${position.before}`).toString('base64url')
}

function decodeCursor(cursor: string): LogPosition {
  const [bucket, before] = Buffer.from(cursor, 'base64url').toString('utf8').split(':').map(Number)
  if (!Number.isSafeInteger(bucket) || !Number.isSafeInteger(before) || before! < 0) {
    throw new BlockhookError('BH_INVALID_CURSOR', 'querystring/cursor is not a cursor this API returned', 400)
  }
  return { bucket: bucket!, before: before! }
}

export class DeliveryStore {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #retention: DeliveryRetention
  /** How long an event-log entry is kept (see the file comment). */
  readonly #eventLogRetentionMs: number
  /**
   * A watch's log holds an id as long as its record may live: the longest retention (a failed
   * one's), after as long as its retries may take.
   */
  readonly #logRetentionMs: number
  readonly #logBucketMs: number

  constructor(redis: RedisClient, keys: RedisKeys, retention: DeliveryRetention & { retryScheduleMs: readonly number[] }, streamRetentionMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#retention = retention
    const { payloadRetentionMs, recordRetentionMs, failedRetentionMs, retryScheduleMs } = retention
    // The margin: a delivery done within it of being stored reads its body from the log.
    this.#eventLogRetentionMs = Math.max(streamRetentionMs, payloadRetentionMs + Math.min(payloadRetentionMs, HOUR_MS))
    this.#logRetentionMs = Math.max(recordRetentionMs, failedRetentionMs) + retryScheduleMs.reduce((sum, ms) => sum + ms, 0)
    this.#logBucketMs = Math.min(HOUR_MS, Math.max(1, Math.ceil(this.#logRetentionMs / LOG_BUCKETS_PER_RETENTION)))
  }

  /** Stores each event once (see delivery-queue.ts); with `replayJobIds`, finished records go back to pending. */
  async storeMatched(events: readonly MatchedEvent[], replayJobIds: readonly string[] | undefined, nowMs: number): Promise<StoredRecord[]> {
    const k = this.#keys
    const bucketStartMs = Math.floor(nowMs / this.#logBucketMs) * this.#logBucketMs
    const bucket = {
      bucketStartMs,
      bucketTtlMs: bucketStartMs + this.#logBucketMs + this.#logRetentionMs - nowMs,
      bucketsKeptFromMs: nowMs - this.#logRetentionMs - this.#logBucketMs,
    }
    // One script per batch, not per event: the per-call cost (script lookup, argument conversion,
    // a reply each) was a third of Redis's time per event. A batch holds one shard's events (its
    // keys share a slot); the calls go out back to back, to every shard's master at once.
    const byShard = groupBy(events.map((_, i) => i), (i) => k.shardOf(events[i]!.watchId))
    const replies = new Array<{ outcome: string; jobId: string }>(events.length)
    const calls: Promise<void>[] = []
    for (const [shard, indexes] of byShard) {
      for (let from = 0; from < indexes.length; from += STORE_BATCH) {
        const batch = indexes.slice(from, from + STORE_BATCH)
        calls.push(storeDeliveries(this.#redis, {
          oldestPending: k.oldestPending(shard), nowMs, eventLogRetentionMs: this.#eventLogRetentionMs,
          bucket,
          events: batch.map((i) => {
            const e = events[i]!
            const [bodyHead, bodyTail] = storedBodyParts(e)
            return {
              keys: {
                ...this.#recordKeys(e.id, e.watchId), sequence: k.watchSequence(e.watchId),
                logBucket: k.watchLogBucket(e.watchId, bucketStartMs), logIndex: k.watchLog(e.watchId),
                eventLog: k.tenantEventLog(e.tenantId, shard), ordered: k.watchOrderedDeliveries(e.watchId),
                streamOnlyMarker: k.streamOnlyEvent(e.id, shard),
              },
              args: {
                id: e.id, logEntry: logEntryOf(e.id), watchId: e.watchId, bodyHead, bodyTail, firstSeenAt: e.firstSeenAt,
                replayJobId: replayJobIds?.[i] ?? '', staticFields: e.streamOnly ? '' : staticRecordFields(e),
                ordered: e.ordered === true, streamOnly: e.streamOnly === true, tenantId: e.tenantId,
              },
            }
          }),
        }).then((stored) => stored.forEach((reply, n) => { replies[batch[n]!] = reply })))
      }
    }
    await Promise.all(calls)
    return replies.map(({ outcome, jobId }) => ({
      outcome: (statusOfCode(outcome) ?? outcome) as StoredRecord['outcome'],
      jobId,
    }))
  }

  #watchKeys(watchId: string): Pick<DeliveryRecordKeys, 'pending' | 'stats'> {
    const k = this.#keys
    return { pending: k.watchPendingDeliveries(watchId), stats: k.watchStats(watchId) }
  }

  #recordKeys(deliveryId: string, watchId: string): DeliveryRecordKeys {
    const shard = this.#keys.shardOf(watchId)
    return { record: this.#keys.delivery(deliveryId, shard), payload: this.#keys.deliveryPayload(deliveryId, shard), ...this.#watchKeys(watchId) }
  }

  /**
   * failed → pending under `jobId`. Returns the status it had (`held`: it was failed, and waits
   * behind an earlier delivery of its ordered watch), undefined when there is no record.
   */
  async requeueFailed(deliveryId: string, watchId: string, jobId: string, nowMs: number): Promise<DeliveryStatus | 'held' | undefined> {
    const previous = await requeueFailedDelivery(this.#redis, {
      keys: this.#recordKeys(deliveryId, watchId), ordered: this.#keys.watchOrderedDeliveries(watchId),
      oldestPending: this.#keys.oldestPending(this.#keys.shardOf(watchId)),
      deliveryId, watchId, jobId, nowMs,
    })
    if (previous === null) return undefined
    return previous === 'held' ? 'held' : statusOfCode(previous)
  }

  /**
   * Takes a finished delivery out of its ordered watch's set; returns the next one to send with
   * its job id, if any. Idempotent: a second call for the same id just names the current first.
   */
  async nextOrdered(watchId: string, finishedId: string): Promise<{ deliveryId: string; jobId: string } | undefined> {
    const next = await takeNextOrdered(this.#redis, { ordered: this.#keys.watchOrderedDeliveries(watchId), finishedId })
    if (next === undefined) return undefined
    const value = await this.#redis.get(this.#keys.delivery(next, this.#keys.shardOf(watchId)))
    return { deliveryId: next, jobId: (value === null ? undefined : decodeRecord(next, value)?.jobId) ?? next }
  }

  /** A watch's ordered set goes with its deliveries (they are cancelled). */
  async forgetOrdered(watchId: string): Promise<void> {
    await this.#redis.del(this.#keys.watchOrderedDeliveries(watchId))
  }

  /** pending → cancelled; returns the job ids to remove from the queue (of those that were pending). */
  async cancel(deliveryIds: readonly string[], watchId: string): Promise<string[]> {
    const { recordRetentionMs, payloadRetentionMs } = this.#retention
    return cancelPendingDeliveries(this.#redis, {
      watch: this.#watchKeys(watchId),
      deliveries: deliveryIds.map((id) => {
        const { record, payload } = this.#recordKeys(id, watchId)
        return { id, keys: { record, payload } }
      }),
      recordRetentionMs,
      payloadRetentionMs,
    })
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
   * Watches whose oldest pending delivery became pending at or before `atOrBeforeMs`, from every
   * shard's oldest-pending index: at most `limit` of their entries are read (each put right
   * first), so the cost follows the answer, not the number of watches or deliveries. `complete`
   * is false when entries were left unread.
   */
  async watchesPendingSince(atOrBeforeMs: number, limit: number): Promise<{ watches: { watchId: string; oldestPendingAtMs: number }[]; complete: boolean }> {
    const shards = Array.from({ length: this.#keys.deliveryShards }, (_, shard) => shard)
    const perShard = await Promise.all(shards.map((shard) =>
      this.#redis.zrangebyscore(this.#keys.oldestPending(shard), '-inf', atOrBeforeMs, 'WITHSCORES', 'LIMIT', 0, limit + 1)))
    const entries = perShard.flatMap((flat) => flat.flatMap((member, i) => (i % 2 === 0 ? [{ watchId: member, score: Number(flat[i + 1]) }] : [])))
    entries.sort((a, b) => a.score - b.score)
    const ids = entries.slice(0, limit).map(({ watchId }) => watchId)
    const oldest = await Promise.all(ids.map((watchId) => this.refreshOldestPending(watchId)))
    const watches = ids.flatMap((watchId, i) => {
      const oldestPendingAtMs = oldest[i]
      return oldestPendingAtMs !== undefined && oldestPendingAtMs <= atOrBeforeMs ? [{ watchId, oldestPendingAtMs }] : []
    })
    return { watches, complete: entries.length <= limit }
  }

  /** Sets the watch's entry in its shard's oldest-pending index from its pending set; returns its oldest (ms), if any. */
  async refreshOldestPending(watchId: string): Promise<number | undefined> {
    return refreshOldestPending(this.#redis, {
      oldest: this.#keys.oldestPending(this.#keys.shardOf(watchId)), pending: this.#keys.watchPendingDeliveries(watchId), watchId,
    })
  }

  /**
   * Records an attempt; for a pending record also its outcome, and counts it in the watch's minute
   * (with `latencyMs`, event to delivery, when it is a first-time delivery). Returns the status
   * after, and since when (Unix ms) the watch's deliveries have been failing, if they are.
   */
  async recordAttempt(
    record: Pick<DeliverySummary, 'id' | 'watchId'>,
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
      minute: this.#keys.watchMinute(record.watchId, minuteOf(nowMs)),
      minuteRetentionMs: MINUTE_RETENTION_MS,
      minuteIncrements: minuteIncrements(outcome === 'delivered' ? 'delivered' : 'failed', latencyMs),
      attempt: {
        deliveryId: record.id, attemptAtMs: Date.parse(attempt.at), attemptAt: attempt.at, attemptTail: storedAttemptTail(attempt), outcome,
        nextAttemptAt: nextAttemptAt === null ? '' : Date.parse(nextAttemptAt).toString(36), nowMs,
        recordRetentionMs, payloadRetentionMs, eventLogRetentionMs: this.#eventLogRetentionMs,
        maxAttemptsKept: MAX_ATTEMPTS_KEPT, failingTtlMs: failing.ttlMs, failureCounts: failing.counts,
      },
    })
    return {
      status: status === null ? undefined : statusOfCode(status),
      failingSinceMs: failingSince === null ? undefined : Number(failingSince),
    }
  }

  /** The record on `shard` (the worker knows it from its queue) and the bytes to send; undefined when there is no record. */
  async getToSend(deliveryId: string, shard: number): Promise<DeliveryToSend | undefined> {
    const [result] = await this.getManyToSend([deliveryId], shard)
    if (result!.status === 'rejected') throw result!.reason
    return result!.value
  }

  /**
   * Records on `shard` and the bytes to send, in the order of `ids`, in one command (undefined
   * where there is no record); one that cannot be decoded is rejected alone. MGET, not a pipeline:
   * ioredis copies every script defined on the connection (BullMQ's too) into each pipeline it
   * creates, which cost the worker about 50 µs per delivery. A shard's keys share its tag.
   */
  async getManyToSend(ids: readonly string[], shard: number): Promise<PromiseSettledResult<DeliveryToSend | undefined>[]> {
    const values = await this.#redis.mget(ids.flatMap((id) => [this.#keys.delivery(id, shard), this.#keys.deliveryPayload(id, shard)]))
    return ids.map((id, i) => {
      try {
        const value = values[2 * i] ?? null
        const body = values[2 * i + 1] ?? null
        const stored = value === null ? undefined : decodeRecord(id, value)
        return { status: 'fulfilled', value: stored && { ...stored.summary, body: body === null ? null : expandText(body) } }
      } catch (reason) {
        return { status: 'rejected', reason }
      }
    })
  }

  async get(deliveryId: string): Promise<DeliveryRecord | undefined> {
    return (await this.getMany([deliveryId]))[0]
  }

  /**
   * Records with their payload in the order of `ids`, undefined where there is none (past its
   * retention), looked for on every shard. A delivered record's body is read from the event log
   * when its payload key has gone, for `payloadRetention` after the delivery.
   */
  async getMany(ids: readonly string[]): Promise<(DeliveryRecord | undefined)[]> {
    if (ids.length === 0) return []
    const shards = this.#keys.deliveryShards
    const reads = ids.flatMap((id) => Array.from({ length: shards }, (_, shard) => [
      this.#keys.delivery(id, shard), this.#keys.deliveryPayload(id, shard),
    ]).flat())
    const replies = (await pipelinePerSlot(this.#redis, reads, (key) => key, (pipeline, key) => pipeline.get(key))) as (string | null)[]
    const found = ids.map((id, i) => {
      for (let shard = 0; shard < shards; shard++) {
        const at = 2 * (i * shards + shard)
        const value = replies[at]!
        const stored = value === null ? undefined : decodeRecord(id, value)
        if (stored) return { stored, shard, body: replies[at + 1]! }
      }
      return undefined
    })
    const bodies: (string | null)[] = found.map((f) => f?.body ?? null)
    const nowMs = Date.now()
    const fromLog = found.flatMap((f, i) => (f && f.body === null && this.#logHoldsPayload(f.stored, nowMs) ? [i] : []))
    if (fromLog.length > 0) {
      const logReads = fromLog.map((i) => {
        const { stored: { summary, logEntryId }, shard } = found[i]!
        return { key: this.#keys.tenantEventLog(summary.tenantId, shard), entry: logEntryId! }
      })
      const entries = (await pipelinePerSlot(this.#redis, logReads, ({ key }) => key, (pipeline, { key, entry }) => pipeline.xrange(key, entry, entry))) as
        [id: string, fields: string[]][][]
      fromLog.forEach((i, n) => {
        const fields = entries[n]![0]?.[1] ?? []
        const value = (name: string) => fields.find((_, f) => f % 2 === 1 && fields[f - 1] === name)
        if (value('id') === ids[i]) bodies[i] = value('body') ?? null
      })
    }
    return found.map((f, i) => f && recordWithBody(f.stored.summary, bodies[i]!))
  }

  #logHoldsPayload({ summary, logEntryId }: StoredDelivery, nowMs: number): boolean {
    const deliveredAt = summary.attempts.at(-1)?.at
    return summary.status === 'delivered' && logEntryId !== undefined && deliveredAt !== undefined
      && Date.parse(deliveredAt) + this.#retention.payloadRetentionMs > nowMs
  }

  /** Another tenant's delivery reads as not found. */
  async getForTenant(tenantId: string, deliveryId: string): Promise<DeliveryRecord> {
    const record = await this.get(deliveryId)
    if (!record || record.tenantId !== tenantId) throw deliveryNotFound()
    return record
  }

  /**
   * The events behind stored deliveries (a reorg retracts them), in the ids' order; those whose
   * payload expired are left out, too old to retract. A url-less watch's event has no record: it
   * is read back from the event-log entry its stream-only marker names.
   */
  async storedEvents(ids: readonly string[]): Promise<MatchedEvent[]> {
    const records = await this.getMany(ids)
    const streamed = await this.#streamOnlyEvents(ids.filter((_, i) => !records[i]))
    return ids.flatMap((id, i) => {
      const record = records[i]
      if (!record) return streamed.has(id) ? [streamed.get(id)!] : []
      if (record.payloadExpired) return []
      const { watchId, tenantId, chain, type, timestamp, data, firstSeenAt } = record
      // Kept: the retraction of an ordered watch's event takes its turn in sequence like any other.
      return [{ id, watchId, tenantId, chain, type, timestamp, data, firstSeenAt, ...(record.ordered ? { ordered: true as const } : {}) }]
    })
  }

  async #streamOnlyEvents(ids: readonly string[]): Promise<Map<string, MatchedEvent>> {
    const found = new Map<string, MatchedEvent>()
    if (ids.length === 0) return found
    // The marker is on the shard of a watch these ids do not name: each shard is looked at.
    const shards = this.#keys.deliveryShards
    const markers = await mgetPerSlot(this.#redis, ids.flatMap((id) => Array.from({ length: shards }, (_, shard) => this.#keys.streamOnlyEvent(id, shard))))
    const logged = ids.flatMap((id, i) => {
      for (let shard = 0; shard < shards; shard++) {
        const [tenantId, entry] = (markers[i * shards + shard] ?? '').split(' ')
        if (tenantId && entry && parseEntryId(entry)) return [{ id, shard, key: this.#keys.tenantEventLog(tenantId, shard), tenantId, entry }]
      }
      return []
    })
    if (logged.length === 0) return found
    const entries = (await pipelinePerSlot(this.#redis, logged, ({ key }) => key, (pipeline, { key, entry }) => pipeline.xrange(key, entry, entry))) as
      [id: string, fields: string[]][][]
    logged.forEach(({ id, shard, tenantId, entry }, n) => {
      const fields = entries[n]![0]?.[1]
      const event = fields && parseLoggedEvent(shard, entry, fields)
      if (!event || event.id !== id) return
      const body = JSON.parse(event.body) as { type: MatchedEvent['type']; data: { chain: string } }
      found.set(id, {
        id, watchId: event.watchId, tenantId, chain: body.data.chain, type: body.type, ...payloadOfBody(event.body),
        firstSeenAt: parseEntryId(entry)!.ms, streamOnly: true,
      })
    })
    return found
  }

  /** Records of one watch's deliveries (so of one shard, one slot). */
  async #summaries(watchId: string, ids: readonly string[]): Promise<(DeliverySummary | undefined)[]> {
    if (ids.length === 0) return []
    const shard = this.#keys.shardOf(watchId)
    const values = await this.#redis.mget(ids.map((id) => this.#keys.delivery(id, shard)))
    return ids.map((id, i) => (values[i] === null ? undefined : decodeRecord(id, values[i]!)?.summary))
  }

  /**
   * A watch's deliveries, newest first. Records past their retention are gone and skipped. The
   * cursor is a position (a bucket and an index in it), stable while new deliveries arrive, since
   * they are appended after it. A page may hold fewer than `limit` items and still have a next
   * cursor when a status filter matched few of the records read.
   */
  async listByWatch(watchId: string, query: DeliveryListQuery): Promise<{ items: DeliverySummary[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(query.limit, 1), MAX_LIST_LIMIT)
    const page = Math.max(limit, MAX_LIST_LIMIT)
    const start = query.cursor ? decodeCursor(query.cursor) : undefined
    const buckets = (await this.#redis.zrevrangebyscore(this.#keys.watchLog(watchId), start ? start.bucket : '+inf', '-inf')).map(Number)
    const items: DeliverySummary[] = []
    let scanned = 0
    for (const [b, bucket] of buckets.entries()) {
      const key = this.#keys.watchLogBucket(watchId, bucket)
      let before = start?.bucket === bucket ? start.before : await this.#redis.llen(key)
      while (before > 0) {
        // Bounded work per request: a status filter that matches little returns a short page and a cursor.
        if (scanned >= MAX_SCANNED_PER_LIST) return { items, nextCursor: encodeCursor({ bucket, before }) }
        const from = Math.max(0, before - page)
        const entries = await this.#redis.lrange(key, from, before - 1)
        if (entries.length === 0) break // the bucket expired meanwhile
        const ids = entries.map(idOfLogEntry)
        const summaries = await this.#summaries(watchId, ids)
        for (let i = ids.length - 1; i >= 0; i--) {
          scanned++
          const summary = summaries[i]
          if (!summary || (query.status && summary.status !== query.status)) continue
          items.push(summary)
          if (items.length === limit) {
            const more = from + i > 0 || b + 1 < buckets.length
            return { items, nextCursor: more ? encodeCursor({ bucket, before: from + i }) : null }
          }
        }
        before = from
      }
    }
    return { items, nextCursor: null }
  }
}

/** What a watch's log holds for a delivery: its compact id, or `!` and the id for one webhookId() did not make. */
function logEntryOf(id: string): string {
  return compactWebhookId(id) ?? `!${id}`
}

function idOfLogEntry(entry: string): string {
  return entry.startsWith('!') ? entry.slice(1) : webhookIdFromCompact(entry)
}
