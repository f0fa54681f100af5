/**
 * The producer side of delivery: stores each matched event as a delivery record (once: the
 * `webhook-id` is the key) and queues a BullMQ job whose id is that same `webhook-id`. Processing
 * a block twice (backfill overlap, a second subscriber, a restart) therefore queues nothing twice.
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

/**
 * Stores the record if it is new: the per-watch sequence is taken only then, so a sequence number
 * is never spent on a duplicate. Returns the record's status (`new` when just created).
 */
const STORE_RECORD = `
local status = redis.call('HGET', KEYS[1], 'status')
if status then return status end
local sequence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'watchId', ARGV[2], 'tenantId', ARGV[3], 'chain', ARGV[4],
  'type', ARGV[5], 'timestamp', ARGV[6], 'data', ARGV[7], 'firstSeenAt', ARGV[8], 'createdAt', ARGV[9],
  'sequence', sequence, 'status', 'pending', 'attempts', '[]', 'nextAttemptAt', '')
redis.call('ZADD', KEYS[3], ARGV[10], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'matched', 1)
redis.call('HINCRBY', KEYS[4], 'pending', 1)
return 'new'`

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
  async enqueue(events: readonly MatchedEvent[], nowMs = Date.now()): Promise<number> {
    if (events.length === 0) return 0
    const k = this.#keys
    const pipeline = this.#redis.pipeline()
    for (const e of events) {
      pipeline.eval(
        STORE_RECORD, 4,
        k.delivery(e.id), k.watchSequence(e.watchId), k.watchDeliveries(e.watchId), k.watchStats(e.watchId),
        e.id, e.watchId, e.tenantId, e.chain, e.type, e.timestamp, JSON.stringify(e.data),
        e.firstSeenAt, new Date(nowMs).toISOString(), nowMs,
      )
    }
    const results = (await pipeline.exec()) ?? []
    const toQueue: MatchedEvent[] = []
    results.forEach(([err, status], i) => {
      if (err) throw err
      // A pending record whose job is missing (a crash between store and add) is queued again;
      // BullMQ ignores an add whose job id already exists.
      if (status === 'new' || status === 'pending') toQueue.push(events[i]!)
    })
    if (toQueue.length > 0) {
      await this.queue.addBulk(toQueue.map((e) => ({
        name: DELIVER_JOB,
        data: { deliveryId: e.id },
        opts: deliveryJobOptions(this.#delivery, e.id),
      })))
    }
    return results.filter(([, status]) => status === 'new').length
  }

  async close(): Promise<void> {
    await this.queue.close()
  }
}
