/**
 * At most `maxConcurrencyPerUrl` requests in flight to one URL across every worker process
 * (README, "The webhook"). Each request holds a lease in a Redis sorted set scored by its expiry, so a worker
 * killed mid-request frees its slot when the lease runs out instead of leaking it.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../storage/keys.js'

/**
 * KEYS: the URL's lease set, the delivery record. ARGV: now ms, lease expiry ms, cap, token, key TTL ms.
 * Returns 1 (taken), 0 (URL full) or -1 (the delivery is no longer pending: cancelled meanwhile).
 */
const ACQUIRE = `
if redis.call('HGET', KEYS[2], 'status') ~= 'pending' then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`

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
    const reply = await this.#redis.eval(
      ACQUIRE, 2, key, this.#keys.delivery(deliveryId), nowMs, nowMs + this.#leaseMs, this.#cap, token, this.#leaseMs,
    )
    if (reply === -1) return 'not-pending'
    if (reply !== 1) return 'full'
    return { release: async () => { await this.#redis.zrem(key, token) } }
  }
}
