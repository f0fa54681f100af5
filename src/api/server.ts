/**
 * The api role as a process part (STYLE §1): creates what `buildApi` needs, listens on HOST:PORT
 * and closes everything it opened, once, in order: stop taking requests, then the metrics
 * publisher, the queue producer and Redis.
 */
import type { Config } from '../config/config.js'
import { DeliveryQueue } from '../delivery/delivery-queue.js'
import type { Logger } from '../logger.js'
import { createMetrics, MetricsPublisher, type Metrics } from '../metrics.js'
import { redisKeys } from '../storage/keys.js'
import { createRedis } from '../storage/redis.js'
import { SecretBox } from '../storage/secret-box.js'
import { TenantStore } from '../storage/tenant-store.js'
import { WatchStore } from '../storage/watch-store.js'
import { buildApi, type ApiDeps } from './app.js'

export interface StartApiOptions {
  /** The process's shared metrics when several roles run in it (`blockhook all`). */
  metrics?: Metrics
  readinessChecks?: ApiDeps['readinessChecks']
}

export async function startApi(config: Config, logger: Logger, options: StartApiOptions = {}): Promise<{ name: string; close(): Promise<void> }> {
  if (!config.encryptionKey) {
    logger.warn('BLOCKHOOK_ENCRYPTION_KEY is not set: webhook secrets are stored in Redis unencrypted')
  }
  const redis = createRedis(config.redisUrl, 'api')
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'))
  const keys = redisKeys(config.redisPrefix)
  const metrics = options.metrics ?? createMetrics()
  const metricsPublisher = new MetricsPublisher(redis, keys.queuePrefix, metrics)
  const deliveryQueue = new DeliveryQueue(redis, keys, config.delivery)
  const deps: ApiDeps = {
    redis,
    keys,
    tenants: new TenantStore(redis, keys),
    watches: new WatchStore(redis, keys, new SecretBox(config.encryptionKey)),
    deliveryQueue,
    metrics,
    metricsPublisher,
    logger,
    readinessChecks: options.readinessChecks,
  }
  const app = await buildApi(config, deps)
  await app.listen({ host: config.host, port: config.port })
  metricsPublisher.start((err) => logger.warn({ err }, 'publishing metrics failed'))

  let closing: Promise<void> | undefined
  return {
    name: 'api',
    close: () => (closing ??= (async () => {
      await app.close()
      await metricsPublisher.stop().catch((err: unknown) => logger.warn({ err }, 'removing the metrics snapshot failed'))
      await deliveryQueue.close()
      await redis.quit()
    })()),
  }
}
