/**
 * maxConnectionsPerTenant across every api process: each open stream holds a slot in a
 * per-tenant sorted set (member = connection id, score = last heartbeat). A process that dies
 * leaves slots whose heartbeat stops; they stop counting after `staleMs`.
 */
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../storage/keys.js'

/** KEYS: the tenant's slots. ARGV: connection id, now ms, stale ms, max. Returns 1 when taken. */
const TAKE_SLOT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`

export class ConnectionSlots {
  readonly #redis: Redis
  readonly #keys: RedisKeys
  readonly #max: number
  readonly #staleMs: number

  constructor(redis: Redis, keys: RedisKeys, max: number, staleMs: number) {
    this.#redis = redis
    this.#keys = keys
    this.#max = max
    this.#staleMs = staleMs
  }

  async take(tenantId: string, connectionId: string, nowMs = Date.now()): Promise<boolean> {
    const taken = await this.#redis.eval(TAKE_SLOT, 1, this.#keys.tenantStreamConnections(tenantId), connectionId, nowMs, this.#staleMs, this.#max)
    return taken === 1
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
