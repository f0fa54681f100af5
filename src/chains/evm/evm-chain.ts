/**
 * An EVM chain in the subscriber (the `evm` ChainDriver): one RpcSocket to the chain's nodes,
 * and, while this process holds the chain's lease, the watch indexes fed by the change feed, the
 * block follower woken by `newHeads` and by every (re)connection, pending transactions, replays,
 * the chain's status entry and metrics.
 */
import type { RedisClient } from '../../storage/redis.js'
import type { Logger } from 'pino'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { ReplayQueue } from '../../delivery/replay-requests.js'
import { connectionNotReadyReason, watchdogMsFor, type ChainDriver, type ChainDriverDeps } from '../../subscriber/chain-runner.js'
import { SkipLog } from '../../skip-log.js'
import { ChainStatusPublisher } from '../../subscriber/chain-status.js'
import { duplicateRedis } from '../../storage/redis.js'
import { RedisCursorStore } from '../../subscriber/cursor-store.js'
import type { ChainLease } from '../../subscriber/lease.js'
import { WatchSet } from '../../subscriber/watch-set.js'
import { RpcSocket, type RpcSocketOptions, type RpcSubscription } from '../rpc-socket.js'
import { BlockFollower, type FollowerDeps } from './block-follower.js'
import { EvmNode } from './evm-node.js'
import { PendingTransactions } from './pending-transactions.js'
import { RedisRecentBlocks } from './recent-blocks.js'
import { ReplayConsumer } from './replays.js'
import { parseHead, parseHeader } from './rpc-types.js'
import { EvmWatchIndex } from './watch-index.js'

export interface EvmChainDeps extends ChainDriverDeps {
  /** Overrides for tests (small watchdog, ping, backoff). */
  socket?: Partial<RpcSocketOptions>
  follower?: Pick<FollowerDeps, 'chunkBlocks' | 'fetchConcurrency' | 'reorgMarginBlocks'>
}

interface Leadership {
  index: EvmWatchIndex
  reader: RedisClient
  replayReader: RedisClient
  watchSet: WatchSet
  follower: BlockFollower
  pending: PendingTransactions
  replays: ReplayConsumer
  heads: RpcSubscription
}

export class EvmChain implements ChainDriver {
  readonly chainId: string
  readonly socket: RpcSocket
  readonly #d: EvmChainDeps
  readonly #node: EvmNode
  readonly #log: Logger
  /** A node sending one bad head after another writes one line a minute, with the count. */
  readonly #skips: SkipLog
  readonly #status: ChainStatusPublisher
  #leadership: Leadership | undefined

  constructor(deps: EvmChainDeps) {
    this.#d = deps
    this.chainId = deps.chain.id
    this.#log = deps.logger.child({ chain: deps.chain.id })
    this.#skips = new SkipLog(this.#log)
    this.socket = new RpcSocket({
      name: deps.chain.id, endpoints: deps.chain.ws, logger: this.#log, watchdogMs: watchdogMsFor(deps.chain),
      maxPayloadBytes: deps.chain.maxFrameBytes, ...deps.socket,
    })
    this.#node = new EvmNode(this.socket, this.#log)
    this.#status = new ChainStatusPublisher(deps.redis, deps.keys.chainStatus(deps.chain.id), {
      type: 'evm', connected: false, endpoint: this.socket.endpoint, reconnects: 0, subscriptions: 0,
    }, this.#log)
    this.socket.on('disconnected', () => {
      this.#d.metrics.wsReconnects.inc({ chain: this.chainId })
      if (this.#leadership) this.#status.update(this.#connectionStatus())
    })
    this.socket.on('connected', () => {
      if (!this.#leadership) return
      this.#status.update(this.#connectionStatus())
      // A resubscription is not continuity, and maybe another node: check its chain, catch up from the cursor.
      this.#leadership.follower.connectionChanged()
    })
  }

  /** The leader's watch set, for tests that await a change (undefined on a standby). */
  get watchSet(): WatchSet | undefined {
    return this.#leadership?.watchSet
  }

  get follower(): BlockFollower | undefined {
    return this.#leadership?.follower
  }

  get replays(): ReplayConsumer | undefined {
    return this.#leadership?.replays
  }

  get pendingTransactions(): PendingTransactions | undefined {
    return this.#leadership?.pending
  }

  start(): void {
    this.socket.start()
  }

  notReadyReason(): string | undefined {
    return this.#leadership?.follower.differentChain ?? connectionNotReadyReason(this.chainId, this.socket)
  }

  #connectionStatus() {
    return {
      connected: this.socket.connected,
      endpoint: this.socket.endpoint,
      reconnects: this.socket.reconnects,
      subscriptions: this.socket.subscriptionCount,
    }
  }

  async lead(lease: ChainLease, onLeaseLost: () => void): Promise<void> {
    const { chain, redis, keys, store } = this.#d
    const index = new EvmWatchIndex(chain.id, chain.confirmations)
    const emit = (events: MatchedEvent[]) => this.#emit(events)
    const pending = new PendingTransactions({ socket: this.socket, node: this.#node, index, emit, logger: this.#log })
    // lastHeadAt says when the chain last moved (stall alerts read it): the same head read again
    // (after a reconnect, a wake with nothing new, or this process taking over) leaves it.
    let lastHeadHash = await redis.hget(keys.chainStatus(chain.id), 'headHash')
    const reader = duplicateRedis(redis, this.#log, 'watch changes')
    const watchSet = new WatchSet({
      store, reader, chain: chain.id, chainType: 'evm', logger: this.#log,
      sink: {
        upsert: (watch) => { index.upsert(watch); pending.sync() },
        remove: (watchId) => { index.remove(watchId); pending.sync() },
      },
    })
    const follower = new BlockFollower({
      chain: chain.id, node: this.#node, index, logger: this.#log, emit,
      cursors: new RedisCursorStore(redis, keys.chainCursor(chain.id), lease),
      recentBlocks: new RedisRecentBlocks(redis, keys.chainRecentBlocks(chain.id), this.#log),
      emittedEvents: (ids) => this.#d.deliveryQueue.store.storedEvents(ids),
      onLeaseLost,
      newChainEachRun: chain.newChainEachRun ?? false,
      ...(chain.ws.length > 1 ? { failover: (reason: string) => this.socket.failover(reason) } : {}),
      onHead: (head) => {
        this.#d.metrics.chainHead.set({ chain: chain.id }, head.number)
        if (head.hash === lastHeadHash) return
        lastHeadHash = head.hash
        this.#status.update({ headNumber: head.number, headHash: head.hash, lastHeadAt: new Date().toISOString() })
      },
      ...this.#d.follower,
    })
    const replayReader = duplicateRedis(redis, this.#log, 'replay requests')
    const replays = new ReplayConsumer({
      chain: chain.id, defaultConfirmations: chain.confirmations, reader: replayReader, requests: new ReplayQueue(redis, keys), store, node: this.#node,
      cursor: (number) => follower.reached(number),
      enqueue: async (events, replayId) => { await this.#d.deliveryQueue.enqueue(events, replayId ? { replayId } : {}) },
      logger: this.#log,
    })
    // Watches first: a block matched against a half-loaded index would lose its events for good.
    try {
      await watchSet.start()
    } catch (err) {
      await Promise.all([watchSet.stop(), pending.stop()])
      reader.disconnect()
      replayReader.disconnect()
      throw err
    }
    this.#leadership = {
      index, reader, replayReader, watchSet, follower, pending, replays,
      heads: this.socket.subscribe(
        { method: 'eth_subscribe', params: ['newHeads'], unsubscribeMethod: 'eth_unsubscribe' },
        (result) => this.#onHead(result),
      ),
    }
    replays.start()
    this.#status.update(this.#connectionStatus())
    await this.#status.flush()
    follower.wake()
  }

  /** `newHeads` wakes the follower, handing it the head; it reads the block and its logs itself. */
  #onHead(result: unknown): void {
    const head = parseHead(result)
    if (!head) {
      this.#skips.skip('newHeads notification of unknown shape skipped')
      return
    }
    this.socket.touch()
    // With its parent's hash it is a header the follower can take as the head instead of reading it.
    const header = parseHeader(result)
    if (header) this.#leadership?.follower.newHead({ number: header.number, hash: header.hash, parentHash: header.parentHash })
    else this.#leadership?.follower.wake()
  }

  async #emit(events: MatchedEvent[]): Promise<void> {
    await this.#d.deliveryQueue.enqueue(events)
    const byType = new Map<string, number>()
    for (const e of events) byType.set(e.type, (byType.get(e.type) ?? 0) + 1)
    for (const [type, count] of byType) this.#d.metrics.eventsMatched.inc({ chain: this.chainId, type }, count)
  }

  async stopLeading(): Promise<void> {
    const l = this.#leadership
    if (!l) return
    this.#leadership = undefined
    await l.heads.unsubscribe()
    await Promise.all([l.pending.stop(), l.follower.stop(), l.watchSet.stop(), l.replays.stop()])
    l.reader.disconnect()
    l.replayReader.disconnect()
    this.#status.update({ connected: false })
    await this.#status.flush()
  }

  async close(): Promise<void> {
    await this.stopLeading()
    await this.socket.close()
  }
}
