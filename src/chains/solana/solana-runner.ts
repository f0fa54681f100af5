/**
 * One Solana chain in the subscriber: keeps one PubSub connection (RpcSocket: failover, ping,
 * watchdog, subscriptions replayed after every reconnect), one node subscription per distinct
 * request however many watches share it, turns notifications into MatchedEvents on the delivery
 * queue, and after every (re)connection fills the gap from the chain's `http` endpoint.
 *
 * Everything that touches Redis runs through one serial queue, so events reach the delivery
 * queue in the order the node sent them and a gap is delivered before what came after it.
 */
import type { Logger } from 'pino'
import type { Redis } from 'ioredis'
import type { ChainConfig } from '../../config/config.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import type { DeliveryQueue } from '../../delivery/delivery-queue.js'
import type { EventType, Watch } from '../../domain/watch-types.js'
import type { Metrics } from '../../metrics.js'
import type { RedisKeys } from '../../storage/keys.js'
import type { WatchStore } from '../../storage/watch-store.js'
import type { ChainStatusPublisher } from '../../subscriber/chain-status.js'
import { RpcSocket, type RpcSocketOptions, type RpcSubscription } from '../rpc-socket.js'
import {
  accountStateHash, GapMarkers, logsOfSignatures, missedSignatureNotification, newestSignature, readAccount, signaturesSince,
} from './gap-recovery.js'
import { SolanaHttpClient, type SolanaRpc } from './http-client.js'
import { parseSolanaJson } from './json.js'
import { isRejection, matchedEvents, parseNotification, type SolanaNotification } from './notifications.js'
import {
  isSolanaWatch, mentionedAccount, slotSubscription, subscriptionOf, SubscriptionRegistry,
  type SolanaSubscription, type SolanaWatch, type SubscriptionChanges,
} from './subscriptions.js'

export interface SolanaRunnerOptions {
  chain: ChainConfig
  redis: Redis
  keys: RedisKeys
  watchStore: WatchStore
  deliveryQueue: DeliveryQueue
  metrics: Metrics
  logger: Logger
  /** Socket settings beyond the chain's endpoints (tests shorten the timers). */
  socket?: Partial<Omit<RpcSocketOptions, 'name' | 'endpoints' | 'logger'>>
  /** Gap recovery client; by default one over the chain's `http` endpoints, if it has any. */
  http?: SolanaRpc
  /** Delays between the attempts of one gap recovery. */
  gapRetryDelaysMs?: readonly number[]
  /** Where /admin/status reads this chain from (written by the subscriber holding the lease). */
  statusPublisher?: ChainStatusPublisher
}

export interface SolanaChainStatus {
  connected: boolean
  endpoint: string
  head: { number: number; hash: null } | null
  lastHeadAt: string | null
  reconnects: number
  subscriptions: number
}

/** The runner's own holder of the slot subscription: the chain head and the watchdog's pulse. */
const HEAD_HOLDER = 'head'
/** SPEC §6: no head for 3 × blockTimeMs, at least 30 s, and the connection is replaced. */
const MIN_WATCHDOG_MS = 30_000
/** Tasks waiting for Redis; beyond this the node sends faster than Redis takes (logged, dropped). */
const MAX_QUEUED_TASKS = 100_000
const DEFAULT_GAP_RETRY_DELAYS_MS = [1_000, 5_000]

interface OpenSubscription {
  subscription: SolanaSubscription
  handle: RpcSubscription
}

/** Runs async tasks one after another; a failing task is logged and the next one runs. */
class SerialQueue {
  #tail: Promise<void> = Promise.resolve()
  #size = 0
  readonly #onError: (err: unknown) => void

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError
  }

  push(task: () => Promise<void>): boolean {
    if (this.#size >= MAX_QUEUED_TASKS) return false
    this.#size++
    this.#tail = this.#tail.then(task).catch(this.#onError).finally(() => { this.#size-- })
    return true
  }

  /** Resolves when every task pushed so far has run. */
  idle(): Promise<void> {
    return this.#tail
  }
}

export class SolanaChainRunner {
  readonly #chain: ChainConfig
  readonly #watchStore: WatchStore
  readonly #deliveryQueue: DeliveryQueue
  readonly #metrics: Metrics
  readonly #log: Logger
  readonly #socket: RpcSocket
  readonly #http: SolanaRpc | undefined
  readonly #markers: GapMarkers
  readonly #gapRetryDelaysMs: readonly number[]
  readonly #statusPublisher: ChainStatusPublisher | undefined
  readonly #registry = new SubscriptionRegistry()
  readonly #open = new Map<string, OpenSubscription>()
  readonly #watches = new Map<string, SolanaWatch>()
  readonly #queue: SerialQueue
  readonly #stopping = new AbortController()
  #head: { slot: number; at: number } | undefined
  #closing: Promise<void> | undefined

  constructor(options: SolanaRunnerOptions) {
    const { chain, logger } = options
    this.#chain = chain
    this.#watchStore = options.watchStore
    this.#deliveryQueue = options.deliveryQueue
    this.#metrics = options.metrics
    this.#log = logger.child({ chain: chain.id })
    this.#socket = new RpcSocket({
      watchdogMs: Math.max(3 * chain.blockTimeMs, MIN_WATCHDOG_MS),
      parseMessage: parseSolanaJson,
      ...options.socket,
      name: chain.id,
      endpoints: chain.ws,
      logger: this.#log,
    })
    this.#http = options.http ??
      (chain.http.length > 0 ? new SolanaHttpClient({ endpoints: chain.http, logger: this.#log }) : undefined)
    this.#markers = new GapMarkers(options.redis, options.keys, chain.id)
    this.#gapRetryDelaysMs = options.gapRetryDelaysMs ?? DEFAULT_GAP_RETRY_DELAYS_MS
    this.#statusPublisher = options.statusPublisher
    this.#queue = new SerialQueue((err) => this.#log.error({ err }, 'solana task failed'))
    this.#socket.on('connected', () => {
      this.#publishStatus()
      this.#catchUpAll()
    })
    this.#socket.on('disconnected', ({ reason }) => {
      this.#metrics.wsReconnects.inc({ chain: chain.id })
      this.#publishStatus()
      this.#log.warn({ reason }, 'solana connection lost; subscriptions will be renewed and gaps filled')
    })
  }

  /** Subscribes for the chain's loaded watches and connects. */
  start(watches: readonly Watch[]): void {
    if (!this.#http) this.#log.warn('no http endpoint: logs and account gaps after a reconnect cannot be filled')
    this.#apply(this.#registry.put(HEAD_HOLDER, slotSubscription(this.#chain.commitment)))
    for (const watch of watches) this.upsert(watch)
    const live = [...this.#open.values()].map((o) => o.subscription)
    this.#queue.push(() => this.#markers.retainOnly(live))
    this.#socket.start()
  }

  /** A watch of any status was created or changed: (re)subscribe it, or let it go if not active. */
  upsert(watch: Watch): void {
    if (watch.chain !== this.#chain.id || !isSolanaWatch(watch)) return
    if (watch.status !== 'active') {
      this.remove(watch.id)
      return
    }
    let subscription: SolanaSubscription
    try {
      subscription = subscriptionOf(watch, this.#chain.commitment)
    } catch (err) {
      this.#log.warn({ err, watchId: watch.id }, 'watch filter not understood, skipped')
      this.remove(watch.id)
      return
    }
    this.#watches.set(watch.id, watch)
    this.#apply(this.#registry.put(watch.id, subscription))
  }

  remove(watchId: string): void {
    this.#watches.delete(watchId)
    this.#apply(this.#registry.remove(watchId))
  }

  status(): SolanaChainStatus {
    return {
      connected: this.#socket.connected,
      endpoint: this.#socket.endpoint,
      head: this.#head ? { number: this.#head.slot, hash: null } : null,
      lastHeadAt: this.#head ? new Date(this.#head.at).toISOString() : null,
      reconnects: this.#socket.reconnects,
      subscriptions: this.#open.size,
    }
  }

  #publishStatus(): void {
    if (!this.#statusPublisher) return
    const { connected, endpoint, head, lastHeadAt, reconnects, subscriptions } = this.status()
    this.#statusPublisher.update({
      type: 'solana', connected, endpoint, reconnects, subscriptions,
      ...(head ? { headNumber: head.number } : {}),
      ...(lastHeadAt ? { lastHeadAt } : {}),
    })
  }

  /** Resolves once every notification and gap recovery queued so far is processed. */
  idle(): Promise<void> {
    return this.#queue.idle()
  }

  /** Stops taking notifications, lets queued work finish, closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping.abort()
      await this.#socket.close()
      await this.#queue.idle()
    })()
    return this.#closing
  }

  // --- subscriptions ----------------------------------------------------------------------------

  #apply(changes: SubscriptionChanges): void {
    for (const subscription of changes.close) {
      const open = this.#open.get(subscription.key)
      this.#open.delete(subscription.key)
      void open?.handle.unsubscribe()
      this.#queue.push(() => this.#markers.delete(subscription))
    }
    for (const subscription of changes.open) {
      const connectedAlready = this.#socket.connected
      const handle = this.#socket.subscribe(
        { method: subscription.method, params: subscription.params, unsubscribeMethod: subscription.unsubscribeMethod },
        (result) => this.#onNotification(subscription, result),
      )
      this.#open.set(subscription.key, { subscription, handle })
      // Opened on a live connection: no `connected` event will follow to start its history.
      if (connectedAlready) void handle.ready.then(() => this.#queueCatchUp(subscription))
    }
    if (changes.open.length + changes.close.length > 0) this.#publishStatus()
  }

  #watchesOf(subscription: SolanaSubscription): SolanaWatch[] {
    return this.#registry.holdersOf(subscription.key)
      .map((holder) => this.#watches.get(holder))
      .filter((w): w is SolanaWatch => w !== undefined)
  }

  // --- notifications ----------------------------------------------------------------------------

  #onNotification(subscription: SolanaSubscription, result: unknown): void {
    const firstSeenAt = Date.now()
    const notification = parseNotification(subscription.method, result)
    if (isRejection(notification)) {
      const level = notification.code === 'BH_SOLANA_NOT_TERMINAL' ? 'debug' : 'warn'
      this.#log[level]({ method: subscription.method, code: notification.code, reason: notification.reason }, 'notification skipped')
      return
    }
    if (subscription.method === 'slotSubscribe') this.#onHead(notification.slot, firstSeenAt)
    if (this.#stopping.signal.aborted) return
    const queued = this.#queue.push(() => this.#deliverNotification(subscription, notification, firstSeenAt))
    if (!queued) this.#log.error({ method: subscription.method, slot: notification.slot }, 'too much queued, notification dropped')
  }

  #onHead(slot: number, at: number): void {
    this.#socket.touch()
    if (this.#head && this.#head.slot >= slot) return
    this.#head = { slot, at }
    this.#metrics.chainHead.set({ chain: this.#chain.id }, slot)
    this.#publishStatus()
  }

  async #deliverNotification(
    subscription: SolanaSubscription, notification: SolanaNotification, firstSeenAt: number, endedByNode = true,
  ): Promise<void> {
    const watches = this.#watchesOf(subscription)
    if (watches.length > 0) await this.#enqueue(subscription.eventType, matchedEvents(subscription.eventType, notification, watches, firstSeenAt))
    if (!this.#open.has(subscription.key)) return
    if (mentionedAccount(subscription)) {
      await this.#markers.set(subscription, (notification.value as { signature: string }).signature)
    } else if (subscription.method === 'accountSubscribe') {
      await this.#markers.set(subscription, accountStateHash(notification.value))
    } else if (subscription.method === 'signatureSubscribe') {
      await this.#completeSignature(subscription, endedByNode)
    }
  }

  /**
   * A signature watch fires once: its watches become `completed`. A live notification ended the
   * subscription on the node (nothing to unsubscribe); one recovered over http did not.
   */
  async #completeSignature(subscription: SolanaSubscription, endedByNode: boolean): Promise<void> {
    const open = this.#open.get(subscription.key)
    if (endedByNode) open?.handle.forget()
    else void open?.handle.unsubscribe()
    this.#open.delete(subscription.key)
    this.#publishStatus()
    for (const watchId of this.#registry.forget(subscription.key)) {
      this.#watches.delete(watchId)
      try {
        await this.#watchStore.update(watchId, (w) => ({ ...w, status: 'completed', updatedAt: new Date().toISOString() }))
      } catch (err) {
        if ((err as { code?: string }).code !== 'BH_WATCH_NOT_FOUND') throw err
      }
    }
  }

  async #enqueue(type: EventType, events: readonly MatchedEvent[]): Promise<void> {
    if (events.length === 0) return
    const added = await this.#deliveryQueue.enqueue(events)
    if (added > 0) this.#metrics.eventsMatched.inc({ chain: this.#chain.id, type }, added)
  }

  // --- gap recovery -----------------------------------------------------------------------------

  #catchUpAll(): void {
    for (const { subscription } of this.#open.values()) this.#queueCatchUp(subscription)
  }

  #queueCatchUp(subscription: SolanaSubscription): void {
    if (!this.#http || this.#stopping.signal.aborted) return
    if (!mentionedAccount(subscription) && subscription.method !== 'accountSubscribe' && subscription.method !== 'signatureSubscribe') return
    this.#queue.push(() => this.#withRetries(subscription, (http) => this.#catchUp(http, subscription)))
  }

  async #withRetries(subscription: SolanaSubscription, attempt: (http: SolanaRpc) => Promise<void>): Promise<void> {
    for (let i = 0; ; i++) {
      if (!this.#open.has(subscription.key) || this.#stopping.signal.aborted) return
      try {
        return await attempt(this.#http!)
      } catch (err) {
        const delayMs = this.#gapRetryDelaysMs[i]
        this.#log.warn({ err, method: subscription.method, retryInMs: delayMs }, 'gap recovery failed')
        if (delayMs === undefined) return
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delayMs)
          this.#stopping.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(undefined) }, { once: true })
        })
      }
    }
  }

  async #catchUp(http: SolanaRpc, subscription: SolanaSubscription): Promise<void> {
    if (subscription.method === 'signatureSubscribe') {
      const [signature] = subscription.params as [string]
      const missed = await missedSignatureNotification(http, signature, subscription.commitment)
      if (missed) await this.#deliverNotification(subscription, missed, Date.now(), false)
      return
    }
    const marker = await this.#markers.get(subscription)
    const address = mentionedAccount(subscription)
    if (address) {
      // A first subscription starts at the head: its history begins with the newest signature.
      if (!marker) {
        const newest = await newestSignature(http, address, subscription.commitment)
        if (newest) await this.#markers.set(subscription, newest)
        return
      }
      const { signatures, complete } = await signaturesSince(http, address, marker, subscription.commitment)
      if (!complete) this.#log.warn({ recovered: signatures.length }, 'logs gap deeper than recovery reads, oldest part left out')
      if (signatures.length === 0) return
      const notifications = await logsOfSignatures(http, signatures, subscription.commitment)
      const firstSeenAt = Date.now()
      const watches = this.#watchesOf(subscription)
      await this.#enqueue(subscription.eventType, notifications.flatMap((n) => matchedEvents(subscription.eventType, n, watches, firstSeenAt)))
      await this.#markers.set(subscription, signatures[signatures.length - 1]!.signature)
      this.#log.info({ transactions: signatures.length }, 'logs gap filled')
      return
    }
    const account = await readAccount(http, subscription)
    const state = accountStateHash(account.value)
    if (marker !== undefined && marker !== state) {
      await this.#enqueue(subscription.eventType, matchedEvents(subscription.eventType, account, this.#watchesOf(subscription), Date.now()))
      this.#log.info({ slot: account.slot }, 'account changed during the gap, delivered')
    }
    await this.#markers.set(subscription, state)
  }
}
