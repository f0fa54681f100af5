/**
 * Redis out of memory. With `maxmemory-policy noeviction` (what production runs, see README)
 * a full Redis answers every write with `OOM command not allowed when used memory > 'maxmemory'`
 * and keeps answering reads. Nothing accepted is lost (callers retry, the cursor holds), but the
 * operator must be told: readiness names it, an error is logged at most once a minute, and a
 * warning comes earlier, above 80 % of `maxmemory`.
 */
import { keyServers, type RedisClient } from './redis.js'
import { BlockhookError } from '../domain/errors.js'
import type { Logger } from '../logger.js'

/** How often a process looks at Redis memory and whether writes go through. */
const CHECK_INTERVAL_MS = 10_000
/** A refused write, or memory above the threshold, is logged at most this often. */
const LOG_INTERVAL_MS = 60_000
export const MEMORY_WARNING_RATIO = 0.8
/** The probe key outlives no check by much: it costs nothing when all is well. */
const PROBE_TTL_MS = 30_000

/** Redis refused a write because it is out of memory (the reply, or a script's error, names OOM). */
export function isOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  // A MULTI refused on one of its commands fails as EXECABORT, the OOM in ioredis's previousErrors.
  const previous = (err as { previousErrors?: unknown[] }).previousErrors ?? []
  return /\bOOM\b/.test(err.message) || previous.some(isOutOfMemory)
}

/** What readiness and the API say when Redis refuses writes, with Redis's own message. */
export function refusedWritesReason(err: Error): string {
  return `Redis refuses writes: ${err.message}`
}

/** An API write Redis refused: 503 (try again later), never a 500. */
export function redisOutOfMemory(err: Error): BlockhookError {
  const oom = ((err as { previousErrors?: Error[] }).previousErrors ?? []).find(isOutOfMemory) ?? err
  return new BlockhookError('BH_REDIS_OUT_OF_MEMORY', refusedWritesReason(oom), 503, { cause: err })
}

export interface RedisMemory {
  usedMemory: number
  /** 0 when Redis has no limit. */
  maxMemory: number
}

function infoNumber(info: string, field: string): number {
  const value = Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1])
  return Number.isFinite(value) ? value : 0
}

/**
 * The memory of the Redis, or on a cluster of the master nearest its limit: a full master refuses
 * the writes of its slots while the others still have room.
 */
export async function readRedisMemory(redis: RedisClient): Promise<RedisMemory> {
  const known = keyServers(redis)
  // A cluster client knows no master until it has connected: an error, as a single Redis's INFO would be.
  if (known.length === 0) throw new Error('no Redis Cluster master is known yet')
  const servers = await Promise.all(known.map(async (server) => {
    const info = await server.info('memory')
    return { usedMemory: infoNumber(info, 'used_memory'), maxMemory: infoNumber(info, 'maxmemory') }
  }))
  const fullness = ({ usedMemory, maxMemory }: RedisMemory) => (maxMemory > 0 ? usedMemory / maxMemory : 0)
  return servers.reduce((fullest, server) =>
    fullness(server) > fullness(fullest) || (fullness(server) === fullness(fullest) && server.usedMemory > fullest.usedMemory) ? server : fullest)
}

/** Undefined when Redis takes a write on every probe key (each short-lived), else the reason it refused. */
export async function writeRefusal(redis: RedisClient, probeKeys: readonly string[]): Promise<string | undefined> {
  const refusals = await Promise.all(probeKeys.map(async (probeKey) => {
    try {
      await redis.set(probeKey, String(Date.now()), 'PX', PROBE_TTL_MS)
      return undefined
    } catch (err) {
      if (isOutOfMemory(err)) return refusedWritesReason(err as Error)
      throw err
    }
  }))
  return refusals.find((refusal) => refusal !== undefined)
}

/** Lets a message through at most once per interval. */
export class Throttle {
  readonly #intervalMs: number
  readonly #now: () => number
  #lastAt = -Infinity

  constructor(intervalMs = LOG_INTERVAL_MS, now: () => number = Date.now) {
    this.#intervalMs = intervalMs
    this.#now = now
  }

  allow(): boolean {
    const now = this.#now()
    if (now - this.#lastAt < this.#intervalMs) return false
    this.#lastAt = now
    return true
  }
}

/**
 * One per process, shared by the roles it runs (and the API's error handler), so `blockhook all`
 * logs a full Redis once a minute, not once per role.
 */
export const refusedWriteLog = new Throttle()
const highMemoryLog = new Throttle()

/**
 * One per role: every CHECK_INTERVAL_MS, probes a write and reads INFO memory; logs refused
 * writes as errors and memory above 80 % as warnings, each at most once a minute.
 */
export class RedisMemoryWatch {
  readonly #redis: RedisClient
  readonly #probeKeys: readonly string[]
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined

  constructor(redis: RedisClient, probeKeys: readonly string[], logger: Logger) {
    this.#redis = redis
    this.#probeKeys = probeKeys
    this.#logger = logger
  }

  async check(): Promise<void> {
    const refusal = await writeRefusal(this.#redis, this.#probeKeys)
    if (refusal !== undefined && refusedWriteLog.allow()) this.#logger.error(refusal)
    const { usedMemory, maxMemory } = await readRedisMemory(this.#redis)
    if (maxMemory > 0 && usedMemory > MEMORY_WARNING_RATIO * maxMemory && highMemoryLog.allow()) {
      this.#logger.warn({ usedMemory, maxMemory }, `Redis memory above ${MEMORY_WARNING_RATIO * 100} % of maxmemory: raise maxmemory or shorten the delivery retentions`)
    }
  }

  start(): void {
    const check = () => this.check().catch((err: unknown) => this.#logger.debug({ err }, 'Redis memory check failed'))
    void check()
    this.#timer = setInterval(check, CHECK_INTERVAL_MS)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
