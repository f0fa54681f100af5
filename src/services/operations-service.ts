/**
 * What the operator routes read: whether Redis answers (/readyz), each chain's status as its
 * subscriber wrote it, and every process's metrics summed (/metrics).
 */
import { once } from 'node:events'
import type { Redis } from 'ioredis'
import type { ChainConfig } from '../config/config.js'
import { withTimeout } from '../domain/timeout.js'
import { aggregatedMetricsText, type MetricsPublisher } from '../metrics.js'
import type { RedisKeys } from '../storage/keys.js'

/** A probe answers within this, however Redis is doing. */
const PING_TIMEOUT_MS = 1_000

export interface OperationsServiceDeps {
  redis: Redis
  keys: RedisKeys
  /** Publishes this process's metrics before /metrics sums every process's snapshot. */
  metricsPublisher: MetricsPublisher
}

export class OperationsService {
  readonly #d: OperationsServiceDeps

  constructor(deps: OperationsServiceDeps) {
    this.#d = deps
  }

  /**
   * Undefined when Redis answers a PING. While (re)connecting it waits for the connection instead
   * of queueing a PING per probe in ioredis's offline queue.
   */
  async redisNotReadyReason(): Promise<string | undefined> {
    const { redis } = this.#d
    try {
      if (redis.status !== 'ready') await once(redis, 'ready', { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
      await withTimeout(redis.ping(), PING_TIMEOUT_MS)
      return undefined
    } catch (err) {
      return `redis does not answer (${redis.status}): ${(err as Error).message}`
    }
  }

  /** The chain's status hash as its subscriber wrote it; empty when none reported. */
  chainStatus(chain: ChainConfig): Promise<Record<string, string>> {
    return this.#d.redis.hgetall(this.#d.keys.chainStatus(chain.id))
  }

  async metricsText(): Promise<{ text: string; contentType: string }> {
    await this.#d.metricsPublisher.publish()
    return aggregatedMetricsText(this.#d.redis, this.#d.keys.queuePrefix)
  }
}
