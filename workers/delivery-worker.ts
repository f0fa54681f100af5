/**
 * The `worker` role: a delivery worker with its own Redis connection, HTTP agents and metrics
 * publisher. `close()` (SIGTERM) drains in order: the BullMQ worker (in-flight requests finish
 * or go back to the queue), the queue producer, the HTTP agents, the metrics snapshot, Redis.
 */
import type { RunningRole } from '../src/cli.js'
import type { Config } from '../src/config/config.js'
import { DeliveryQueue } from '../src/delivery/delivery-queue.js'
import { DeliveryWorker, type DeliveryWorkerTuning } from '../src/delivery/delivery-worker.js'
import { WebhookHttpClient } from '../src/delivery/http-client.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import type { Resolver } from '../src/domain/url-policy.js'
import type { Logger } from '../src/logger.js'
import { createMetrics, MetricsPublisher, type Metrics } from '../src/metrics.js'
import { redisKeys } from '../src/storage/keys.js'
import { createRedis } from '../src/storage/redis.js'
import { SecretBox } from '../src/storage/secret-box.js'
import { WatchService } from '../src/services/watch-service.js'
import { WatchStore } from '../src/storage/watch-store.js'

export interface WorkerRoleOptions {
  /** Shared with the other roles of the process (`blockhook all`); its own otherwise. */
  metrics?: Metrics
  /** DNS for the URL policy (tests inject one). */
  resolve?: Resolver
  tuning?: DeliveryWorkerTuning
}

export async function startWorker(config: Config, logger: Logger, options: WorkerRoleOptions = {}): Promise<RunningRole> {
  const redis = createRedis(config.redisUrl, 'worker')
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'))
  const keys = redisKeys(config.redisPrefix)
  const metrics = options.metrics ?? createMetrics()
  const publisher = options.metrics ? undefined : new MetricsPublisher(redis, keys.queuePrefix, metrics)
  const deliveryQueue = new DeliveryQueue(redis, keys, config.delivery)
  const httpClient = new WebhookHttpClient({
    timeoutMs: config.delivery.timeoutMs,
    userAgent: USER_AGENT,
    allowPrivateUrls: config.allowPrivateUrls,
    resolve: options.resolve,
  })
  const worker = new DeliveryWorker({
    config, logger, redis, keys, metrics, httpClient, deliveryQueue,
    watches: WatchService.forConfig(config, new WatchStore(redis, keys, new SecretBox(config.encryptionKey)), deliveryQueue, options.resolve),
  }, options.tuning)
  publisher?.start((err) => logger.warn({ err }, 'could not publish metrics'))
  logger.info({ concurrency: config.delivery.concurrency }, 'delivery worker started')

  let closing: Promise<void> | undefined
  return {
    name: 'worker',
    close: () => {
      closing ??= (async () => {
        await worker.close()
        await deliveryQueue.close()
        httpClient.close()
        await publisher?.stop().catch((err: unknown) => logger.warn({ err }, 'could not remove the metrics snapshot'))
        await redis.quit()
      })()
      return closing
    },
  }
}
