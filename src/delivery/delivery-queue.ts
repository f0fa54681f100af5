/**
 * The producer side of delivery: stores each matched event as a delivery record (once: the
 * `webhook-id` is the key) and queues a BullMQ job whose id is that same `webhook-id`. Processing
 * a block twice (backfill overlap, a second subscriber, a restart) therefore queues nothing twice.
 *
 * A replay (`enqueue(events, { replayId })`) is the one deliberate exception: a record that was
 * already delivered, failed or cancelled goes back to `pending` and is sent again with its stored
 * body and `webhook-id`, under a job id derived from both ids so it does not collide with the
 * original job. A record still pending is left to the job already delivering it.
 *
 * There is one BullMQ queue per delivery shard (storage/keys.ts), named alike, each under its
 * shard's hash tag: BullMQ keeps a queue in one slot, so on a Redis Cluster the shards' queues are
 * what spreads the delivery work over the masters. A job goes to its watch's shard.
 */
import { Queue, type JobsOptions } from 'bullmq'
import type { RedisClient } from '../storage/redis.js'
import type { DeliveryConfig, StreamConfig } from '../config/config.js'
import { groupBy } from '../domain/group-by.js'
import type { RedisKeys } from '../storage/keys.js'
import type { MatchedEvent } from './delivery-record.js'
import { DeliveryStore } from './delivery-store.js'

export const DELIVERY_QUEUE = 'deliveries'
export const DELIVER_JOB = 'deliver'
export const RETRY_BACKOFF = 'retry-schedule'

export interface DeliveryJobData {
  deliveryId: string
  /**
   * The record's watch, so the worker reads the watch beside the record instead of after it.
   * Absent from jobs queued by versions before it; the worker then reads the record first.
   */
  watchId?: string
}

export interface EnqueueOptions {
  /** Deliver again events whose records already exist (POST /watches/:id/replay). */
  replayId?: string
}

/** BullMQ custom job ids must not contain ':'. */
export function replayJobId(deliveryId: string, replayId: string): string {
  return `${deliveryId}-${replayId}`
}

export function deliveryJobOptions(delivery: DeliveryConfig, jobId: string): JobsOptions {
  return {
    jobId,
    attempts: delivery.retryScheduleMs.length + 1,
    backoff: { type: RETRY_BACKOFF },
    // The delivery record is the history: a completed job would only cost memory.
    removeOnComplete: true,
    removeOnFail: { count: 1000 },
  }
}

export class DeliveryQueue {
  /** Shard k's queue is `queues[k]`. */
  readonly queues: readonly Queue<DeliveryJobData>[]
  readonly store: DeliveryStore
  readonly #keys: RedisKeys
  readonly #delivery: DeliveryConfig

  /** `stream`: new events also go to their tenant's event log, kept `stream.retentionMs`. */
  constructor(redis: RedisClient, keys: RedisKeys, delivery: DeliveryConfig, stream: StreamConfig) {
    this.#keys = keys
    this.#delivery = delivery
    this.store = new DeliveryStore(redis, keys, delivery, stream.retentionMs)
    this.queues = Array.from({ length: keys.deliveryShards }, (_, shard) =>
      new Queue<DeliveryJobData>(DELIVERY_QUEUE, { connection: redis, prefix: keys.shardTag(shard) }))
  }

  /** The queue of the watch's shard. */
  queueOf(watchId: string): Queue<DeliveryJobData> {
    return this.queues[this.#keys.shardOf(watchId)]!
  }

  /**
   * Stores and queues every event; resolves once all are durably queued (the subscriber moves its
   * cursor only after this). Returns how many were new.
   */
  async enqueue(matched: readonly MatchedEvent[], options: EnqueueOptions = {}, nowMs = Date.now()): Promise<number> {
    // Every matched event of every chain passes here, and the store script appends each new one
    // to its tenant's event log. A watch without a url gets no record and no webhook: its events
    // go to the event log only.
    const events = matched
    if (events.length === 0) return 0
    const { replayId } = options
    const replayJobIds = replayId ? events.map((e) => replayJobId(e.id, replayId)) : undefined
    const stored = await this.store.storeMatched(events, replayJobIds, nowMs)
    const toQueue = stored.flatMap(({ outcome, jobId }, i) => {
      // A pending record whose job is missing (a crash between store and add) is queued again;
      // BullMQ ignores an add whose job id already exists. A replay leaves pending ones to their job.
      const queueIt = outcome === 'new' || outcome === 'replayed' || (outcome === 'pending' && !replayId)
      return queueIt ? [{ deliveryId: events[i]!.id, watchId: events[i]!.watchId, jobId }] : []
    })
    await this.#add(toQueue)
    return stored.filter(({ outcome }) => outcome === 'new').length
  }

  /**
   * A failed delivery goes back to the queue with a fresh set of attempts. Returns the status it
   * had (`failed` when it was queued again), or undefined when there is no such record.
   */
  async requeueFailed(deliveryId: string, watchId: string, nowMs = Date.now()): Promise<string | undefined> {
    const jobId = `${deliveryId}-retry${nowMs}`
    const previous = await this.store.requeueFailed(deliveryId, watchId, jobId, nowMs)
    if (previous === 'failed') await this.#add([{ deliveryId, watchId, jobId }])
    // Held behind an earlier delivery of its ordered watch: queued when that one finishes.
    return previous === 'held' ? 'failed' : previous
  }

  /**
   * An ordered watch's delivery is finished: queue the next one (README: one in flight, in
   * sequence order). Called by the worker inside the finished job, so a crash before it runs
   * leaves the job to BullMQ's stalled-job recovery, which calls it again.
   */
  async releaseOrdered(watchId: string, finishedId: string): Promise<void> {
    const next = await this.store.nextOrdered(watchId, finishedId)
    if (next) await this.#add([{ ...next, watchId }])
  }

  /**
   * Every pending delivery of the watch becomes `cancelled` and its job is removed from the queue.
   * A job running right now cannot be removed; the worker sees the status and records nothing more.
   */
  async cancelWatch(watchId: string): Promise<number> {
    let cancelled = 0
    let cursor = '0'
    const queue = this.queueOf(watchId)
    do {
      const [next, ids] = await this.store.scanPending(watchId, cursor)
      cursor = next
      const jobIds = await this.store.cancel(ids, watchId)
      cancelled += jobIds.length
      // A running job is locked and cannot be removed; removal is only tidying, the status is what counts.
      await Promise.all(jobIds.map((jobId) => queue.remove(jobId).catch(() => 0)))
    } while (cursor !== '0')
    await this.store.forgetOrdered(watchId)
    await this.store.refreshOldestPending(watchId)
    return cancelled
  }

  /** Jobs per state over every shard's queue, for /admin/status. */
  async jobCounts(): Promise<{ waiting: number; active: number; delayed: number; failed: number }> {
    const perShard = await Promise.all(this.queues.map((queue) => queue.getJobCounts('waiting', 'active', 'delayed', 'failed')))
    const sum = (state: string) => perShard.reduce((total, counts) => total + (counts[state] ?? 0), 0)
    return { waiting: sum('waiting'), active: sum('active'), delayed: sum('delayed'), failed: sum('failed') }
  }

  /** Each job to its watch's shard's queue, one addBulk per shard. */
  async #add(jobs: readonly { deliveryId: string; watchId: string; jobId: string }[]): Promise<void> {
    const byShard = groupBy(jobs, ({ watchId }) => this.#keys.shardOf(watchId))
    await Promise.all([...byShard].map(([shard, list]) => this.queues[shard]!.addBulk(list.map(({ deliveryId, watchId, jobId }) => ({
      name: DELIVER_JOB,
      data: { deliveryId, watchId },
      opts: deliveryJobOptions(this.#delivery, jobId),
    })))))
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()))
  }
}
