/**
 * One chain in a subscriber process: its node connection (kept open on a standby too, so
 * readiness says whether this process could take over) and the lease that decides whether this
 * process is the chain's active subscriber. The chain type supplies a `ChainDriver`; the runner
 * owns the lease loop: take it when free, renew it while leading, stop leading when it is lost.
 */
import type { RedisClient } from '../storage/redis.js'
import type { Logger } from 'pino'
import type { ChainConfig } from '../config/config.js'
import type { DeliveryQueue } from '../delivery/delivery-queue.js'
import type { Metrics } from '../metrics.js'
import type { RedisKeys } from '../storage/keys.js'
import type { WatchService } from '../services/watch-service.js'
import type { WatchStore } from '../storage/watch-store.js'
import type { ChainLease } from './lease.js'

/** What every chain driver is built from, whatever its chain type. */
export interface ChainDriverDeps {
  chain: ChainConfig
  redis: RedisClient
  keys: RedisKeys
  /** Reads: the chain's watches and their change feed. */
  store: WatchStore
  /** Status changes (a fired one-shot watch completes). */
  watches: WatchService
  deliveryQueue: DeliveryQueue
  metrics: Metrics
  logger: Logger
}

/** README, "Operations": no head for 3 × blockTimeMs, and at least 30 s, means the node is stuck. */
export function watchdogMsFor(chain: ChainConfig): number {
  return Math.max(30_000, 3 * chain.blockTimeMs)
}

/**
 * A driver's readiness: undefined while its node connection is live and answering (endpoints
 * redacted). A node that went silent on a request stays named here until a node answers again.
 */
export function connectionNotReadyReason(
  chainId: string, socket: { connected: boolean; endpoint: string; unansweredReason: string | undefined },
): string | undefined {
  if (socket.unansweredReason !== undefined) return `chain ${chainId}: node not answering (${socket.unansweredReason})`
  return socket.connected ? undefined : `chain ${chainId}: no connection to a node (${socket.endpoint})`
}

export interface ChainDriver {
  readonly chainId: string
  /** Opens the node connection. */
  start(): void
  /**
   * Becomes the chain's active subscriber (watches, subscriptions, following from the cursor).
   * `onLeaseLost` is called if a fenced write finds the lease gone.
   */
  lead(lease: ChainLease, onLeaseLost: () => void): Promise<void>
  /** Stops leading; idempotent. */
  stopLeading(): Promise<void>
  /** Undefined while the node connection is live. */
  notReadyReason(): string | undefined
  close(): Promise<void>
}

export interface LeaseTiming {
  /** Lease time to live; a dead holder is replaced within ttl + poll. */
  ttlMs: number
  /** How often the holder renews and a standby tries to take over. */
  pollMs: number
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { ttlMs: 10_000, pollMs: 2_000 }

export class ChainRunner {
  readonly driver: ChainDriver
  readonly #lease: ChainLease
  readonly #pollMs: number
  readonly #log: Logger
  #leading = false
  #timer: NodeJS.Timeout | undefined
  #tick: Promise<void> = Promise.resolve()
  #closing: Promise<void> | undefined
  #leadReady = false
  readonly #leadWaiters = new Set<() => void>()

  constructor(driver: ChainDriver, lease: ChainLease, pollMs: number, logger: Logger) {
    this.driver = driver
    this.#lease = lease
    this.#pollMs = pollMs
    this.#log = logger
  }

  get leading(): boolean {
    return this.#leading
  }

  /** Resolves once this process leads the chain (its watches loaded, following started). */
  whenLeading(): Promise<void> {
    if (this.#leading && this.#leadReady) return Promise.resolve()
    return new Promise((resolve) => this.#leadWaiters.add(resolve))
  }

  start(): void {
    this.driver.start()
    this.#schedule(0)
  }

  #schedule(delayMs: number): void {
    if (this.#closing) return
    this.#timer = setTimeout(() => {
      this.#tick = this.#step().finally(() => this.#schedule(this.#pollMs))
    }, delayMs)
    this.#timer.unref()
  }

  async #step(): Promise<void> {
    try {
      if (this.#leading) {
        if (!(await this.#lease.renew())) await this.#stepDown('lease lost')
        return
      }
      if (!(await this.#lease.acquire())) return
      this.#leading = true
      this.#log.info('took the chain lease: leading')
      await this.driver.lead(this.#lease, () => void this.#stepDown('lease lost on a cursor write'))
      this.#leadReady = true
      for (const resolve of this.#leadWaiters) resolve()
      this.#leadWaiters.clear()
    } catch (err) {
      this.#log.warn({ err }, 'lease step failed')
      if (this.#leading) {
        await this.#stepDown('error while leading')
        await this.#lease.release().catch((releaseErr: unknown) => this.#log.warn({ err: releaseErr }, 'could not release the lease; it expires'))
      }
    }
  }

  async #stepDown(reason: string): Promise<void> {
    if (!this.#leading) return
    this.#leading = false
    this.#leadReady = false
    this.#log.warn({ reason }, 'stepping down to standby')
    await this.driver.stopLeading()
  }

  /** Stops leading, frees the lease for a standby at once, closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#timer)
      await this.#tick
      if (this.#leading) {
        this.#leading = false
        await this.driver.stopLeading()
        await this.#lease.release().catch((err: unknown) => this.#log.warn({ err }, 'could not release the lease'))
      }
      await this.driver.close()
    })()
    return this.#closing
  }
}
