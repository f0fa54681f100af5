/**
 * At most `maxConcurrencyPerUrl` requests in flight to one URL across every worker process
 * (README, "The webhook"). Each request holds a lease in a Redis sorted set scored by its expiry, so a worker
 * killed mid-request frees its slot when the lease runs out instead of leaking it.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../storage/keys.js'
import { acquireUrlSlot } from '../storage/redis-scripts.js'

export interface UrlSlot {
  release(): Promise<void>
}

/**
 * The delivery's record is checked in the same step: a delivery cancelled while it waited (e.g.
 * after another one got a 410) must not reach the URL.
 */
export type SlotResult = UrlSlot | 'full' | 'not-pending'

export class UrlSlots {
  readonly #redis: Redis
  readonly #keys: RedisKeys
  readonly #cap: number
  readonly #leaseMs: number

  /** `leaseMs` must outlast the longest request (its timeout) plus the work around it. */
  constructor(redis: Redis, keys: RedisKeys, cap: number, leaseMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#cap = cap
    this.#leaseMs = leaseMs
  }

  /** A slot for delivery `deliveryId` to `url`, unless the URL has `cap` requests in flight or the delivery is not pending. */
  async acquire(url: string, deliveryId: string, nowMs = Date.now()): Promise<SlotResult> {
    const key = this.#keys.urlInFlight(createHash('sha256').update(url).digest('hex').slice(0, 32))
    const token = randomBytes(9).toString('base64url')
    const reply = await acquireUrlSlot(this.#redis, {
      slots: key, delivery: this.#keys.delivery(deliveryId),
      nowMs, expiresAtMs: nowMs + this.#leaseMs, cap: this.#cap, token, keyTtlMs: this.#leaseMs,
    })
    if (reply !== 'taken') return reply
    return { release: async () => { await this.#redis.zrem(key, token) } }
  }
}
