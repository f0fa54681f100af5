/**
 * Delivery records in Redis and every change of their status, each one Lua script so the record,
 * the watch's pending set and the watch's stats move together. Status changes only leave
 * `pending` (or return to it on a replay or a manual retry), so a worker finishing an attempt
 * after the delivery was cancelled records the attempt but does not resurrect it.
 *
 * Stats (`keys.watchStats`): `matched` and `delivered`/`failed` count events and final outcomes,
 * `pending` is how many are pending now. They are touched only while the watch exists, so a late
 * write cannot recreate a deleted watch's stats.
 */
import type { Redis } from 'ioredis'
import { BlockhookError } from '../domain/errors.js'
import type { RedisKeys } from '../storage/keys.js'
import { refreshOldestPending, takeNextOrdered } from '../storage/redis-scripts.js'
import { MINUTE_RETENTION_MS, minuteIncrements, minuteOf } from './delivery-minutes.js'
import { attemptJson, eventLocation, payloadJson, recordFromHash, type DeliveryAttempt, type DeliveryRecord, type DeliveryStatus, type MatchedEvent } from './delivery-record.js'

/** Attempts kept on one record (replays and manual retries add more); the oldest go first. */
export const MAX_ATTEMPTS_KEPT = 50
export const MAX_LIST_LIMIT = 100
/** Records one list request reads at most, however few match its status filter. */
const MAX_SCANNED_PER_LIST = 1_000

export const deliveryNotFound = () => new BlockhookError('BH_DELIVERY_NOT_FOUND', 'delivery not found', 404)

/**
 * A watch's pending set is a sorted set scored by when each delivery became pending (Unix ms), and
 * the oldest-pending index (`keys.oldestPending`, the local `oldest` in the scripts) holds each
 * watch that has pending deliveries, scored by its oldest or earlier: the operator's backlog alert
 * reads the old ones from there, with no scan of the watches. Becoming pending lowers the
 * watch's score if needed (this snippet); leaving pending does not touch the index (it would
 * cost every delivery a read of the set's head), so a score may be stale-early, and whoever
 * reads it puts it right first (`watchesPendingSince`, `refreshOldestPending`).
 */
const PENDING_ADD = (pending: string, id: string, watchId: string, nowMs: string) => `redis.call('ZADD', ${pending}, ${nowMs}, ${id})
redis.call('ZADD', oldest, 'LT', ${nowMs}, ${watchId})`

/**
 * Stores a batch of events, each as the one-event case did: KEYS[1] is the oldest-pending index,
 * then 10 per event (record, sequence, log, stats, pending set, watch, payload, tenant event log,
 * ordered set, stream-only marker); ARGV[1], ARGV[2], ARGV[3] are createdAt (ISO), now ms (when
 * the new pending ones became pending) and the event log's retention ms, then 13 per event: id, watchId, tenantId, chain, type, payload JSON, firstSeenAt, replay job
 * id or '', block number, block hash, eventKey (the last three may be ''), ordered ('1' or ''),
 * stream only ('1' for a watch without a url: the event goes to the event log once, nothing else).
 * A new record is also appended to its tenant's event log (GET /events/stream) in the same
 * script, so the log holds each event exactly once and in sequence order whatever crashes when;
 * entries older than the retention (by Redis's clock, which also makes the entry ids) are trimmed.
 * An ordered watch's pending record joins its ordered set by sequence, and is answered `held`
 * (no job) unless it is the set's first.
 * Returns {outcome, jobId} per event, flattened. One script per batch, not per event: the per-call
 * cost (script lookup, argument conversion, a reply each) was a third of Redis's time per event.
 * A replay writes the payload again (it may have expired) and keeps it until the record is final.
 */
const STORE_RECORDS = `
local replies = {}
local time = redis.call('TIME')
local minId = (tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)) - tonumber(ARGV[3])
local oldest = KEYS[1]
for e = 0, (#KEYS - 1) / 10 - 1 do
  local k, a = 1 + e * 10, 3 + e * 13
  local record, id, replayJobId = KEYS[k + 1], ARGV[a + 1], ARGV[a + 8]
  local status = redis.call('HGET', record, 'status')
  local outcome, jobId
  if ARGV[a + 13] == '1' then
    -- A watch without a url: no record and no job, only the event log, once (the marker key).
    jobId = ''
    outcome = 'streamed'
    if redis.call('SET', KEYS[k + 10], '1', 'NX', 'PX', ARGV[3]) then
      local sequence = redis.call('INCR', KEYS[k + 2])
      redis.call('XADD', KEYS[k + 8], 'MINID', '~', minId, '*', 'id', id, 'watchId', ARGV[a + 2], 'chain', ARGV[a + 4],
        'type', ARGV[a + 5], 'sequence', sequence, 'payload', ARGV[a + 6])
      redis.call('PEXPIRE', KEYS[k + 8], ARGV[3])
    end
  elseif status then
    if replayJobId == '' or status == 'pending' then
      outcome = status
      jobId = redis.call('HGET', record, 'jobId') or id
    else
      redis.call('HSET', record, 'status', 'pending', 'nextAttemptAt', '', 'jobId', replayJobId)
      redis.call('PERSIST', record)
      redis.call('SET', KEYS[k + 7], ARGV[a + 6])
      ${PENDING_ADD('KEYS[k + 5]', 'id', 'ARGV[a + 2]', 'ARGV[2]')}
      if redis.call('EXISTS', KEYS[k + 6]) == 1 then redis.call('HINCRBY', KEYS[k + 4], 'pending', 1) end
      outcome = 'replayed'
      jobId = replayJobId
    end
  else
    jobId = replayJobId
    if jobId == '' then jobId = id end
    local sequence = redis.call('INCR', KEYS[k + 2])
    redis.call('HSET', record, 'id', id, 'watchId', ARGV[a + 2], 'tenantId', ARGV[a + 3], 'chain', ARGV[a + 4],
      'type', ARGV[a + 5], 'firstSeenAt', ARGV[a + 7], 'createdAt', ARGV[1],
      'sequence', sequence, 'status', 'pending', 'attempts', '[]', 'jobId', jobId)
    if ARGV[a + 9] ~= '' then redis.call('HSET', record, 'blockNumber', ARGV[a + 9]) end
    if ARGV[a + 10] ~= '' then redis.call('HSET', record, 'blockHash', ARGV[a + 10]) end
    if ARGV[a + 11] ~= '' then redis.call('HSET', record, 'eventKey', ARGV[a + 11]) end
    if ARGV[a + 12] == '1' then redis.call('HSET', record, 'ordered', '1') end
    redis.call('SET', KEYS[k + 7], ARGV[a + 6])
    redis.call('ZADD', KEYS[k + 3], ARGV[2], id)
    ${PENDING_ADD('KEYS[k + 5]', 'id', 'ARGV[a + 2]', 'ARGV[2]')}
    redis.call('HINCRBY', KEYS[k + 4], 'matched', 1)
    redis.call('HINCRBY', KEYS[k + 4], 'pending', 1)
    redis.call('XADD', KEYS[k + 8], 'MINID', '~', minId, '*', 'id', id, 'watchId', ARGV[a + 2], 'chain', ARGV[a + 4],
      'type', ARGV[a + 5], 'sequence', sequence, 'payload', ARGV[a + 6])
    redis.call('PEXPIRE', KEYS[k + 8], ARGV[3])
    outcome = 'new'
  end
  if ARGV[a + 12] == '1' and (outcome == 'new' or outcome == 'replayed' or outcome == 'pending') then
    redis.call('ZADD', KEYS[k + 9], redis.call('HGET', record, 'sequence'), id)
    if redis.call('ZRANGE', KEYS[k + 9], 0, 0)[1] ~= id then outcome = 'held' end
  end
  replies[#replies + 1] = outcome
  replies[#replies + 1] = jobId
end
return replies`

/** Events per STORE_RECORDS call: bounds how long one call holds Redis (~5 ms at ~25 µs per event). */
const STORE_BATCH = 200

/**
 * KEYS: record, pending set, stats, watch, payload, ordered set, oldest-pending index. ARGV: id,
 * job id, now ms, watch id. Returns the status it had, or `held` for a failed record of an
 * ordered watch that now waits behind an earlier one (no job yet).
 */
const REQUEUE_FAILED = `
local oldest = KEYS[7]
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'failed' then return status or false end
redis.call('HSET', KEYS[1], 'status', 'pending', 'nextAttemptAt', '', 'jobId', ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[5])
${PENDING_ADD('KEYS[2]', 'ARGV[1]', 'ARGV[4]', 'ARGV[3]')}
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[3], 'pending', 1) end
if redis.call('HGET', KEYS[1], 'ordered') == '1' then
  redis.call('ZADD', KEYS[6], redis.call('HGET', KEYS[1], 'sequence'), ARGV[1])
  if redis.call('ZRANGE', KEYS[6], 0, 0)[1] ~= ARGV[1] then return 'held' end
end
return 'failed'`

/**
 * KEYS: record, pending set, stats, watch, payload. ARGV: id, record retention ms, payload
 * retention ms. Returns the job id to remove, or false if not pending.
 */
const CANCEL_PENDING = `
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return false end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'nextAttemptAt', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[3], 'pending', -1) end
return redis.call('HGET', KEYS[1], 'jobId') or ARGV[1]`

/**
 * Appends an attempt and applies its outcome (`delivered`, `retrying`, `failed`) to a pending
 * record. KEYS: record, pending set, stats, watch, failing-since, log, payload, minute bucket.
 * ARGV: id, attempt JSON, outcome, nextAttemptAt, now ms, record retention ms (of this outcome),
 * max attempts kept, failing-since TTL ms, whether a failure counts towards disabling the watch
 * ('1') or not (no request was made), payload retention ms (of this outcome), log retention ms,
 * attempt time (ISO), minute bucket retention ms, then field increment pairs for the bucket
 * (delivery-minutes.ts): counted here, in the same call, so the chart costs no extra round trip.
 * The log is trimmed here, by score, a few entries per final outcome: never a scan of it.
 * Returns {status after, failing-since ms or false}.
 */
const RECORD_ATTEMPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {false, false} end
local attempts = cjson.decode(redis.call('HGET', KEYS[1], 'attempts') or '[]')
table.insert(attempts, cjson.decode(ARGV[2]))
while #attempts > tonumber(ARGV[7]) do table.remove(attempts, 1) end
redis.call('HSET', KEYS[1], 'attempts', cjson.encode(attempts))
if status ~= 'pending' then return {status, false} end
local watchExists = redis.call('EXISTS', KEYS[4]) == 1
local outcome = ARGV[3]
if watchExists then
  for i = 14, #ARGV, 2 do redis.call('HINCRBY', KEYS[8], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[8], ARGV[13])
end
if outcome == 'delivered' then
  redis.call('DEL', KEYS[5])
elseif ARGV[9] == '1' then
  redis.call('SET', KEYS[5], ARGV[5], 'NX')
  redis.call('PEXPIRE', KEYS[5], ARGV[8])
end
if outcome == 'retrying' then
  redis.call('HSET', KEYS[1], 'nextAttemptAt', ARGV[4])
  return {status, redis.call('GET', KEYS[5])}
end
redis.call('HSET', KEYS[1], 'status', outcome, 'nextAttemptAt', '')
redis.call('HDEL', KEYS[1], 'jobId')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[7], ARGV[10])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[11]))
if watchExists then
  redis.call('HINCRBY', KEYS[3], 'pending', -1)
  redis.call('HINCRBY', KEYS[3], outcome, 1)
  if outcome == 'delivered' then redis.call('HSET', KEYS[3], 'lastDeliveredAt', ARGV[12]) end
end
return {outcome, redis.call('GET', KEYS[5])}`

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
    const pipeline = this.#redis.pipeline()
    for (let from = 0; from < events.length; from += STORE_BATCH) {
      const batch = events.slice(from, from + STORE_BATCH)
      const keys: string[] = [k.oldestPending]
      const args: (string | number)[] = [createdAt, nowMs, this.#eventLogRetentionMs]
      batch.forEach((e, i) => {
        keys.push(
          k.delivery(e.id), k.watchSequence(e.watchId), k.watchDeliveries(e.watchId), k.watchStats(e.watchId),
          k.watchPendingDeliveries(e.watchId), k.watch(e.watchId), k.deliveryPayload(e.id), k.tenantEventLog(e.tenantId),
          k.watchOrderedDeliveries(e.watchId), k.streamOnlyEvent(e.id),
        )
        const { blockNumber, blockHash, eventKey } = eventLocation(e.data)
        args.push(
          e.id, e.watchId, e.tenantId, e.chain, e.type, payloadJson(e), e.firstSeenAt, replayJobIds?.[from + i] ?? '',
          blockNumber, blockHash, eventKey, e.ordered ? '1' : '', e.streamOnly ? '1' : '',
        )
      })
      pipeline.eval(STORE_RECORDS, keys.length, ...keys, ...args)
    }
    return ((await pipeline.exec()) ?? []).flatMap(([err, reply]) => {
      if (err) throw err
      const flat = reply as string[]
      const stored: StoredRecord[] = []
      for (let i = 0; i + 1 < flat.length; i += 2) stored.push({ outcome: flat[i] as StoredRecord['outcome'], jobId: flat[i + 1]! })
      return stored
    })
  }

  /**
   * failed → pending under `jobId`. Returns the status it had (`held`: it was failed, and waits
   * behind an earlier delivery of its ordered watch), undefined when there is no record.
   */
  async requeueFailed(deliveryId: string, watchId: string, jobId: string, nowMs: number): Promise<DeliveryStatus | 'held' | undefined> {
    const k = this.#keys
    const previous = (await this.#redis.eval(
      REQUEUE_FAILED, 7, k.delivery(deliveryId), k.watchPendingDeliveries(watchId), k.watchStats(watchId), k.watch(watchId),
      k.deliveryPayload(deliveryId), k.watchOrderedDeliveries(watchId), k.oldestPending, deliveryId, jobId, nowMs, watchId,
    )) as DeliveryStatus | 'held' | null
    return previous ?? undefined
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
    const k = this.#keys
    const pipeline = this.#redis.pipeline()
    for (const id of deliveryIds) {
      pipeline.eval(
        CANCEL_PENDING, 5, k.delivery(id), k.watchPendingDeliveries(watchId), k.watchStats(watchId), k.watch(watchId),
        k.deliveryPayload(id), id, this.#retention.recordRetentionMs, this.#retention.payloadRetentionMs,
      )
    }
    return ((await pipeline.exec()) ?? []).flatMap(([err, jobId]) => {
      if (err) throw err
      return typeof jobId === 'string' ? [jobId] : []
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
    const k = this.#keys
    const r = this.#retention
    // A failed record keeps its payload as long as itself, so POST /deliveries/:id/retry still has a body to send.
    const [recordMs, payloadMs] = outcome === 'failed' ? [r.failedRetentionMs, r.failedRetentionMs] : [r.recordRetentionMs, r.payloadRetentionMs]
    const increments = minuteIncrements(outcome === 'delivered' ? 'delivered' : 'failed', latencyMs).flat()
    const [status, failingSince] = (await this.#redis.eval(
      RECORD_ATTEMPT, 8,
      k.delivery(record.id), k.watchPendingDeliveries(record.watchId), k.watchStats(record.watchId), k.watch(record.watchId),
      k.watchFailingSince(record.watchId), k.watchDeliveries(record.watchId), k.deliveryPayload(record.id),
      k.watchMinute(record.watchId, minuteOf(nowMs)),
      record.id, attemptJson(attempt), outcome, nextAttemptAt ?? '', nowMs, recordMs, MAX_ATTEMPTS_KEPT,
      failing.ttlMs, failing.counts ? '1' : '0', payloadMs, this.#logRetentionMs, attempt.at, MINUTE_RETENTION_MS, ...increments,
    )) as [DeliveryStatus | null, string | null]
    return { status: status ?? undefined, failingSinceMs: failingSince === null ? undefined : Number(failingSince) }
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
