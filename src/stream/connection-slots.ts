/**
 * maxConnectionsPerTenant across every api process: each open stream holds a slot in a
 * per-tenant sorted set (member = connection id, score = last heartbeat). A process that dies
 * leaves slots whose heartbeat stops; they stop counting after `staleMs`.
 */
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import { takeStreamSlot } from '../storage/redis-scripts.js'

export class ConnectionSlots {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #max: number
  readonly #staleMs: number

  constructor(redis: RedisClient, keys: RedisKeys, max: number, staleMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#max = max
    this.#staleMs = staleMs
  }

  async take(tenantId: string, connectionId: string, nowMs = Date.now()): Promise<boolean> {
    return takeStreamSlot(this.#redis, {
      slots: this.#keys.tenantStreamConnections(tenantId), connectionId, nowMs, staleMs: this.#staleMs, max: this.#max,
    })
  }

  /** Keeps the given connections' slots counting (called well within `staleMs`). */
  async heartbeat(connections: Iterable<{ tenantId: string; connectionId: string }>, nowMs = Date.now()): Promise<void> {
    const pipeline = this.#redis.pipeline()
    for (const { tenantId, connectionId } of connections) {
      const key = this.#keys.tenantStreamConnections(tenantId)
      pipeline.zadd(key, 'XX', nowMs, connectionId)
      pipeline.pexpire(key, this.#staleMs)
    }
    if (pipeline.length > 0) await pipeline.exec()
  }

  async release(tenantId: string, connectionId: string): Promise<void> {
    await this.#redis.zrem(this.#keys.tenantStreamConnections(tenantId), connectionId)
  }
}
