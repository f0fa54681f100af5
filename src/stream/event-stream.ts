/**
 * The event stream service behind GET /events/stream: admits a connection before the upgrade
 * (its watches are the tenant's, its cursor well-formed, a connection slot free), then runs a
 * StreamSession per socket, pings every client and drops the silent ones, and signs frames with
 * each watch's secrets (cached a second, so a rotation shows within one).
 */
import { randomUUID } from 'node:crypto'
import { Cluster } from 'ioredis'
import type { WebSocket } from 'ws'
import type { StreamConfig } from '../config/config.js'
import { BlockhookError, badRequest, hasCode } from '../domain/errors.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { RedisKeys } from '../storage/keys.js'
import { logRedisErrors, type RedisClient } from '../storage/redis.js'
import type { TenantStore } from '../storage/tenant-store.js'
import type { WatchStore } from '../storage/watch-store.js'
import { ConnectionSlots } from './connection-slots.js'
import { EventLog } from './event-log.js'
import { LiveTail } from './live-tail.js'
import { cursorExpired, parseCursor, signHeaders, type LoggedEvent } from './stream-entry.js'
import { CLOSE_CURSOR_EXPIRED, CLOSE_GOING_AWAY, StreamSession } from './stream-session.js'
import { clusterTailReaders, unblockableReader, type OpenReader } from './tail-reader.js'

export interface StreamTiming {
  /** How often every client is pinged (and its connection slot renewed). */
  pingIntervalMs: number
  /** A client that has not answered a ping for this long is dropped. */
  pongTimeoutMs: number
}

export const DEFAULT_STREAM_TIMING: StreamTiming = { pingIntervalMs: 15_000, pongTimeoutMs: 30_000 }

const SECRETS_TTL_MS = 1_000

export interface EventStreamDeps {
  redis: RedisClient
  keys: RedisKeys
  tenants: TenantStore
  watches: WatchStore
  metrics: Metrics
  logger: Logger
  stream: StreamConfig
  timing?: StreamTiming
  now?: () => number
}

/** A connection let in before its upgrade; it holds a connection slot until `open` or `reject`. */
export interface Admission {
  tenantId: string
  connectionId: string
  watchIds: string[]
  /** The positions `after` names, one per delivery shard. */
  after: string[] | undefined
}

export const tooManyConnections = (max: number) =>
  new BlockhookError('BH_STREAM_TOO_MANY_CONNECTIONS', `at most ${max} event streams may be open per tenant`, 429)

/**
 * The live tail's blocking reader of each delivery shard: on a single Redis, where every shard
 * is, a connection of its own per shard, interrupted through `redis`; on a cluster, see
 * clusterTailReaders.
 */
function tailReaders(redis: RedisClient, keys: RedisKeys, logger: Logger): OpenReader {
  if (redis instanceof Cluster) return clusterTailReaders(redis, keys, logger)
  return (shard) => unblockableReader(logRedisErrors(redis.duplicate(), logger, `event log ${shard}`), redis, logger)
}

export class EventStream {
  readonly #d: EventStreamDeps
  readonly #timing: StreamTiming
  readonly #now: () => number
  readonly #log: EventLog
  readonly #slots: ConnectionSlots
  readonly #tail: LiveTail
  readonly #sessions = new Set<StreamSession>()
  readonly #secrets = new Map<string, Promise<string[] | undefined>>()
  #secretsBornAt = 0
  #timer: NodeJS.Timeout | undefined

  constructor(d: EventStreamDeps) {
    this.#d = d
    this.#timing = d.timing ?? DEFAULT_STREAM_TIMING
    this.#now = d.now ?? Date.now
    this.#log = new EventLog(d.redis, d.keys)
    this.#slots = new ConnectionSlots(d.redis, d.keys, d.stream.maxConnectionsPerTenant, this.#timing.pongTimeoutMs + this.#timing.pingIntervalMs)
    this.#tail = new LiveTail(d.keys, tailReaders(d.redis, d.keys, d.logger), d.logger)
  }

  start(): void {
    this.#tail.start()
    this.#timer = setInterval(() => this.#heartbeat(), this.#timing.pingIntervalMs)
    this.#timer.unref()
  }

  /** The tenant of an API key, or undefined. */
  async authenticate(apiKey: string): Promise<string | undefined> {
    return (await this.#d.tenants.authenticate(apiKey))?.tenantId
  }

  /** Checks a connection before its upgrade; throws the HTTP error (400, 404, 429) it gets instead. */
  async admit(tenantId: string, watchIds: readonly string[], afterText: string | undefined): Promise<Admission> {
    const after = afterText === undefined ? undefined : parseCursor(afterText, this.#d.keys.deliveryShards)
    if (afterText !== undefined && !after) throw badRequest('BH_INVALID_CURSOR', 'querystring/after is not a cursor this stream sent')
    const unique = [...new Set(watchIds)]
    // Another tenant's watch reads as not found, as on the REST API.
    await Promise.all(unique.map((id) => this.#d.watches.getForTenant(tenantId, id)))
    const connectionId = randomUUID()
    if (!(await this.#slots.take(tenantId, connectionId, this.#now()))) throw tooManyConnections(this.#d.stream.maxConnectionsPerTenant)
    return { tenantId, connectionId, watchIds: unique, after }
  }

  /** The upgrade did not happen after all (the client went away): the slot is freed. */
  async reject(admission: Admission): Promise<void> {
    await this.#slots.release(admission.tenantId, admission.connectionId)
  }

  /** Streams to an upgraded socket until it closes. */
  async open(socket: WebSocket, admission: Admission): Promise<void> {
    const { tenantId, connectionId } = admission
    const nowMs = this.#now()
    const { after } = admission
    if (after && cursorExpired(after, nowMs, this.#d.stream.retentionMs)) {
      await this.#slots.release(tenantId, connectionId)
      socket.close(CLOSE_CURSOR_EXPIRED, 'cursor older than the stream retention: reconnect without after')
      return
    }
    const positions = after ?? (await this.#log.lastPositions(tenantId))
    const session = new StreamSession(
      { log: this.#log, tail: this.#tail, sign: (events) => this.#sign(events), maxBufferedBytes: this.#d.stream.maxBufferedBytes },
      socket, tenantId, connectionId, admission.watchIds, positions, nowMs,
    )
    this.#sessions.add(session)
    this.#d.metrics.streamConnections.inc()
    socket.on('pong', () => { session.lastPongAt = this.#now() })
    // Nothing is expected from clients; what they send (at most 4 KiB, the server's maxPayload) is ignored.
    socket.on('close', () => this.#ended(session))
    try {
      await session.run()
    } catch (err) {
      this.#d.logger.warn({ err, tenantId }, 'event stream failed; closing it')
      session.close(1011, 'internal error: reconnect with after=<the last cursor received>')
    } finally {
      this.#ended(session)
    }
  }

  #ended(session: StreamSession): void {
    session.close()
    if (!this.#sessions.delete(session)) return
    this.#d.metrics.streamConnections.dec()
    this.#slots.release(session.tenantId, session.connectionId)
      .catch((err: unknown) => this.#d.logger.warn({ err }, 'could not release a stream connection slot'))
  }

  #heartbeat(): void {
    const nowMs = this.#now()
    for (const session of this.#sessions) {
      if (nowMs - session.lastPongAt > this.#timing.pongTimeoutMs) {
        session.socket.terminate()
        this.#ended(session)
      } else {
        session.socket.ping()
      }
    }
    this.#slots.heartbeat(this.#sessions, nowMs)
      .catch((err: unknown) => this.#d.logger.warn({ err }, 'could not renew stream connection slots'))
  }

  /** Each event's signature headers, made once however many sessions send it. */
  async #sign(events: readonly LoggedEvent[]): Promise<(Record<string, string> | undefined)[]> {
    const nowMs = this.#now()
    if (nowMs - this.#secretsBornAt > SECRETS_TTL_MS) {
      this.#secrets.clear()
      this.#secretsBornAt = nowMs
    }
    const secrets = await Promise.all(events.map((e) => this.#secretsOf(e.watchId, nowMs)))
    return events.map((event, i) => {
      const s = secrets[i]
      if (!s) return undefined
      event.headers ??= signHeaders(event, s, nowMs)
      return event.headers
    })
  }

  #secretsOf(watchId: string, nowMs: number): Promise<string[] | undefined> {
    let found = this.#secrets.get(watchId)
    if (!found) {
      found = this.#d.watches.signingSecrets(watchId, nowMs).catch((err: unknown) => {
        // A deleted watch's events stay in the log until trimmed; they are no longer sent.
        if (hasCode(err, 'BH_WATCH_NOT_FOUND')) return undefined
        this.#secrets.delete(watchId)
        throw err
      })
      this.#secrets.set(watchId, found)
    }
    return found
  }

  /** Closes every stream with 1001 (clients resume elsewhere with their cursor), then the reader. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#timer)
    for (const session of [...this.#sessions]) {
      session.close(CLOSE_GOING_AWAY, 'server shutting down: reconnect with after=<the last cursor received>')
      this.#ended(session)
    }
    await this.#tail.close()
  }
}
