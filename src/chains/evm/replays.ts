/**
 * Replays (POST /watches/:id/replay, README, "Replays") and `fromBlock` backfills (see
 * replay-requests.ts), worked by the chain's leader: it turns round the tenants with queued
 * requests, and at each turn scans one chunk of blocks of that tenant's first request for that
 * one watch, queues every match with the replayId (so each goes out again under the
 * `webhook-id` it had), then records the request's progress. A tenant with a hundred long
 * replays therefore holds up another tenant's short one by one chunk per turn.
 * Only blocks already confirmed for the watch are scanned (newer ones are still ahead of the
 * follower, which delivers them normally); a backfill waits for each of its blocks instead.
 * Progress is in Redis and only moves forward, so a new leader goes on from the last chunk
 * recorded, and a chunk done twice queues nothing twice.
 */
import type { RedisClient } from '../../storage/redis.js'
import type { Logger } from 'pino'
import { changeAddresses } from '../../api/watch-input.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { REPLAY_CHUNK_BLOCKS, type ReplayProgress, type ReplayQueue } from '../../delivery/replay-requests.js'
import type { Watch } from '../../domain/watch-types.js'
import type { WatchStore } from '../../storage/watch-store.js'
import { mapBounded } from '../../domain/map-bounded.js'
import { readBlockData, type Cursor } from './block-follower.js'
import type { EvmNode } from './evm-node.js'
import { EvmWatchIndex } from './watch-index.js'

const FETCH_CONCURRENCY = 4
/** Finished request ids remembered for `handled` (a caller asks soon after its request). */
const HANDLED_KEPT = 100
/** Requests whose watch index is kept between their turns (rebuilt when evicted). */
const INDEXES_KEPT = 32
/** How long the queue's blocking read waits for a first request, and a round of waiting backfills pauses. */
const IDLE_WAIT_SEC = 0.5

export interface ReplayDeps {
  chain: string
  defaultConfirmations: number
  /** A connection of its own (the blocking read of the tenants' list). */
  reader: RedisClient
  requests: ReplayQueue
  store: WatchStore
  node: EvmNode
  /** Resolves once the follower's saved cursor is at `number` or beyond (replays scan only what it has passed). */
  cursor(number: number): Promise<Cursor>
  /** Queues matches; with a replayId they are sent again, without one only new ones are (a backfill). */
  enqueue(events: MatchedEvent[], replayId: string | undefined): Promise<void>
  logger: Logger
}

/** What a request's turns match with: built from the watch at the first turn. */
interface Matching {
  index: EvmWatchIndex
  /** Matches the added addresses did not bring, left out of an address backfill. */
  without: EvmWatchIndex | undefined
  confirmations: number
}

export class ReplayConsumer {
  readonly #d: ReplayDeps
  readonly #abort = new AbortController()
  readonly #aborted = new Promise<undefined>((resolve) => this.#abort.signal.addEventListener('abort', () => resolve(undefined)))
  #loop: Promise<void> | undefined
  readonly #handled: string[] = []
  readonly #waiters = new Map<string, (() => void)[]>()
  readonly #matching = new Map<string, Matching>()

  constructor(deps: ReplayDeps) {
    this.#d = deps
  }

  /** Resolves once this consumer has completed the request (tests, and anyone awaiting a backfill). */
  handled(replayId: string): Promise<void> {
    if (this.#handled.includes(replayId)) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.set(replayId, [...(this.#waiters.get(replayId) ?? []), resolve]))
  }

  #markHandled(replayId: string): void {
    this.#matching.delete(replayId)
    this.#handled.push(replayId)
    if (this.#handled.length > HANDLED_KEPT) this.#handled.shift()
    for (const resolve of this.#waiters.get(replayId) ?? []) resolve()
    this.#waiters.delete(replayId)
  }

  start(): void {
    this.#loop = this.#run()
  }

  async stop(): Promise<void> {
    this.#abort.abort()
    await this.#loop
  }

  async #pause(ms: number): Promise<void> {
    await Promise.race([new Promise((resolve) => setTimeout(resolve, ms).unref()), this.#aborted])
  }

  async #run(): Promise<void> {
    // Turns in a row that moved nothing (backfills waiting for confirmations): a whole round of them pauses.
    let idleTurns = 0
    while (!this.#abort.signal.aborted) {
      try {
        const turn = await this.#d.requests.nextTurn(this.#d.reader, this.#d.chain, IDLE_WAIT_SEC)
        if (!turn?.replayId) continue
        const moved = await this.#turn(turn.replayId, turn.tenantId)
        idleTurns = moved ? 0 : idleTurns + 1
        if (idleTurns >= turn.tenants) {
          idleTurns = 0
          await this.#pause(IDLE_WAIT_SEC * 1000)
        }
      } catch (err) {
        if (this.#abort.signal.aborted) return
        this.#d.logger.warn({ err }, 'replay turn failed, retrying')
        await this.#pause(1000)
      }
    }
  }

  /** One chunk of the request; false when it had to wait (a backfill whose next block is not confirmed yet). */
  async #turn(replayId: string, tenantId: string): Promise<boolean> {
    const request = await this.#d.requests.get(replayId)
    if (!request) {
      this.#d.logger.warn({ replayId }, 'malformed replay request skipped')
      await this.#d.requests.advance({ replayId, tenantId, chain: this.#d.chain }, 0, 0, true)
      return true
    }
    const matching = await this.#matchingOf(request)
    if (!matching) {
      this.#d.logger.info({ replayId }, 'replay of a watch that is gone, skipped')
      await this.#finish(request, request.nextBlock, 0)
      return true
    }
    const cursor = await Promise.race([this.#d.cursor(0), this.#aborted])
    if (!cursor) return true
    const confirmed = cursor.number - matching.confirmations
    const from = request.nextBlock
    // A backfill's blocks are the follower's to skip, so it waits for them; a replay leaves the unconfirmed ones to the follower.
    const last = request.backfill ? request.toBlock : Math.min(request.toBlock, confirmed)
    if (from > last) {
      await this.#finish(request, from, 0)
      return true
    }
    if (from > confirmed) return false
    const to = Math.min(from + REPLAY_CHUNK_BLOCKS - 1, last, confirmed)
    const events = await this.#scan(matching, from, to)
    if (events.length > 0) await this.#d.enqueue(events, request.backfill ? undefined : request.replayId)
    if (to === last) await this.#finish(request, to + 1, events.length)
    else await this.#d.requests.advance(request, to + 1, events.length, false)
    return true
  }

  async #finish(request: ReplayProgress, nextBlock: number, events: number): Promise<void> {
    await this.#d.requests.advance(request, nextBlock, events, true)
    const { replayId, watchId, fromBlock, toBlock } = request
    this.#d.logger.info({ replayId, watchId, fromBlock, toBlock, scannedTo: nextBlock - 1, backfill: request.backfill !== undefined }, 'replay done')
    this.#markHandled(replayId)
  }

  async #scan(matching: Matching, from: number, to: number): Promise<MatchedEvent[]> {
    const { index, without } = matching
    const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i)
    const datas = await mapBounded(numbers, FETCH_CONCURRENCY, async (n) => {
      const block = await this.#d.node.blockByNumber(n, index.needsTransactions())
      return block ? readBlockData(this.#d.node, index, block) : undefined
    })
    return datas.flatMap((data) => {
      if (!data) return []
      const events = index.matchBlock(data, Date.now()).map((m) => m.event)
      if (!without) return events
      const known = new Set(without.matchBlock(data, Date.now()).map((m) => m.event.id))
      return events.filter((e) => !known.has(e.id))
    })
  }

  /** The request's matching, kept between its turns; undefined when its watch is gone. */
  async #matchingOf(request: ReplayProgress): Promise<Matching | undefined> {
    const kept = this.#matching.get(request.replayId)
    if (kept) return kept
    const watch = await this.#d.store.get(request.watchId)
    if (!watch || watch.chain !== this.#d.chain) return undefined
    const index = this.#indexOf(watch)
    const addresses = request.backfill?.addresses
    const without = addresses ? this.#indexOf({ ...watch, filter: changeAddresses(watch, { remove: addresses }).filter } as Watch) : undefined
    const matching = { index, without, confirmations: index.confirmationsOf(watch) }
    this.#matching.set(request.replayId, matching)
    if (this.#matching.size > INDEXES_KEPT) this.#matching.delete(this.#matching.keys().next().value!)
    return matching
  }

  /**
   * An index of the watch alone, as it matches now but from any block (its `startBlock` is for
   * live matching) and whatever its status: the user asked for this range explicitly.
   */
  #indexOf(watch: Watch): EvmWatchIndex {
    const index = new EvmWatchIndex(this.#d.chain, this.#d.defaultConfirmations)
    const { startBlock: _startBlock, ...anyBlock } = watch
    index.upsert({ ...anyBlock, status: 'active' } as Watch)
    return index
  }
}
