/**
 * Replays (POST /watches/:id/replay, README, "API tour") and `fromBlock` backfills (see
 * replay-requests.ts): requests arrive on the chain's replay stream; the
 * leader scans the range again for that one watch and queues every match with the replayId, so
 * each goes out again under the `webhook-id` it had. Only blocks already confirmed for the watch
 * are scanned (newer ones are still ahead of the follower, which delivers them normally).
 * The position in the stream is kept beside the cursor, so a new leader goes on from there.
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { changeAddresses } from '../../api/watch-input.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { parseReplayRequest, type ReplayRequest } from '../../delivery/replay-requests.js'
import type { Watch } from '../../domain/watch-types.js'
import type { WatchStore } from '../../storage/watch-store.js'
import { mapBounded } from '../../domain/map-bounded.js'
import { readBlockData, type Cursor } from './block-follower.js'
import type { EvmNode } from './evm-node.js'
import { EvmWatchIndex } from './watch-index.js'

const POSITION_FIELD = 'replayPosition'
const CHUNK_BLOCKS = 50
const FETCH_CONCURRENCY = 4
/** Finished request ids remembered for `handled` (a caller asks soon after its request). */
const HANDLED_KEPT = 100

export interface ReplayDeps {
  chain: string
  defaultConfirmations: number
  /** A connection of its own (XREAD BLOCK). */
  reader: Redis
  redis: Redis
  streamKey: string
  /** The cursor hash, where the stream position is kept too. */
  cursorKey: string
  store: WatchStore
  node: EvmNode
  /** Resolves once the follower's saved cursor is at `number` or beyond (replays scan only what it has passed). */
  cursor(number: number): Promise<Cursor>
  /** Queues matches; with a replayId they are sent again, without one only new ones are (a backfill). */
  enqueue(events: MatchedEvent[], replayId: string | undefined): Promise<void>
  logger: Logger
}

export class ReplayConsumer {
  readonly #d: ReplayDeps
  readonly #abort = new AbortController()
  readonly #aborted = new Promise<undefined>((resolve) => this.#abort.signal.addEventListener('abort', () => resolve(undefined)))
  #loop: Promise<void> | undefined
  readonly #handled: string[] = []
  readonly #waiters = new Map<string, (() => void)[]>()

  constructor(deps: ReplayDeps) {
    this.#d = deps
  }

  /** Resolves once this consumer has handled the request (tests, and anyone awaiting a backfill). */
  handled(replayId: string): Promise<void> {
    if (this.#handled.includes(replayId)) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.set(replayId, [...(this.#waiters.get(replayId) ?? []), resolve]))
  }

  #markHandled(replayId: string): void {
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

  async #run(): Promise<void> {
    let position: string | undefined
    while (!this.#abort.signal.aborted) {
      try {
        position ??= (await this.#d.redis.hget(this.#d.cursorKey, POSITION_FIELD)) ?? '0-0'
        const reply = (await this.#d.reader.xread('COUNT', 10, 'BLOCK', 500, 'STREAMS', this.#d.streamKey, position)) as
          | [string, [string, string[]][]][] | null
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          if (this.#abort.signal.aborted) return
          const request = parseReplayRequest(fields)
          if (request) await this.#replay(request)
          else this.#d.logger.warn({ entry: id }, 'malformed replay request skipped')
          if (this.#abort.signal.aborted) return // cut short: the next leader does it again
          position = id
          await this.#d.redis.hset(this.#d.cursorKey, POSITION_FIELD, position)
          if (request) this.#markHandled(request.replayId)
        }
      } catch (err) {
        if (this.#abort.signal.aborted) return
        this.#d.logger.warn({ err }, 'replay failed, retrying')
        await new Promise((resolve) => setTimeout(resolve, 1000).unref())
      }
    }
  }

  async #replay(request: ReplayRequest): Promise<void> {
    const watch = await this.#d.store.get(request.watchId)
    if (!watch || watch.chain !== this.#d.chain) {
      this.#d.logger.info({ replayId: request.replayId }, 'replay of a watch that is gone, skipped')
      return
    }
    const index = this.#indexOf(watch)
    // Matches the added addresses did not bring, left out of an address backfill.
    const addresses = request.backfill?.addresses
    const without = addresses ? this.#indexOf({ ...watch, filter: changeAddresses(watch, { remove: addresses }).filter } as Watch) : undefined
    const confirmations = index.confirmationsOf(watch)
    // A backfill waits for its range to be confirmed: the follower will not deliver those blocks.
    const cursor = await Promise.race([this.#d.cursor(request.backfill ? request.toBlock + confirmations : 0), this.#aborted])
    if (!cursor) return
    const toBlock = Math.min(request.toBlock, cursor.number - confirmations)
    const enqueueAs = request.backfill ? undefined : request.replayId
    let queued = 0
    for (let from = request.fromBlock; from <= toBlock && !this.#abort.signal.aborted; from += CHUNK_BLOCKS) {
      const numbers = Array.from({ length: Math.min(CHUNK_BLOCKS, toBlock - from + 1) }, (_, i) => from + i)
      const datas = await mapBounded(numbers, FETCH_CONCURRENCY, async (n) => {
        const block = await this.#d.node.blockByNumber(n, index.needsTransactions())
        return block ? readBlockData(this.#d.node, index, block) : undefined
      })
      const events = datas.flatMap((data) => {
        if (!data) return []
        const events = index.matchBlock(data, Date.now()).map((m) => m.event)
        if (!without) return events
        const known = new Set(without.matchBlock(data, Date.now()).map((m) => m.event.id))
        return events.filter((e) => !known.has(e.id))
      })
      if (events.length > 0) await this.#d.enqueue(events, enqueueAs)
      queued += events.length
    }
    this.#d.logger.info({ replayId: request.replayId, watchId: watch.id, fromBlock: request.fromBlock, toBlock, queued, backfill: request.backfill !== undefined }, 'replay done')
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
