/**
 * What a Solana chain does while this process holds its lease: it is the sink of the chain's
 * watch set, keeps one node subscription per distinct request however many watches share it,
 * turns notifications into MatchedEvents on the delivery queue, and each time the node accepts a
 * subscription (first start, lease takeover, every reconnect) fills its gap from the chain's
 * `http` endpoint, once, queued ahead of that connection's notifications.
 *
 * Everything that touches Redis runs through one serial queue, so events reach the delivery
 * queue in the order the node sent them and a gap is delivered before what came after it.
 */
import type { Logger } from 'pino'
import { hasCode } from '../../domain/errors.js'
import type { ChainConfig } from '../../config/config.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import type { DeliveryQueue } from '../../delivery/delivery-queue.js'
import type { EventType, Watch } from '../../domain/watch-types.js'
import type { Metrics } from '../../metrics.js'
import type { WatchService } from '../../services/watch-service.js'
import type { WatchSink } from '../../subscriber/watch-set.js'
import type { RpcSocket, RpcSubscription } from '../rpc-socket.js'
import {
  accountStateHash, formatLogsMarker, type GapMarkers, logsOfSignatures, missedSignatureNotification, newestSignature,
  parseLogsMarker, readAccount, signaturesSince,
} from './gap-recovery.js'
import type { SolanaRpc } from './http-client.js'
import { SkipLog } from '../../skip-log.js'
import { isRejection, matchedEvents, parseNotification, type SolanaNotification } from './notifications.js'
import {
  isSolanaWatch, mentionedAccount, slotSubscription, subscriptionOf, SubscriptionRegistry,
  type SolanaSubscription, type SolanaWatch, type SubscriptionChanges,
} from './subscriptions.js'

export interface SolanaLeaderDeps {
  chain: ChainConfig
  socket: RpcSocket
  /** Gap recovery client; without one, gaps are not filled (logged at start). */
  http: SolanaRpc | undefined
  markers: GapMarkers
  /** Marks a signature watch `completed` once it fired. */
  watches: WatchService
  deliveryQueue: DeliveryQueue
  metrics: Metrics
  logger: Logger
  /** Delays between the attempts of one gap recovery. */
  gapRetryDelaysMs: readonly number[]
  /** A slot notification: the chain head moved. */
  onHead: (slot: number) => void
  onSubscriptionsChanged: () => void
  /** A fenced write found the lease gone. */
  onLeaseLost: () => void
}

/** The leader's own holder of the slot subscription: the chain head and the watchdog's pulse. */
const HEAD_HOLDER = 'head'
/** Tasks waiting for Redis; beyond this the node sends faster than Redis takes (logged, dropped). */
const MAX_QUEUED_TASKS = 100_000
/** Notifications waiting for Redis, all batches together; same policy beyond it. */
const MAX_PENDING_NOTIFICATIONS = 100_000
/** Notifications stored and queued in one round trip. */
const MAX_BATCH = 500

interface OpenSubscription {
  subscription: SolanaSubscription
  handle: RpcSubscription
}

/** A notification on its way to the delivery queue. */
interface Arrival {
  subscription: SolanaSubscription
  notification: SolanaNotification
  firstSeenAt: number
  /** False for a signature status read over http: the node still holds that subscription. */
  endedByNode: boolean
}

/** Runs async tasks one after another; a failing task is reported and the next one runs. */
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

export class SolanaLeader implements WatchSink {
  readonly #d: SolanaLeaderDeps
  readonly #log: Logger
  /** A node sending one malformed notification after another writes one line a minute, with the count. */
  readonly #skips: SkipLog
  readonly #registry = new SubscriptionRegistry()
  readonly #open = new Map<string, OpenSubscription>()
  readonly #watches = new Map<string, SolanaWatch>()
  readonly #queue: SerialQueue
  readonly #stopping = new AbortController()
  /** The gap recovery client, its calls cut short when leading stops (shutdown stays within SPEC's 10 s). */
  readonly #http: SolanaRpc | undefined
  /**
   * Notifications that arrived while Redis was busy go in one batch (one task on the queue). Any
   * other task queued closes it, so a later notification never overtakes a gap recovery.
   */
  #openBatch: Arrival[] | undefined
  #pending = 0

  constructor(deps: SolanaLeaderDeps) {
    this.#d = deps
    this.#log = deps.logger
    this.#skips = new SkipLog(deps.logger)
    const { http } = deps
    this.#http = http && { call: (method, params) => http.call(method, params, this.#stopping.signal) }
    this.#queue = new SerialQueue((err) => {
      if (hasCode(err, 'BH_LEASE_LOST')) deps.onLeaseLost()
      else this.#log.error({ err }, 'solana task failed')
    })
  }

  get subscriptionCount(): number {
    return this.#open.size
  }

  /**
   * Called once the watch set is loaded: subscribes the head and forgets the gap markers of
   * subscriptions no watch needs any more. Gaps are filled as the node accepts each subscription.
   */
  begin(): void {
    if (!this.#http) this.#log.warn('no http endpoint: logs, account and signature gaps after a reconnect cannot be filled')
    this.#apply(this.#registry.put(HEAD_HOLDER, slotSubscription(this.#d.chain.commitment)))
    const live = [...this.#open.values()].map((o) => o.subscription)
    this.#push(() => this.#d.markers.retainOnly(live))
  }

  /** A watch of any status was created or changed: (re)subscribe it, or let it go if not active. */
  upsert(watch: Watch): void {
    if (!isSolanaWatch(watch) || watch.status !== 'active') {
      this.remove(watch.id)
      return
    }
    this.#watches.set(watch.id, watch)
    this.#apply(this.#registry.put(watch.id, subscriptionOf(watch, this.#d.chain.commitment)))
  }

  remove(watchId: string): void {
    this.#watches.delete(watchId)
    this.#apply(this.#registry.remove(watchId))
  }

  /** Resolves once every notification and gap recovery queued so far is processed. */
  idle(): Promise<void> {
    return this.#queue.idle()
  }

  /**
   * Stops leading: unsubscribes everything but keeps the gap markers (the next leader resumes
   * from them), and lets queued work finish.
   */
  async stop(): Promise<void> {
    this.#stopping.abort()
    const open = [...this.#open.values()]
    this.#open.clear()
    await Promise.all(open.map(({ handle }) => handle.unsubscribe()))
    await this.#queue.idle()
  }

  // --- subscriptions ----------------------------------------------------------------------------

  #apply(changes: SubscriptionChanges): void {
    if (this.#stopping.signal.aborted) return
    for (const subscription of changes.close) {
      const open = this.#open.get(subscription.key)
      this.#open.delete(subscription.key)
      void open?.handle.unsubscribe()
      this.#push(() => this.#d.markers.delete(subscription))
    }
    for (const subscription of changes.open) {
      const handle = this.#d.socket.subscribe(
        { method: subscription.method, params: subscription.params, unsubscribeMethod: subscription.unsubscribeMethod },
        (result) => this.#onNotification(subscription, result),
        // A resubscription is not continuity: the gap is read once per acceptance, queued ahead of
        // that connection's notifications. Read before the acceptance (a takeover on an open
        // connection), it would leave a hole up to it; read twice, the second read would deliver
        // ahead of live notifications what the live subscription covers.
        () => this.#queueCatchUp(subscription),
      )
      this.#open.set(subscription.key, { subscription, handle })
    }
    if (changes.open.length + changes.close.length > 0) this.#d.onSubscriptionsChanged()
  }

  #watchesOf(subscription: SolanaSubscription): SolanaWatch[] {
    return this.#registry.holdersOf(subscription.key)
      .map((holder) => this.#watches.get(holder))
      .filter((w): w is SolanaWatch => w !== undefined)
  }

  // --- notifications ----------------------------------------------------------------------------

  #onNotification(subscription: SolanaSubscription, result: unknown): void {
    if (this.#stopping.signal.aborted) return
    const firstSeenAt = Date.now()
    const notification = parseNotification(subscription.method, result)
    if (isRejection(notification)) {
      const fields = { method: subscription.method, code: notification.code, reason: notification.reason }
      if (notification.code === 'BH_SOLANA_NOT_TERMINAL') this.#log.debug(fields, 'notification skipped')
      else this.#skips.skip('malformed notification skipped', fields)
      return
    }
    if (subscription.method === 'slotSubscribe') this.#d.onHead(notification.slot)
    if (this.#pending >= MAX_PENDING_NOTIFICATIONS) {
      this.#log.error({ method: subscription.method, slot: notification.slot }, 'too much queued, notification dropped')
      return
    }
    this.#pending++
    if (!this.#openBatch || this.#openBatch.length >= MAX_BATCH) {
      const batch: Arrival[] = []
      if (!this.#push(() => this.#deliverBatch(batch))) {
        this.#pending--
        this.#log.error({ method: subscription.method, slot: notification.slot }, 'too much queued, notification dropped')
        return
      }
      this.#openBatch = batch
    }
    this.#openBatch.push({ subscription, notification, firstSeenAt, endedByNode: true })
  }

  /** Queues a task after everything so far; notifications from now on go in a new batch after it. */
  #push(task: () => Promise<void>): boolean {
    this.#openBatch = undefined
    return this.#queue.push(task)
  }

  async #deliverBatch(batch: Arrival[]): Promise<void> {
    if (this.#openBatch === batch) this.#openBatch = undefined
    this.#pending -= batch.length
    await this.#deliver(batch)
  }

  /**
   * Stores and queues the events of `arrivals` in one go, in order; then moves each subscription's
   * gap marker to its last arrival and completes the signature watches that fired.
   */
  async #deliver(arrivals: readonly Arrival[]): Promise<void> {
    const countByType = new Map<EventType, number>()
    const events: MatchedEvent[] = []
    const last = new Map<string, Arrival>()
    for (const arrival of arrivals) {
      const { subscription, notification, firstSeenAt } = arrival
      const matched = matchedEvents(subscription.eventType, notification, this.#watchesOf(subscription), firstSeenAt)
      events.push(...matched)
      countByType.set(subscription.eventType, (countByType.get(subscription.eventType) ?? 0) + matched.length)
      last.set(subscription.key, arrival)
    }
    if (events.length > 0) {
      await this.#d.deliveryQueue.enqueue(events)
      for (const [type, count] of countByType) if (count > 0) this.#d.metrics.eventsMatched.inc({ chain: this.#d.chain.id, type }, count)
    }
    for (const { subscription, notification, endedByNode } of last.values()) {
      if (!this.#open.has(subscription.key)) continue
      if (mentionedAccount(subscription)) {
        const { signature } = notification.value as { signature: string }
        await this.#d.markers.set(subscription, formatLogsMarker({ signature, slot: notification.slot }))
      } else if (subscription.method === 'accountSubscribe') {
        await this.#d.markers.set(subscription, accountStateHash(notification.value))
      } else if (subscription.method === 'signatureSubscribe') {
        await this.#completeSignature(subscription, endedByNode)
      }
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
    this.#d.onSubscriptionsChanged()
    for (const watchId of this.#registry.forget(subscription.key)) {
      this.#watches.delete(watchId)
      await this.#d.watches.complete(watchId)
    }
  }

  // --- gap recovery -----------------------------------------------------------------------------

  #queueCatchUp(subscription: SolanaSubscription): void {
    if (!this.#http || this.#stopping.signal.aborted) return
    const recoverable = mentionedAccount(subscription) !== undefined ||
      subscription.method === 'accountSubscribe' || subscription.method === 'signatureSubscribe'
    if (!recoverable) return
    const http = this.#http
    this.#push(() => this.#withRetries(subscription, () => this.#catchUp(http, subscription)))
  }

  async #withRetries(subscription: SolanaSubscription, attempt: () => Promise<void>): Promise<void> {
    for (let i = 0; ; i++) {
      if (!this.#open.has(subscription.key) || this.#stopping.signal.aborted) return
      try {
        return await attempt()
      } catch (err) {
        if (hasCode(err, 'BH_LEASE_LOST')) throw err
        if (this.#stopping.signal.aborted) return
        const delayMs = this.#d.gapRetryDelaysMs[i]
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
      if (missed) await this.#deliver([{ subscription, notification: missed, firstSeenAt: Date.now(), endedByNode: false }])
      return
    }
    const { markers } = this.#d
    const marker = await markers.get(subscription)
    const address = mentionedAccount(subscription)
    if (address) {
      const since = marker === undefined ? undefined : parseLogsMarker(marker)
      // A first subscription starts at the head: its history begins with the newest signature.
      if (!since) {
        const newest = await newestSignature(http, address, subscription.commitment)
        if (newest) await markers.set(subscription, formatLogsMarker(newest))
        return
      }
      const { signatures, complete } = await signaturesSince(http, address, since, subscription.commitment)
      if (!complete) this.#log.warn({ recovered: signatures.length }, 'logs gap deeper than recovery reads, oldest part left out')
      if (signatures.length === 0) return
      const notifications = await logsOfSignatures(http, signatures, subscription.commitment)
      const firstSeenAt = Date.now()
      await this.#deliver(notifications.map((notification) => ({ subscription, notification, firstSeenAt, endedByNode: true })))
      this.#log.info({ transactions: signatures.length }, 'logs gap filled')
      return
    }
    const account = await readAccount(http, subscription)
    const state = accountStateHash(account.value)
    if (marker !== undefined && marker !== state) {
      await this.#deliver([{ subscription, notification: account, firstSeenAt: Date.now(), endedByNode: true }])
      this.#log.info({ slot: account.slot }, 'account changed during the gap, delivered')
    } else {
      await markers.set(subscription, state)
    }
  }
}
