/**
 * The operator alerts loop (README, "Operations: alerts"). Every process that runs a delivery
 * worker runs one, and the one holding the alerts lease acts: every few seconds it observes each
 * chain's last head, Redis memory and the URLs whose oldest pending delivery is old (from the
 * oldest-pending index, see delivery-store.ts), turns changes of state into alerts (alert-rules.ts), and
 * sends what waits in the outbox, oldest first, signed as Standard Webhooks under
 * `alerts.secret`. A failed send stays first in the outbox and is retried at the next check.
 *
 * Redis refusing writes (out of memory) is itself a condition to report, and the outbox cannot
 * take it then: that alert is sent straight away from memory, and its state kept in memory until
 * Redis accepts writes again.
 */
import type { RedisClient } from '../storage/redis.js'
import type { Logger } from 'pino'
import type { AlertsConfig, ChainConfig } from '../config/config.js'
import type { DeliveryStore } from '../delivery/delivery-store.js'
import type { WebhookHttpClient } from '../delivery/http-client.js'
import { webhookHeaders } from '../delivery/signing.js'
import type { RedisKeys } from '../storage/keys.js'
import { readRedisMemory } from '../storage/redis-memory.js'
import type { WatchStore } from '../storage/watch-store.js'
import { watchdogMsFor } from '../subscriber/chain-runner.js'
import { ChainLease } from '../subscriber/lease.js'
import {
  alertsForChanges, BACKLOG_AFTER_MS, backlogConditions, currentConditions,
  type BacklogObservation, type ChainObservation, type MemoryObservation,
} from './alert-rules.js'
import { AlertOutbox, newAlert, type QueuedAlert } from './alert-outbox.js'

export const ALERT_CHECK_MS = 5_000
const LEASE_TTL_MS = 15_000
/** Watches with old pending deliveries read per check, oldest first: bounded work however many there are. */
const MAX_BACKLOG_WATCHES = 1_000

export interface AlertMonitorDeps {
  alerts: AlertsConfig
  chains: readonly ChainConfig[]
  redis: RedisClient
  keys: RedisKeys
  deliveries: DeliveryStore
  watches: WatchStore
  /** Owned by the monitor: closed with it. */
  httpClient: WebhookHttpClient
  owner: string
  logger: Logger
  now?: () => number
}

const isOom = (err: unknown): boolean => err instanceof Error && /^OOM /.test(err.message)

export class AlertMonitor {
  readonly #d: AlertMonitorDeps
  readonly #outbox: AlertOutbox
  readonly #lease: ChainLease
  readonly #log: Logger
  readonly #now: () => number
  /** What held at the last check; loaded from Redis on becoming the sender. */
  #previous: Record<string, boolean> | undefined
  #timer: NodeJS.Timeout | undefined
  #tick: Promise<void> = Promise.resolve()
  #closed = false

  constructor(deps: AlertMonitorDeps) {
    this.#d = deps
    this.#outbox = new AlertOutbox(deps.redis, deps.keys)
    this.#lease = new ChainLease(deps.redis, deps.keys.alertsLease, deps.owner, LEASE_TTL_MS)
    this.#log = deps.logger.child({ component: 'alerts' })
    this.#now = deps.now ?? Date.now
  }

  start(): void {
    this.#schedule(0)
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#tick = this.check().catch((err: unknown) => this.#log.warn({ err }, 'alert check failed')).finally(() => this.#schedule(ALERT_CHECK_MS))
    }, delayMs)
    this.#timer.unref()
  }

  /** One round: lead or stand by, observe, record changes, send what waits. Exposed for tests. */
  async check(): Promise<void> {
    let leading: boolean
    try {
      leading = await this.#lease.acquire()
    } catch (err) {
      // A lease we cannot renew because Redis is full is still ours until it expires.
      if (!isOom(err) || this.#previous === undefined) throw err
      leading = true
    }
    if (!leading) {
      this.#previous = undefined
      return
    }
    this.#previous ??= await this.#outbox.conditions()
    const nowMs = this.#now()
    const [chains, memory, backlog] = await Promise.all([this.#observeChains(), this.#observeMemory(), this.#observeBacklog(nowMs)])
    let conditions = { ...currentConditions(nowMs, chains, memory), ...backlogConditions(nowMs, backlog, this.#previous) }
    let events = alertsForChanges(this.#previous, conditions)
    const holds = Object.fromEntries(Object.entries(conditions).map(([name, c]) => [name, c.holds]))
    try {
      if (events.length > 0) await this.#outbox.pushChanges(events, holds, nowMs)
    } catch (err) {
      if (!isOom(err) || !memory) throw err
      // Redis refuses writes: report that now, from memory; the rest waits for Redis.
      conditions = currentConditions(nowMs, chains, { ...memory, refusedWrite: (err as Error).message })
      const [event] = alertsForChanges(this.#previous, { redis_memory: conditions.redis_memory! })
      // Unsent, the state stays as it was, so the next check tries again.
      if (!event || (await this.#send(newAlert(event, nowMs)))) this.#previous = { ...this.#previous, redis_memory: true }
      return
    }
    this.#previous = holds
    await this.#drain()
  }

  async #observeChains(): Promise<ChainObservation[]> {
    return Promise.all(this.#d.chains.map(async (chain) => {
      const lastHeadAt = await this.#d.redis.hget(this.#d.keys.chainStatus(chain.id), 'lastHeadAt')
      const ms = lastHeadAt === null ? Number.NaN : /^\d+$/.test(lastHeadAt) ? Number(lastHeadAt) : Date.parse(lastHeadAt)
      return { id: chain.id, lastHeadAtMs: Number.isFinite(ms) ? ms : null, stallAfterMs: watchdogMsFor(chain) }
    }))
  }

  async #observeMemory(): Promise<MemoryObservation | undefined> {
    const { usedMemory, maxMemory } = await readRedisMemory(this.#d.redis)
    return { usedBytes: usedMemory, maxBytes: maxMemory, refusedWrite: undefined }
  }

  /** The URLs of active watches whose oldest pending delivery is past the backlog age. */
  async #observeBacklog(nowMs: number): Promise<BacklogObservation> {
    const { watches: read, complete } = await this.#d.deliveries.watchesPendingSince(nowMs - BACKLOG_AFTER_MS, MAX_BACKLOG_WATCHES)
    const watches = new Map((await this.#d.watches.getMany(read.map((w) => w.watchId))).map((w) => [w.id, w]))
    const byUrl = new Map<string, { url: string; oldestPendingAtMs: number; watches: { id: string; tenantId: string }[] }>()
    for (const { watchId, oldestPendingAtMs } of read) {
      const watch = watches.get(watchId)
      // A paused or disabled watch's deliveries wait by the user's or blockhook's decision (the
      // latter has its own alert); a deleted one's are being cancelled.
      if (watch?.status !== 'active' || watch.url === undefined) continue
      const entry = byUrl.get(watch.url) ?? { url: watch.url, oldestPendingAtMs, watches: [] }
      entry.oldestPendingAtMs = Math.min(entry.oldestPendingAtMs, oldestPendingAtMs)
      entry.watches.push({ id: watch.id, tenantId: watch.tenantId })
      byUrl.set(watch.url, entry)
    }
    return { urls: [...byUrl.values()], complete }
  }

  async #drain(): Promise<void> {
    for (let alert = await this.#outbox.oldest(); alert && !this.#closed; alert = await this.#outbox.oldest()) {
      if (!(await this.#send(alert))) return
      await this.#outbox.sent()
    }
  }

  async #send(alert: QueuedAlert): Promise<boolean> {
    const body = JSON.stringify({ type: alert.type, timestamp: alert.timestamp, data: alert.data })
    const headers = webhookHeaders({ id: alert.id, timestampSec: Math.floor(this.#now() / 1000), body, secrets: [this.#d.alerts.secret] })
    const outcome = await this.#d.httpClient.post({ url: this.#d.alerts.url, headers, body })
    if (outcome.error) {
      this.#log.warn({ alert: alert.type, id: alert.id, statusCode: outcome.statusCode, error: outcome.error.message }, 'alert not accepted; retried at the next check')
      return false
    }
    this.#log.info({ alert: alert.type, id: alert.id }, 'alert sent')
    return true
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#tick
    await this.#lease.release().catch((err: unknown) => this.#log.warn({ err }, 'could not release the alerts lease'))
    this.#d.httpClient.close()
  }
}
