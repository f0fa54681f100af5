/**
 * Per-API-key request limit (README, "API tour"), counted in Redis so that it holds across every
 * api process, as a sliding one-second window: the current second's count plus the previous
 * second's, weighted by how much of it the window still covers. A fixed window would let a burst
 * straddling a second boundary through at twice the limit. A key's counter lives two seconds,
 * long enough to be the previous one.
 */
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import { RetryLaterError } from './errors.js'

const WINDOW_TTL_SEC = 2

export class RateLimiter {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #perSecond: number

  constructor(redis: RedisClient, keys: RedisKeys, perSecond: number) {
    this.#redis = redis
    this.#keys = keys
    this.#perSecond = perSecond
  }

  /** Counts one request of the key; throws a 429 with `Retry-After` once the window is full. */
  async take(keyHash: string, nowMs = Date.now()): Promise<void> {
    const second = Math.floor(nowMs / 1000)
    const current = this.#keys.rateLimit(keyHash, second)
    const result = await this.#redis.multi()
      .incr(current).expire(current, WINDOW_TTL_SEC).get(this.#keys.rateLimit(keyHash, second - 1)).exec()
    const count = Number(result?.[0]?.[1] ?? 0)
    const previous = Number(result?.[2]?.[1] ?? 0)
    const stillCovered = 1 - (nowMs - second * 1000) / 1000
    if (previous * stillCovered + count > this.#perSecond) {
      throw new RetryLaterError('BH_RATE_LIMITED', `rate limit of ${this.#perSecond} requests per second exceeded`, 429, 1)
    }
  }
}
