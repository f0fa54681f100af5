/**
 * Per-API-key request limit (README, "API tour") as a fixed one-second window counted in Redis, so the
 * limit holds across every api process. A key's counter lives two seconds, long enough for the
 * window it counts.
 */
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../storage/keys.js'
import { RetryLaterError } from './errors.js'

const WINDOW_TTL_SEC = 2

export class RateLimiter {
  readonly #redis: Redis
  readonly #keys: RedisKeys
  readonly #perSecond: number

  constructor(redis: Redis, keys: RedisKeys, perSecond: number) {
    this.#redis = redis
    this.#keys = keys
    this.#perSecond = perSecond
  }

  /** Counts one request of the key; throws a 429 with `Retry-After` once the window is full. */
  async take(keyHash: string, nowMs = Date.now()): Promise<void> {
    const second = Math.floor(nowMs / 1000)
    const key = this.#keys.rateLimit(keyHash, second)
    const result = await this.#redis.multi().incr(key).expire(key, WINDOW_TTL_SEC).exec()
    const count = Number(result?.[0]?.[1] ?? 0)
    if (count > this.#perSecond) {
      throw new RetryLaterError('BH_RATE_LIMITED', `rate limit of ${this.#perSecond} requests per second exceeded`, 429, 1)
    }
  }
}
