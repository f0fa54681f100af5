/**
 * The BullMQ worker that turns a queued delivery id into a signed POST (README, "The webhook").
 *
 * One job is one attempt: the processor reads the record and the watch side by side (the URL as it
 * is now, read after the job started: batched-reads.ts), takes a per-URL slot, signs the stored
 * body, posts it and records the attempt. A failed attempt that may be retried throws
 * `RetryScheduled`, whose delay (from the retry policy, decided and recorded here) the custom
 * backoff hands back to BullMQ, so `nextAttemptAt` on the record is exactly when BullMQ runs the
 * job again. Waiting that is not an attempt (URL at its cap, watch paused, shutdown) moves the
 * job to delayed without spending one.
 *
 * Watch states at delivery time: deleted → the delivery is `cancelled`; paused → postponed and
 * checked again every 30 s (nothing is dropped while a user pauses); disabled → the delivery
 * `failed` without a request (after re-enabling, POST /deliveries/:id/retry sends it);
 * active and completed (a one-shot watch that fired) → sent.
 *
 * Every worker process serves every delivery shard (storage/keys.ts): one BullMQ Worker per
 * shard's queue, sharing the process's `delivery.concurrency` evenly. A hot watch lives on one
 * shard; its URL's `maxConcurrencyPerUrl` (10 by default) is below a shard's share (17 of 100 on
 * a cluster's 6 shards), so the split does not slow it.
 */
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq'
import type { RedisClient } from '../storage/redis.js'
import { hasCode } from '../domain/errors.js'
import type { Config } from '../config/config.js'
import { redactUrl } from '../domain/redact.js'
import type { Watch } from '../domain/watch-types.js'
import type { WatchToSend } from '../storage/watch-store.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { RedisKeys } from '../storage/keys.js'
import type { WatchService } from '../services/watch-service.js'
import { DeliveryError } from './delivery-error.js'
import { DELIVERY_QUEUE, RETRY_BACKOFF, type DeliveryJobData, type DeliveryQueue } from './delivery-queue.js'
import type { DeliveryAttempt } from './delivery-record.js'
import type { AttemptOutcome, DeliveryToSend } from './delivery-store.js'
import { PostAbortedError, type WebhookHttpClient } from './http-client.js'
import { nextRetryDelayMs, overCapDelayMs } from './retry-policy.js'
import { webhookHeaders } from './signing.js'
import { UrlSlots } from './url-slots.js'
import { BatchedReads } from './batched-reads.js'

/** How often a paused watch's queued deliveries look again. */
export const PAUSED_RECHECK_MS = 30_000
/** A slot's lease outlasts the request timeout by this much (signing, recording). */
const LEASE_MARGIN_MS = 5_000
/** SIGTERM: in-flight requests get this long to finish, then go back to the queue (README, "Operations": exit within 10 s). */
const CLOSE_GRACE_MS = 4_000
/** A job may be recovered from a crashed worker this many times before BullMQ fails it. */
const MAX_STALLED_COUNT = 5
/**
 * Crash recovery: a worker killed mid-request holds its jobs' locks until they expire, and a
 * stalled check then puts the jobs back. BullMQ's defaults (30 s lock, 30 s check) make that up
 * to 60 s; a 15 s lock (renewed every 7.5 s, by one call per worker for all its jobs) and a 10 s
 * check make it at most 25 s. The extra Redis work is one lock-renewal call per worker every
 * 7.5 s instead of 15 s, and a stalled check every 10 s instead of 30 s; both scripts touch every
 * active job, so measured (bench/worker-crash.bench.ts) it is 0.66 instead of 0.26 Redis commands
 * per second per active job, about a microsecond of Redis time. A worker cut off from Redis
 * cannot renew: after 15 s another worker may send the job again, under the same webhook-id,
 * which receivers dedupe by.
 */
const LOCK_DURATION_MS = 15_000
const STALLED_INTERVAL_MS = 10_000

/** A failed attempt with another one scheduled: BullMQ retries it after `delayMs` (see the backoff). */
export class RetryScheduled extends Error {
  readonly delayMs: number

  constructor(cause: DeliveryError, delayMs: number) {
    super(cause.message, { cause })
    this.name = 'RetryScheduled'
    this.delayMs = delayMs
  }
}

export interface DeliveryWorkerDeps {
  config: Config
  logger: Logger
  /** Commands; BullMQ duplicates it for its blocking reads. */
  redis: RedisClient
  keys: RedisKeys
  /** Reads watches and their secrets, and disables a watch (410, disable-after). */
  watches: WatchService
  deliveryQueue: DeliveryQueue
  httpClient: WebhookHttpClient
  metrics: Metrics
  random?: () => number
  now?: () => number
}

/** Timings; tests shorten them (e.g. so a killed worker's job is recovered within seconds). */
export interface DeliveryWorkerTuning {
  lockDurationMs?: number
  stalledIntervalMs?: number
  closeGraceMs?: number
  pausedRecheckMs?: number
}

export class DeliveryWorker {
  /** Shard k's Worker is `workers[k]`. */
  readonly workers: readonly Worker<DeliveryJobData>[]
  readonly #deps: DeliveryWorkerDeps
  readonly #slots: UrlSlots
  /** Per shard: one MGET covers keys of one hash tag. */
  readonly #records: BatchedReads<DeliveryToSend | undefined>[]
  readonly #watches: BatchedReads<WatchToSend | undefined>
  readonly #random: () => number
  readonly #now: () => number
  readonly #closeGraceMs: number
  readonly #pausedRecheckMs: number
  #closing: Promise<void> | undefined

  constructor(deps: DeliveryWorkerDeps, tuning: DeliveryWorkerTuning = {}) {
    const { config, redis, keys } = deps
    this.#deps = deps
    this.#random = deps.random ?? Math.random
    this.#now = deps.now ?? Date.now
    this.#closeGraceMs = tuning.closeGraceMs ?? CLOSE_GRACE_MS
    this.#pausedRecheckMs = tuning.pausedRecheckMs ?? PAUSED_RECHECK_MS
    this.#records = Array.from({ length: keys.deliveryShards }, (_, shard) => new BatchedReads((ids) => deps.deliveryQueue.store.getManyToSend(ids, shard)))
    this.#watches = new BatchedReads((watchIds) => deps.watches.toSend(watchIds))
    this.#slots = new UrlSlots(redis, keys, config.delivery.maxConcurrencyPerUrl, config.delivery.timeoutMs + LEASE_MARGIN_MS)
    const concurrency = Math.ceil(config.delivery.concurrency / keys.deliveryShards)
    this.workers = Array.from({ length: keys.deliveryShards }, (_, shard) => {
      const worker = new Worker<DeliveryJobData>(
        DELIVERY_QUEUE,
        (job, token, signal) => this.#process(job, shard, token, signal),
        {
          connection: redis,
          prefix: keys.shardTag(shard),
          concurrency,
          maxStalledCount: MAX_STALLED_COUNT,
          lockDuration: tuning.lockDurationMs ?? LOCK_DURATION_MS,
          stalledInterval: tuning.stalledIntervalMs ?? STALLED_INTERVAL_MS,
          settings: {
            backoffStrategy: (_attemptsMade, type, err) => {
              if (type === RETRY_BACKOFF && err instanceof RetryScheduled) return err.delayMs
              // Not a failure this worker classified (e.g. Redis went away mid-job): the first step.
              return config.delivery.retryScheduleMs[0] ?? 0
            },
          },
        },
      )
      worker.on('error', (err) => deps.logger.error({ err, shard }, 'delivery worker error'))
      worker.on('failed', (job, err) => {
        if (job && !(err instanceof RetryScheduled) && !(err instanceof UnrecoverableError)) {
          this.#failedUnexpectedly(job, shard, err).catch((cause: unknown) => deps.logger.error({ err: cause }, 'could not record a failed delivery'))
        }
      })
      return worker
    })
  }

  /**
   * An error this worker did not classify (Redis unreachable mid-job, a bug) still spends a BullMQ
   * attempt; when it spends the last one, the record must not stay `pending` for ever.
   */
  async #failedUnexpectedly(job: Job<DeliveryJobData>, shard: number, err: Error): Promise<void> {
    this.#deps.logger.error({ err, deliveryId: job.data.deliveryId, attemptsMade: job.attemptsMade }, 'delivery job failed unexpectedly')
    if (job.attemptsMade < (job.opts.attempts ?? 1)) return
    const record = await this.#deps.deliveryQueue.store.getToSend(job.data.deliveryId, shard)
    if (!record) return
    const nowMs = this.#now()
    const error = new DeliveryError('BH_DELIVERY_INTERNAL', err.message, { retryable: false })
    const attempt: DeliveryAttempt = { at: new Date(nowMs).toISOString(), statusCode: null, durationMs: 0, error: `${error.code}: ${error.message}` }
    await this.#deps.deliveryQueue.store.recordAttempt(record, attempt, 'failed', null, { ttlMs: this.#deps.config.delivery.disableAfterMs, counts: false }, nowMs)
    this.#deps.metrics.deliveries.inc({ outcome: 'failed' })
    if (record.ordered) await this.#deps.deliveryQueue.releaseOrdered(record.watchId, record.id)
  }

  /** Stops taking jobs, lets in-flight requests finish for a while, then returns the rest to the queue. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const grace = setTimeout(() => { for (const worker of this.workers) worker.cancelAllJobs('shutting down') }, this.#closeGraceMs)
      try {
        await Promise.all(this.workers.map((worker) => worker.close()))
      } finally {
        clearTimeout(grace)
      }
    })()
    return this.#closing
  }

  async #process(job: Job<DeliveryJobData>, shard: number, token: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    // The watch is asked for beside the record when the job names it (one round trip), but awaited,
    // and a failed read seen, only once the record is known to be pending, as when read after it.
    const { watchId } = job.data
    const namedWatch = typeof watchId === 'string' ? this.#watches.get(watchId) : undefined
    namedWatch?.catch(() => undefined)
    const record = await this.#records[shard]!.get(job.data.deliveryId)
    const watchRead = record && watchId === record.watchId ? namedWatch : undefined
    if (!record?.ordered) return this.#deliver(job, shard, record, watchRead, token, signal)
    // An ordered watch's next delivery is queued once this one is finished: returned (delivered,
    // cancelled, skipped because no longer pending) or failed for good; not while it retries.
    let result: string
    try {
      result = await this.#deliver(job, shard, record, watchRead, token, signal)
    } catch (err) {
      if (err instanceof UnrecoverableError) await this.#deps.deliveryQueue.releaseOrdered(record.watchId, record.id)
      throw err
    }
    await this.#deps.deliveryQueue.releaseOrdered(record.watchId, record.id)
    return result
  }

  /** `watchRead`: the record's watch, when it was read beside the record. */
  async #deliver(
    job: Job<DeliveryJobData>, shard: number, record: DeliveryToSend | undefined, watchRead: Promise<WatchToSend | undefined> | undefined,
    token: string | undefined, signal: AbortSignal | undefined,
  ): Promise<string> {
    const { deliveryQueue } = this.#deps
    if (!record || record.status !== 'pending') return `skipped: ${record?.status ?? 'no record'}`
    // A pending record's payload has no expiry; only a hand-edited Redis gets here, and no body beats a wrong one.
    const { body } = record
    if (body === null) return 'skipped: the payload is gone'
    // The watch as it is now and its secrets, read after this job started (with those of the jobs
    // that started with it). The secrets are read now, so during a rotation both sign.
    const toSend = await (watchRead ?? this.#watches.get(record.watchId))
    const watch = toSend?.watch
    // Without a url the watch sends nothing (its events go to the event stream only).
    if (!toSend || !watch || watch.url === undefined) {
      await deliveryQueue.store.cancel([record.id], record.watchId)
      this.#deps.metrics.deliveries.inc({ outcome: 'cancelled' })
      return watch ? 'cancelled: the watch has no url' : 'cancelled: the watch was deleted'
    }
    const url = watch.url
    if (watch.status === 'paused') return this.#postpone(job, token, this.#pausedRecheckMs)
    if (watch.status === 'disabled') {
      const error = new DeliveryError('BH_DELIVERY_WATCH_DISABLED', `the watch is disabled (${watch.disabledReason ?? 'by blockhook'})`, { retryable: false })
      await this.#finishAttempt(job, record, watch, { statusCode: null, durationMs: 0, error, response: null })
      throw new UnrecoverableError(error.message)
    }

    const slot = await this.#slots.acquire(url, record.id, shard, this.#now())
    if (slot === 'not-pending') return 'skipped: no longer pending'
    if (slot === 'full') {
      // Every start that neither failed nor is this one was a postponement (or a stall).
      const postponements = Math.max(0, job.attemptsStarted - job.attemptsMade - 1)
      return this.#postpone(job, token, overCapDelayMs(postponements, this.#random))
    }
    // After a failure the slot is held until the attempt is recorded, so after a 410 no other job
    // reaches the URL before its queued deliveries are cancelled. A 2xx leaves nothing to guard:
    // the slot goes back while the attempt is recorded, one round trip fewer on the job's path.
    let released: Promise<void> | undefined
    try {
      let result
      try {
        const timestampSec = Math.floor(this.#now() / 1000)
        result = await this.#deps.httpClient.post(
          { url, headers: webhookHeaders({ id: record.id, timestampSec, body, secrets: toSend.secrets }), body },
          signal,
        )
      } catch (err) {
        if (err instanceof PostAbortedError) return await this.#postpone(job, token, 0)
        throw err
      }
      if (!result.error) released = slot.release()
      return await this.#finishAttempt(job, record, watch, result)
    } finally {
      await (released ?? slot.release())
    }
  }

  /** Records the attempt and its consequences; throws to make BullMQ retry or fail the job. */
  async #finishAttempt(
    job: Job<DeliveryJobData>,
    record: DeliveryToSend,
    watch: Watch,
    result: { statusCode: number | null; durationMs: number; error: DeliveryError | undefined; response: string | null },
  ): Promise<string> {
    const { config, deliveryQueue, metrics, logger } = this.#deps
    const nowMs = this.#now()
    const { error } = result
    // The job's own attempt budget (fixed when it was queued) bounds the schedule, so a schedule
    // lengthened by a config change cannot promise a retry BullMQ will not run.
    const retryScheduleMs = config.delivery.retryScheduleMs.slice(0, Math.max(0, (job.opts.attempts ?? 1) - 1))
    const delayMs = error
      ? nextRetryDelayMs({ attemptsMade: job.attemptsMade + 1, retryScheduleMs, error, random: this.#random })
      : undefined
    const outcome: AttemptOutcome = !error ? 'delivered' : delayMs !== undefined ? 'retrying' : 'failed'
    const attempt: DeliveryAttempt = {
      at: new Date(nowMs).toISOString(),
      statusCode: result.statusCode,
      durationMs: result.durationMs,
      error: error ? `${error.code}: ${error.message}` : null,
      ...(result.response ? { response: result.response } : {}),
    }
    const nextAttemptAt = delayMs !== undefined ? new Date(nowMs + delayMs).toISOString() : null
    // A replay or manual retry re-sends an old event; its age is not delivery latency.
    const latencyMs = !error && job.id === record.id ? Math.max(0, nowMs - record.firstSeenAt) : undefined
    const { failingSinceMs } = await deliveryQueue.store.recordAttempt(
      record, attempt, outcome, nextAttemptAt, { ttlMs: config.delivery.disableAfterMs, counts: watch.status !== 'disabled' }, nowMs, latencyMs,
    )

    metrics.deliveries.inc({ outcome })
    if (result.statusCode !== null) metrics.deliveryDuration.observe(result.durationMs / 1000)
    if (latencyMs !== undefined) metrics.eventToDelivery.observe(latencyMs / 1000)

    if (!error) return 'delivered'
    logger.info(
      { deliveryId: record.id, watchId: watch.id, url: watch.url && redactUrl(watch.url), statusCode: result.statusCode, code: error.code, outcome, nextAttemptAt },
      'delivery attempt failed',
    )
    if (hasCode(error, 'BH_DELIVERY_GONE')) {
      // Cancel first: a job starting in between then finds its record cancelled, not the watch disabled.
      await deliveryQueue.cancelWatch(watch.id)
      await this.#disable(watch, 'the URL answered 410 Gone')
    } else if (failingSinceMs !== undefined && nowMs - failingSinceMs >= config.delivery.disableAfterMs) {
      await this.#disable(watch, `every delivery failed since ${new Date(failingSinceMs).toISOString()}`)
    }
    if (delayMs !== undefined) throw new RetryScheduled(error, delayMs)
    throw new UnrecoverableError(attempt.error ?? error.message)
  }

  async #disable(watch: Watch, reason: string): Promise<void> {
    // False when deleted, paused or disabled meanwhile: nothing left to disable.
    if (await this.#deps.watches.disable(watch.id, reason)) this.#deps.logger.warn({ watchId: watch.id, reason }, 'watch disabled')
  }

  /** Back to the queue after `delayMs` without spending an attempt. */
  async #postpone(job: Job<DeliveryJobData>, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(this.#now() + delayMs, token)
    throw new DelayedError()
  }
}
