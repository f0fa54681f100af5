/**
 * What the operator routes read: whether Redis answers and takes writes (/readyz), its memory, each chain's status as its
 * subscriber wrote it, and every process's metrics summed (/metrics).
 */
import { once } from 'node:events'
import type { RedisClient } from '../storage/redis.js'
import type { ChainConfig } from '../config/config.js'
import { withTimeout } from '../domain/timeout.js'
import { aggregatedMetricsText, type Metrics, type MetricsPublisher } from '../metrics.js'
import { redactUrl } from '../domain/redact.js'
import { isOutOfMemory, readRedisMemory, writeRefusal, type RedisMemory } from '../storage/redis-memory.js'
import type { RedisKeys } from '../storage/keys.js'
import { STATUS_STALE_AFTER_MS } from '../subscriber/chain-status.js'

/** A probe answers within this, however Redis is doing. */
const PING_TIMEOUT_MS = 1_000

export interface OperationsServiceDeps {
  redis: RedisClient
  keys: RedisKeys
  metrics: Metrics
  /** Publishes this process's metrics before /metrics sums every process's snapshot. */
  metricsPublisher: MetricsPublisher
}

/** One chain as /admin/status shows it (README, "API tour"). */
export interface ChainStatusView {
  id: string
  type: ChainConfig['type']
  connected: boolean
  /** Scheme and host only. */
  endpoint: string | null
  head: { number: number | null; hash: string | null }
  lastHeadAt: string | null
  reconnects: number
  subscriptions: number
  cursor: { number: number; hash: string | null } | null
  updatedAt: string | null
}

function integerOrNull(text: string | undefined): number | null {
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : null
}

/** The subscriber writes times as ISO strings or Unix ms; render both as ISO. */
function isoOrNull(text: string | undefined): string | null {
  if (!text) return null
  const ms = /^[0-9]+$/.test(text) ? Number(text) : Date.parse(text)
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null
}

export class OperationsService {
  readonly #d: OperationsServiceDeps

  constructor(deps: OperationsServiceDeps) {
    this.#d = deps
  }

  /**
   * Undefined when Redis answers a PING and takes a write: out of memory, Redis still answers
   * PING and reads, and only a write shows it. While (re)connecting it waits for the connection instead
   * of queueing a PING per probe in ioredis's offline queue.
   */
  async redisNotReadyReason(): Promise<string | undefined> {
    const { redis } = this.#d
    try {
      if (redis.status !== 'ready') await once(redis, 'ready', { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
      await withTimeout(redis.ping(), PING_TIMEOUT_MS)
    } catch (err) {
      return `redis does not answer (${redis.status}): ${(err as Error).message}`
    }
    return withTimeout(writeRefusal(redis, this.#d.keys.writeProbes), PING_TIMEOUT_MS)
      .catch((err: unknown) => `redis does not take a write: ${(err as Error).message}`)
  }

  redisMemory(): Promise<RedisMemory> {
    return readRedisMemory(this.#d.redis)
  }

  /**
   * The chain's status as its subscriber last wrote it (see chain-status.ts), with its cursor: the
   * last block whose deliveries are queued. `connected` holds only while the subscriber keeps
   * writing: a status older than `STATUS_STALE_AFTER_MS` is a dead process's.
   */
  async chainStatus(chain: ChainConfig, nowMs = Date.now()): Promise<ChainStatusView> {
    const { redis, keys } = this.#d
    const [stored, cursor] = await Promise.all([redis.hgetall(keys.chainStatus(chain.id)), redis.hgetall(keys.chainCursor(chain.id))])
    const updatedAtMs = integerOrNull(stored.updatedAt)
    const fresh = updatedAtMs !== null && nowMs - updatedAtMs <= STATUS_STALE_AFTER_MS
    const cursorNumber = integerOrNull(cursor.number)
    return {
      id: chain.id,
      type: chain.type,
      connected: stored.connected === 'true' && fresh,
      endpoint: stored.endpoint ? redactUrl(stored.endpoint) : null,
      head: { number: integerOrNull(stored.headNumber), hash: stored.headHash || null },
      lastHeadAt: isoOrNull(stored.lastHeadAt),
      reconnects: integerOrNull(stored.reconnects) ?? 0,
      subscriptions: integerOrNull(stored.subscriptions) ?? 0,
      cursor: cursorNumber === null ? null : { number: cursorNumber, hash: cursor.hash || null },
      updatedAt: updatedAtMs === null ? null : new Date(updatedAtMs).toISOString(),
    }
  }

  /**
   * Every process's metrics summed, and per chain the heartbeat-based `blockhook_chain_connected`
   * and `blockhook_chain_cursor`, computed here from Redis: a gauge kept by the subscriber itself
   * would go on reading 1 in its last snapshot after it died.
   */
  async metricsText(chains: readonly ChainConfig[]): Promise<{ text: string; contentType: string }> {
    const { metrics } = this.#d
    metrics.redisUsedMemory.set((await this.redisMemory()).usedMemory)
    try {
      await this.#d.metricsPublisher.publish()
    } catch (err) {
      if (!isOutOfMemory(err)) throw err
      // A full Redis takes no snapshot: this process's own figures, Redis memory among them, still go out.
      return { text: await metrics.registry.metrics(), contentType: metrics.registry.contentType }
    }
    const [aggregated, statuses] = await Promise.all([
      aggregatedMetricsText(this.#d.redis, this.#d.keys.controlTag),
      Promise.all(chains.map((chain) => this.chainStatus(chain))),
    ])
    const label = (id: string) => `{chain="${id}"}`
    const lines = [
      '# HELP blockhook_chain_connected 1 while the chain\'s subscriber reports a live node connection (heartbeat within 15 s)',
      '# TYPE blockhook_chain_connected gauge',
      ...statuses.map((s) => `blockhook_chain_connected${label(s.id)} ${s.connected ? 1 : 0}`),
      '# HELP blockhook_chain_cursor Last block (or slot) whose deliveries are queued, per chain',
      '# TYPE blockhook_chain_cursor gauge',
      ...statuses.filter((s) => s.cursor !== null).map((s) => `blockhook_chain_cursor${label(s.id)} ${s.cursor!.number}`),
    ]
    return { text: `${aggregated.text.trimEnd()}\n${lines.join('\n')}\n`, contentType: aggregated.contentType }
  }
}
