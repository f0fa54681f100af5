/**
 * A Solana chain in the subscriber (the `solana` ChainDriver): one RpcSocket to the chain's
 * PubSub endpoints (failover, ping, watchdog, subscriptions replayed after every reconnect), and,
 * while this process holds the chain's lease, a SolanaLeader fed by the change feed. The head is
 * the latest slot of the leader's slotSubscribe; it feeds metrics, the watchdog and /admin/status.
 */
import type { RedisClient } from '../../storage/redis.js'
import type { Logger } from 'pino'
import { duplicateRedis } from '../../storage/redis.js'
import { connectionNotReadyReason, watchdogMsFor, type ChainDriver, type ChainDriverDeps } from '../../subscriber/chain-runner.js'
import { ChainStatusPublisher } from '../../subscriber/chain-status.js'
import type { ChainLease } from '../../subscriber/lease.js'
import { WatchSet } from '../../subscriber/watch-set.js'
import { RpcSocket, type RpcSocketOptions } from '../rpc-socket.js'
import { GapMarkers } from './gap-recovery.js'
import { SolanaHttpClient, type SolanaRpc } from './http-client.js'
import { parseSolanaJson } from './json.js'
import { SolanaLeader } from './solana-leader.js'

export interface SolanaChainDeps extends ChainDriverDeps {
  /** Overrides for tests (small backoff and timeouts). */
  socket?: Partial<RpcSocketOptions>
  /** Gap recovery client; by default one over the chain's `http` endpoints, if it has any. */
  http?: SolanaRpc
  /** Delays between the attempts of one gap recovery. */
  gapRetryDelaysMs?: readonly number[]
}

const DEFAULT_GAP_RETRY_DELAYS_MS = [1_000, 5_000]

interface Leadership {
  leader: SolanaLeader
  watchSet: WatchSet
  reader: RedisClient
}

export class SolanaChain implements ChainDriver {
  readonly chainId: string
  readonly socket: RpcSocket
  readonly #d: SolanaChainDeps
  readonly #log: Logger
  readonly #http: SolanaRpc | undefined
  /** This chain's /admin/status entry (public so tests can flush it). */
  readonly status: ChainStatusPublisher
  #leadership: Leadership | undefined

  constructor(deps: SolanaChainDeps) {
    this.#d = deps
    this.chainId = deps.chain.id
    this.#log = deps.logger.child({ chain: deps.chain.id })
    this.socket = new RpcSocket({
      name: deps.chain.id, endpoints: deps.chain.ws, logger: this.#log, watchdogMs: watchdogMsFor(deps.chain),
      maxPayloadBytes: deps.chain.maxFrameBytes, parseMessage: parseSolanaJson, ...deps.socket,
    })
    this.#http = deps.http ??
      (deps.chain.http.length > 0 ? new SolanaHttpClient({ endpoints: deps.chain.http, logger: this.#log }) : undefined)
    this.status = new ChainStatusPublisher(deps.redis, deps.keys.chainStatus(deps.chain.id), {
      type: 'solana', connected: false, endpoint: this.socket.endpoint, reconnects: 0, subscriptions: 0,
    }, this.#log)
    this.socket.on('disconnected', ({ reason }) => {
      this.#d.metrics.wsReconnects.inc({ chain: this.chainId })
      if (!this.#leadership) return
      this.status.update(this.#connectionStatus())
      this.#log.warn({ reason }, 'connection lost: subscriptions will be renewed and gaps filled')
    })
    this.socket.on('connected', () => {
      if (this.#leadership) this.status.update(this.#connectionStatus())
    })
  }

  /** The leader's watch set and subscriptions, for tests that await a change (undefined on a standby). */
  get watchSet(): WatchSet | undefined {
    return this.#leadership?.watchSet
  }

  get leader(): SolanaLeader | undefined {
    return this.#leadership?.leader
  }

  start(): void {
    this.socket.start()
  }

  notReadyReason(): string | undefined {
    return connectionNotReadyReason(this.chainId, this.socket)
  }

  #connectionStatus() {
    return {
      connected: this.socket.connected,
      endpoint: this.socket.endpoint,
      reconnects: this.socket.reconnects,
      subscriptions: this.#leadership?.leader.subscriptionCount ?? 0,
    }
  }

  async lead(lease: ChainLease, onLeaseLost: () => void): Promise<void> {
    const { chain, redis, keys, store } = this.#d
    const leader = new SolanaLeader({
      chain, socket: this.socket, http: this.#http, markers: new GapMarkers(redis, keys, chain.id, lease), watches: this.#d.watches,
      deliveryQueue: this.#d.deliveryQueue, metrics: this.#d.metrics, logger: this.#log,
      gapRetryDelaysMs: this.#d.gapRetryDelaysMs ?? DEFAULT_GAP_RETRY_DELAYS_MS,
      onHead: (slot) => this.#onHead(slot),
      onSubscriptionsChanged: () => this.status.update({ subscriptions: leader.subscriptionCount }),
      onLeaseLost,
    })
    const reader = duplicateRedis(redis, this.#log, 'watch changes')
    const watchSet = new WatchSet({ store, reader, chain: chain.id, chainType: 'solana', logger: this.#log, sink: leader })
    this.#leadership = { leader, watchSet, reader }
    await watchSet.start()
    leader.begin()
    this.status.update(this.#connectionStatus())
    await this.status.flush()
  }

  #onHead(slot: number): void {
    this.socket.touch()
    this.#d.metrics.chainHead.set({ chain: this.chainId }, slot)
    this.status.update({ headNumber: slot, lastHeadAt: new Date().toISOString() })
  }

  async stopLeading(): Promise<void> {
    const l = this.#leadership
    if (!l) return
    this.#leadership = undefined
    await l.watchSet.stop()
    await l.leader.stop()
    l.reader.disconnect()
    this.status.update({ connected: false, subscriptions: 0 })
    await this.status.flush()
  }

  async close(): Promise<void> {
    await this.stopLeading()
    await this.socket.close()
  }
}
