/**
 * At most `maxConcurrencyPerUrl` requests in flight to one URL across every worker process
 * (README, "The webhook"). Each request holds a lease in a Redis sorted set scored by its expiry, so a worker
 * killed mid-request frees its slot when the lease runs out instead of leaking it.
 */
import { randomBytes } from 'node:crypto'
import type { RedisClient } from '../storage/redis.js'
import { urlKeyHash, type RedisKeys } from '../storage/keys.js'
import { acquireUrlSlot } from '../storage/redis-scripts.js'
import { STATUS_CODE } from './delivery-record.js'

export interface UrlSlot {
  release(): Promise<void>
}

/**
 * The delivery's record is checked too: a delivery cancelled while it waited (e.g. after another
 * one got a 410) must not reach the URL.
 */
export type SlotResult = UrlSlot | 'full' | 'not-pending'

export class UrlSlots {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #cap: number
  readonly #leaseMs: number

  /** `leaseMs` must outlast the longest request (its timeout) plus the work around it. */
  constructor(redis: RedisClient, keys: RedisKeys, cap: number, leaseMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#cap = cap
    this.#leaseMs = leaseMs
  }

  /**
   * A slot for delivery `deliveryId` (its record on `shard`) to `url`, unless the URL has `cap`
   * requests in flight or the delivery is not pending. The URL's slots and the record are on
   * different masters of a cluster, so the two are read side by side rather than in one script:
   * on a single Redis the status is read just after the slot is taken (one connection keeps the
   * order), on a cluster at about the same moment, and a slot taken for a delivery that is no
   * longer pending is given back.
   */
  async acquire(url: string, deliveryId: string, shard: number, nowMs = Date.now()): Promise<SlotResult> {
    const key = this.#keys.urlInFlight(urlKeyHash(url))
    const token = randomBytes(9).toString('base64url')
    const [taken, status] = await Promise.all([
      acquireUrlSlot(this.#redis, { slots: key, nowMs, expiresAtMs: nowMs + this.#leaseMs, cap: this.#cap, token, keyTtlMs: this.#leaseMs }),
      // The record's status is its first character (delivery-record.ts).
      this.#redis.getrange(this.#keys.delivery(deliveryId, shard), 0, 0),
    ])
    const release = async () => { await this.#redis.zrem(key, token) }
    if (status !== STATUS_CODE.pending) {
      if (taken) await release()
      return 'not-pending'
    }
    return taken ? { release } : 'full'
  }
}
