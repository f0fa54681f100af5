/**
 * `evm.pending_transactions` (best effort, README, "Concepts"): subscribed to `newPendingTransactions` only
 * while some watch wants it. Most nodes send only hashes, so each is fetched, with a bounded
 * number of fetches in flight and a bounded backlog: under a mempool flood, hashes beyond it are
 * dropped (counted in the log) rather than letting memory grow.
 */
import type { Logger } from 'pino'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import type { RpcSocket, RpcSubscription } from '../rpc-socket.js'
import type { EvmNode } from './evm-node.js'
import { SkipLog } from '../../skip-log.js'
import { parseTransaction, type RpcTransaction } from './rpc-types.js'
import type { EvmWatchIndex } from './watch-index.js'

const MAX_IN_FLIGHT = 16
const MAX_BACKLOG = 2_000
const HASH = /^0x[0-9a-fA-F]{64}$/

export interface PendingTransactionsDeps {
  socket: RpcSocket
  node: EvmNode
  index: EvmWatchIndex
  emit(events: MatchedEvent[]): Promise<void>
  logger: Logger
}

export class PendingTransactions {
  readonly #d: PendingTransactionsDeps
  /** A node sending one bad notification after another writes one line a minute, with the count. */
  readonly #skips: SkipLog
  #subscription: RpcSubscription | undefined
  readonly #backlog: string[] = []
  #inFlight = 0
  #dropped = 0

  constructor(deps: PendingTransactionsDeps) {
    this.#d = deps
    this.#skips = new SkipLog(deps.logger)
  }

  /** Subscribes or unsubscribes to match whether any pending-transaction watch exists. */
  sync(): void {
    const wanted = this.#d.index.pendingWatchCount > 0
    if (wanted && !this.#subscription) {
      this.#subscription = this.#d.socket.subscribe(
        { method: 'eth_subscribe', params: ['newPendingTransactions'], unsubscribeMethod: 'eth_unsubscribe' },
        (result) => this.#onNotification(result),
      )
    } else if (!wanted && this.#subscription) {
      void this.#subscription.unsubscribe()
      this.#subscription = undefined
      this.#backlog.length = 0
    }
  }

  /** Resolves once the node has accepted the subscription (at once when there is none). */
  get ready(): Promise<void> {
    return this.#subscription?.ready ?? Promise.resolve()
  }

  async stop(): Promise<void> {
    const subscription = this.#subscription
    this.#subscription = undefined
    this.#backlog.length = 0
    await subscription?.unsubscribe()
  }

  #onNotification(result: unknown): void {
    if (typeof result === 'string' && HASH.test(result)) {
      if (this.#backlog.length >= MAX_BACKLOG) {
        if (this.#dropped++ % 1000 === 0) this.#d.logger.warn({ dropped: this.#dropped }, 'pending transaction backlog full, dropping hashes')
        return
      }
      this.#backlog.push(result)
      this.#pump()
      return
    }
    const tx = parseTransaction(result)
    if (!tx) {
      this.#skips.skip('pending transaction notification of unknown shape skipped')
      return
    }
    void this.#match(tx)
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#backlog.length > 0) {
      const hash = this.#backlog.shift()!
      this.#inFlight++
      this.#d.node.transaction(hash)
        .then((tx) => (tx ? this.#match(tx) : undefined))
        .catch((err: unknown) => this.#d.logger.debug({ err, hash }, 'pending transaction not fetched'))
        .finally(() => {
          this.#inFlight--
          this.#pump()
        })
    }
  }

  async #match(tx: RpcTransaction): Promise<void> {
    if (!this.#subscription) return
    const events = this.#d.index.matchPending(tx, Date.now()).map((m) => m.event)
    if (events.length === 0) return
    try {
      await this.#d.emit(events)
    } catch (err) {
      this.#d.logger.warn({ err, hash: tx.hash }, 'pending transaction events not queued')
    }
  }
}
