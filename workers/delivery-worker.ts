/**
 * The `worker` role: a delivery worker on its own wiring (Redis connection, metrics publisher)
 * and HTTP agents. `close()` (SIGTERM) drains in order: the BullMQ worker (in-flight requests
 * finish or go back to the queue), the HTTP agents, then the wiring (queue producer, metrics
 * snapshot, Redis).
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { AlertMonitor } from '../src/alerts/alert-monitor.js'
import type { Config } from '../src/config/config.js'
import { DeliveryWorker, type DeliveryWorkerTuning } from '../src/delivery/delivery-worker.js'
import { WebhookHttpClient } from '../src/delivery/http-client.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import type { Resolver } from '../src/domain/url-policy.js'
import type { Logger } from '../src/logger.js'
import type { RunningRole } from '../src/roles.js'
import { wire } from '../src/wiring.js'

export interface WorkerRoleOptions {
  /** DNS for the URL policy (tests inject one). */
  resolve?: Resolver
  tuning?: DeliveryWorkerTuning
}

export async function startWorker(config: Config, logger: Logger, options: WorkerRoleOptions = {}): Promise<RunningRole> {
  const wiring = wire(config, 'worker', logger, { resolve: options.resolve })
  const { redis, keys, metrics, deliveryQueue } = wiring
  const httpClient = new WebhookHttpClient({
    timeoutMs: config.delivery.timeoutMs,
    userAgent: USER_AGENT,
    allowPrivateUrls: config.allowPrivateUrls,
    resolve: options.resolve,
  })
  const worker = new DeliveryWorker({
    config, logger, redis, keys, metrics, httpClient, deliveryQueue, watches: wiring.watchService,
  }, options.tuning)
  // Operator alerts: every worker process runs the loop, the one holding its lease sends.
  const alerts = config.alerts && new AlertMonitor({
    alerts: config.alerts, chains: config.chains, redis, keys, logger, deliveries: deliveryQueue.store, watches: wiring.watches,
    httpClient: new WebhookHttpClient({ timeoutMs: config.delivery.timeoutMs, userAgent: USER_AGENT, allowPrivateUrls: true }),
    owner: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
  })
  alerts?.start()
  wiring.metricsPublisher.start((err) => logger.warn({ err }, 'could not publish metrics'))
  logger.info({ concurrency: config.delivery.concurrency }, 'delivery worker started')

  let closing: Promise<void> | undefined
  return {
    name: 'worker',
    close: () => (closing ??= (async () => {
      await worker.close()
      await alerts?.close()
      httpClient.close()
      await wiring.close()
    })()),
  }
}
