/**
 * The producer side of delivery: stores each matched event as a delivery record (once: the
 * `webhook-id` is the key) and queues a BullMQ job whose id is that same `webhook-id`. Processing
 * a block twice (backfill overlap, a second subscriber, a restart) therefore queues nothing twice.
 *
 * A replay (`enqueue(events, { replayId })`) is the one deliberate exception: a record that was
 * already delivered, failed or cancelled goes back to `pending` and is sent again with its stored
 * body and `webhook-id`, under a job id derived from both ids so it does not collide with the
 * original job. A record still pending is left to the job already delivering it.
 */
import { Queue, type JobsOptions } from 'bullmq'
import type { Redis } from 'ioredis'
import type { DeliveryConfig } from '../config/config.js'
import type { RedisKeys } from '../storage/keys.js'
import type { MatchedEvent } from './delivery-record.js'

export const DELIVERY_QUEUE = 'deliveries'
export const DELIVER_JOB = 'deliver'
export const RETRY_BACKOFF = 'retry-schedule'

export interface DeliveryJobData {
  deliveryId: string
}

export interface EnqueueOptions {
  /** Deliver again events whose records already exist (POST /watches/:id/replay). */
  replayId?: string
}

/**
 * Stores the record if it is new: the per-watch sequence is taken only then, so a sequence number
 * is never spent on a duplicate. With a replay job id (ARGV[11]) a finished record goes back to
 * pending. Returns {outcome, jobId}: outcome `new`, `replayed` or the status it already had.
 * Stats are touched only while the watch exists, so a late event cannot resurrect a deleted
 * watch's stats key.
 */
const STORE_RECORD = `
local status = redis.call('HGET', KEYS[1], 'status')
if status then
  if ARGV[11] == '' or status == 'pending' then return {status, redis.call('HGET', KEYS[1], 'jobId') or ARGV[1]} end
  redis.call('HSET', KEYS[1], 'status', 'pending', 'nextAttemptAt', '', 'jobId', ARGV[11])
  redis.call('PERSIST', KEYS[1])
  redis.call('SADD', KEYS[5], ARGV[1])
  if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('HINCRBY', KEYS[4], 'pending', 1) end
  return {'replayed', ARGV[11]}
end
local jobId = ARGV[11]
if jobId == '' then jobId = ARGV[1] end
local sequence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'watchId', ARGV[2], 'tenantId', ARGV[3], 'chain', ARGV[4],
  'type', ARGV[5], 'timestamp', ARGV[6], 'data', ARGV[7], 'firstSeenAt', ARGV[8], 'createdAt', ARGV[9],
  'sequence', sequence, 'status', 'pending', 'attempts', '[]', 'nextAttemptAt', '', 'jobId', jobId)
redis.call('ZADD', KEYS[3], ARGV[10], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'matched', 1)
redis.call('HINCRBY', KEYS[4], 'pending', 1)
return {'new', jobId}`

/** failed → pending under a new job id (POST /deliveries/:id/retry). Returns the old status. */
const REQUEUE_FAILED = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'failed' then return status or false end
redis.call('HSET', KEYS[1], 'status', 'pending', 'nextAttemptAt', '', 'jobId', ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[3], 'pending', 1) end
return 'failed'`

/** pending → cancelled; returns the job id to remove, or false when it was no longer pending. */
const CANCEL_PENDING = `
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return false end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'nextAttemptAt', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[3], 'pending', -1) end
return redis.call('HGET', KEYS[1], 'jobId') or ARGV[1]`

/** BullMQ custom job ids must not contain ':'. */
export function replayJobId(deliveryId: string, replayId: string): string {
  return `${deliveryId}-${replayId}`
}

export function deliveryJobOptions(delivery: DeliveryConfig, jobId: string): JobsOptions {
  return {
    jobId,
    attempts: delivery.retryScheduleMs.length + 1,
    backoff: { type: RETRY_BACKOFF },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 1000 },
  }
}

export class DeliveryQueue {
  readonly queue: Queue<DeliveryJobData>
  readonly #redis: Redis
  readonly #keys: RedisKeys
  readonly #delivery: DeliveryConfig

  constructor(redis: Redis, keys: RedisKeys, delivery: DeliveryConfig) {
    this.#redis = redis
    this.#keys = keys
    this.#delivery = delivery
    this.queue = new Queue<DeliveryJobData>(DELIVERY_QUEUE, { connection: redis, prefix: keys.queuePrefix })
  }

  /**
   * Stores and queues every event; resolves once all are durably queued (the subscriber moves its
   * cursor only after this). Returns how many were new.
   */
  async enqueue(events: readonly MatchedEvent[], options: EnqueueOptions = {}, nowMs = Date.now()): Promise<number> {
    if (events.length === 0) return 0
    const k = this.#keys
    const pipeline = this.#redis.pipeline()
    for (const e of events) {
      pipeline.eval(
        STORE_RECORD, 6,
        k.delivery(e.id), k.watchSequence(e.watchId), k.watchDeliveries(e.watchId), k.watchStats(e.watchId),
        k.watchPendingDeliveries(e.watchId), k.watch(e.watchId),
        e.id, e.watchId, e.tenantId, e.chain, e.type, e.timestamp, JSON.stringify(e.data),
        e.firstSeenAt, new Date(nowMs).toISOString(), nowMs,
        options.replayId ? replayJobId(e.id, options.replayId) : '',
      )
    }
    const results = (await pipeline.exec()) ?? []
    const toQueue: { deliveryId: string; jobId: string }[] = []
    let created = 0
    results.forEach(([err, reply], i) => {
      if (err) throw err
      const [outcome, jobId] = reply as [string, string]
      if (outcome === 'new') created++
      // A pending record whose job is missing (a crash between store and add) is queued again;
      // BullMQ ignores an add whose job id already exists.
      const queueIt = outcome === 'new' || outcome === 'replayed' || (outcome === 'pending' && !options.replayId)
      if (queueIt) toQueue.push({ deliveryId: events[i]!.id, jobId })
    })
    await this.#add(toQueue)
    return created
  }

  /**
   * A failed delivery goes back to the queue with a fresh set of attempts. Returns the status it
   * had (`failed` when it was queued again), or undefined when there is no such record.
   */
  async requeueFailed(deliveryId: string, watchId: string, nowMs = Date.now()): Promise<string | undefined> {
    const k = this.#keys
    const jobId = `${deliveryId}-retry${nowMs}`
    const previous = (await this.#redis.eval(
      REQUEUE_FAILED, 4,
      k.delivery(deliveryId), k.watchPendingDeliveries(watchId), k.watchStats(watchId), k.watch(watchId),
      deliveryId, jobId,
    )) as string | null
    if (previous === 'failed') await this.#add([{ deliveryId, jobId }])
    return previous ?? undefined
  }

  /**
   * Every pending delivery of the watch becomes `cancelled` and its job is removed from the queue.
   * A job running right now cannot be removed; the worker sees the status and records nothing more.
   */
  async cancelWatch(watchId: string): Promise<number> {
    const k = this.#keys
    let cancelled = 0
    let cursor = '0'
    do {
      const [next, ids] = await this.#redis.sscan(k.watchPendingDeliveries(watchId), cursor, 'COUNT', 500)
      cursor = next
      const pipeline = this.#redis.pipeline()
      for (const id of ids) {
        pipeline.eval(
          CANCEL_PENDING, 4, k.delivery(id), k.watchPendingDeliveries(watchId), k.watchStats(watchId), k.watch(watchId),
          id, this.#delivery.failedRetentionMs,
        )
      }
      const jobIds = ((await pipeline.exec()) ?? []).map(([err, jobId]) => {
        if (err) throw err
        return jobId as string | null
      }).filter((jobId): jobId is string => typeof jobId === 'string')
      cancelled += jobIds.length
      // A running job is locked and cannot be removed; removal is only tidying, the status is what counts.
      await Promise.all(jobIds.map((jobId) => this.queue.remove(jobId).catch(() => 0)))
    } while (cursor !== '0')
    return cancelled
  }

  async #add(jobs: readonly { deliveryId: string; jobId: string }[]): Promise<void> {
    if (jobs.length === 0) return
    await this.queue.addBulk(jobs.map(({ deliveryId, jobId }) => ({
      name: DELIVER_JOB,
      data: { deliveryId },
      opts: deliveryJobOptions(this.#delivery, jobId),
    })))
  }

  async close(): Promise<void> {
    await this.queue.close()
  }
}
