/**
 * Alerts waiting to be sent, as a Redis list: an alert is pushed where its cause is seen (a
 * watch disabled in a worker, a stall seen by the monitor) and sent by the one process holding the
 * alerts lease, oldest first, each under the id it was given here, so a retry or a new sender
 * sends the same `webhook-id`.
 */
import { randomBytes } from 'node:crypto'
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import type { AlertEvent, AlertType } from './alert-rules.js'

/** An alert in the outbox: the body fields and its `webhook-id`. */
export interface QueuedAlert {
  id: string
  type: AlertType
  timestamp: string
  data: Record<string, unknown>
}

/** Bound on the list while nothing drains it (a receiver down for a long time). */
const MAX_QUEUED_ALERTS = 1_000

export const newAlert = (event: AlertEvent, nowMs: number): QueuedAlert =>
  ({ id: `alr_${randomBytes(12).toString('hex')}`, type: event.type, timestamp: new Date(nowMs).toISOString(), data: event.data })

export class AlertOutbox {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  async push(event: AlertEvent, nowMs = Date.now()): Promise<void> {
    const key = this.#keys.alertsOutbox
    await this.#redis.multi().rpush(key, JSON.stringify(newAlert(event, nowMs))).ltrim(key, -MAX_QUEUED_ALERTS, -1).exec()
  }

  /**
   * Pushes alerts and records the conditions they change, in one transaction. A condition that no
   * longer holds is removed rather than kept as false (absent reads as false), so conditions named
   * after something passing, such as a URL's backlog, do not pile up.
   */
  async pushChanges(events: readonly AlertEvent[], conditions: Record<string, boolean>, nowMs = Date.now()): Promise<void> {
    const names = Object.keys(conditions)
    const holding = names.filter((name) => conditions[name])
    const cleared = names.filter((name) => !conditions[name])
    const multi = this.#redis.multi()
    if (holding.length > 0) multi.hset(this.#keys.alertsConditions, Object.fromEntries(holding.map((name) => [name, '1'])))
    if (cleared.length > 0) multi.hdel(this.#keys.alertsConditions, ...cleared)
    for (const event of events) multi.rpush(this.#keys.alertsOutbox, JSON.stringify(newAlert(event, nowMs)))
    const results = await multi.ltrim(this.#keys.alertsOutbox, -MAX_QUEUED_ALERTS, -1).exec()
    const failed = results?.find(([err]) => err)
    if (failed?.[0]) throw failed[0]
  }

  async conditions(): Promise<Record<string, boolean>> {
    const stored = await this.#redis.hgetall(this.#keys.alertsConditions)
    return Object.fromEntries(Object.entries(stored).map(([name, v]) => [name, v === '1']))
  }

  /** The oldest alert not yet sent; malformed entries (never written by blockhook) are dropped. */
  async oldest(): Promise<QueuedAlert | undefined> {
    for (;;) {
      const text = await this.#redis.lindex(this.#keys.alertsOutbox, 0)
      if (text === null) return undefined
      try {
        return JSON.parse(text) as QueuedAlert
      } catch {
        await this.#redis.lpop(this.#keys.alertsOutbox)
      }
    }
  }

  /** Removes the oldest alert once it was sent. */
  async sent(): Promise<void> {
    await this.#redis.lpop(this.#keys.alertsOutbox)
  }
}
