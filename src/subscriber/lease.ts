/**
 * One subscriber per chain: a lease in Redis (SET NX PX), renewed by its holder while alive.
 * A standby polls; when the holder dies its lease expires and the standby takes it, within
 * ttl + poll interval (10 s + 2 s by default, under the 15 s takeover of README, "Operations"). Cursor writes check the
 * lease in the same script (the fence in storage/redis-scripts.ts), so a holder that lost it cannot move the cursor.
 */
import type { RedisClient } from '../storage/redis.js'
import { releaseLease, renewLease } from '../storage/redis-scripts.js'

export class ChainLease {
  readonly #redis: RedisClient
  readonly key: string
  readonly owner: string
  readonly ttlMs: number

  constructor(redis: RedisClient, key: string, owner: string, ttlMs: number) {
    this.#redis = redis
    this.key = key
    this.owner = owner
    this.ttlMs = ttlMs
  }

  /** Takes the lease if free, or renews it if already ours. */
  async acquire(): Promise<boolean> {
    const taken = await this.#redis.set(this.key, this.owner, 'PX', this.ttlMs, 'NX')
    return taken === 'OK' || (await this.renew())
  }

  async renew(): Promise<boolean> {
    return renewLease(this.#redis, { lease: this.key, owner: this.owner, ttlMs: this.ttlMs })
  }

  async release(): Promise<void> {
    await releaseLease(this.#redis, { lease: this.key, owner: this.owner })
  }
}
