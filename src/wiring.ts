/**
 * The one place that builds what a role runs on: the Redis connection (with its error handler),
 * the key builder, the metrics and their publisher, the delivery queue, the stores and the watch
 * service. The api, subscriber and worker roles, `blockhook dev` and the test helpers all start
 * from `wire()`, and `connectRedis` is where a single Redis or a Redis Cluster is chosen.
 */
import { AlertOutbox } from './alerts/alert-outbox.js'
import type { Config } from './config/config.js'
import { DeliveryQueue } from './delivery/delivery-queue.js'
import type { Resolver } from './domain/url-policy.js'
import type { Logger } from './logger.js'
import { createMetrics, MetricsPublisher, type Metrics } from './metrics.js'
import { WatchService } from './services/watch-service.js'
import { redisKeys, type RedisKeys } from './storage/keys.js'
import { RedisMemoryWatch } from './storage/redis-memory.js'
import { createRedis, createRedisCluster, logRedisErrors, type RedisClient } from './storage/redis.js'
import { SecretBox } from './storage/secret-box.js'
import { TenantStore } from './storage/tenant-store.js'
import { WatchStore } from './storage/watch-store.js'

export interface WiringOptions {
  /** DNS for the webhook URL policy; the system resolver when absent (tests inject one). */
  resolve?: Resolver
  /** Delivery shards, when not the layout's own (tests spread a single Redis's keys over several). */
  deliveryShards?: number
}

export interface Wiring {
  readonly config: Config
  readonly redis: RedisClient
  readonly keys: RedisKeys
  readonly metrics: Metrics
  /** This process's metrics snapshot in Redis, which /metrics sums over every process. The role starts it. */
  readonly metricsPublisher: MetricsPublisher
  readonly deliveryQueue: DeliveryQueue
  readonly tenants: TenantStore
  readonly watches: WatchStore
  readonly watchService: WatchService
  /** Logs a full Redis (refused writes, memory above 80 %); started here, stopped by close(). */
  readonly memoryWatch: RedisMemoryWatch
  /** Closes the queue producer, removes the metrics snapshot and quits Redis, in that order; once. */
  close(): Promise<void>
}

/** A connection for `role`; errors are logged (ioredis reconnects on its own), never thrown at the process. */
export function connectRedis(config: Config, role: string, logger: Logger): RedisClient {
  return logRedisErrors(config.redisCluster ? createRedisCluster(config.redisClusterNodes, role) : createRedis(config.redisUrl, role), logger)
}

export function wire(config: Config, role: string, logger: Logger, options: WiringOptions = {}): Wiring {
  const redis = connectRedis(config, role, logger)
  const keys = redisKeys(config.redisPrefix, { cluster: config.redisCluster, ...(options.deliveryShards ? { shards: options.deliveryShards } : {}) })
  const metrics = createMetrics()
  const metricsPublisher = new MetricsPublisher(redis, keys.controlTag, metrics)
  const deliveryQueue = new DeliveryQueue(redis, keys, config.delivery, config.stream)
  // The queue runs on `redis`, whose errors are logged above; without a listener BullMQ prints
  // every one again to stderr, unstructured.
  for (const queue of deliveryQueue.queues) queue.on('error', (err: Error) => logger.debug({ err: err.message }, 'delivery queue error'))
  const watches = new WatchStore(redis, keys, new SecretBox(config.encryptionKey))
  const memoryWatch = new RedisMemoryWatch(redis, keys.writeProbes, logger)
  memoryWatch.start()
  let closing: Promise<void> | undefined
  return {
    config,
    redis,
    keys,
    metrics,
    metricsPublisher,
    deliveryQueue,
    tenants: new TenantStore(redis, keys),
    watches,
    watchService: WatchService.forConfig(config, redis, keys, watches, deliveryQueue, options.resolve, config.alerts && new AlertOutbox(redis, keys)),
    memoryWatch,
    close: () => (closing ??= (async () => {
      memoryWatch.stop()
      await deliveryQueue.close()
      await metricsPublisher.stop().catch((err: unknown) => logger.warn({ err }, 'could not remove the metrics snapshot'))
      await redis.quit()
    })()),
  }
}
