/**
 * The block follower: an explicit state machine over the chain (after ponder's
 * sync-realtime). `wake()` (a head, a reconnect, a timer) runs one `sync`, never two at once.
 *
 * State: `cursor` = the last block whose ready events are all queued, and `window` = the recent
 * blocks up to the cursor, linked by parent hash, each with the `webhook-id`s it has emitted and
 * the matches still waiting for confirmations. The window (without the waiting matches, which are
 * re-matched from the node) is kept in Redis too, so a reorg noticed after a restart, even one
 * whose dropped blocks the node no longer serves, still retracts what they emitted.
 *
 * Each sync reads the head, then handles the blocks after the cursor in chunks, in order, with one
 * of three cases per block:
 * - `extend`: its parent is the cursor: match it, queue the events that are ready (confirmations
 *   0, and older blocks' events now deep enough), push it on the window;
 * - `reorg`: its parent is not the cursor (or the cursor is no longer canonical): pop window
 *   blocks until one is canonical again (the common ancestor), queueing `*.removed` for every
 *   event a dropped block emitted (built from its stored delivery record), then go on from the
 *   ancestor;
 * - `finalize`: blocks deeper than the window (max confirmations + a margin) leave it.
 *
 * Invariants: the cursor saved in Redis moves only after the events up to it are queued; queueing
 * is idempotent (the `webhook-id` is the job id), so any failure resets to the saved cursor and
 * does the work again. A confirmations-N event is queued only when its block is N deep (head -
 * number >= N) and still in the window, so it never reaches a watch from a dropped block.
 */
import type { Logger } from 'pino'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { BlockhookError, hasCode } from '../../domain/errors.js'
import { mapBounded } from '../../domain/map-bounded.js'
import type { Cursor } from '../../subscriber/cursor-store.js'
import type { EvmNode } from './evm-node.js'
import { removedEvent } from './payloads.js'
import { hexToNumber, type RpcBlock } from './rpc-types.js'
import type { BlockData, EvmMatch, EvmWatchIndex } from './watch-index.js'

export type { Cursor }

export interface CursorStore {
  load(): Promise<Cursor | undefined>
  /** Throws BH_LEASE_LOST when this process no longer holds the chain. */
  save(cursor: Cursor): Promise<void>
}

/** A window block as kept in Redis. */
export interface RecentBlock {
  number: number
  hash: string
  parentHash: string
  emitted: string[]
}

export interface RecentBlockStore {
  /** Every stored block, by hash. */
  load(): Promise<Map<string, RecentBlock>>
  /** Writes `blocks` (whole) and forgets the blocks `forget` names. */
  save(blocks: readonly RecentBlock[], forget: readonly string[]): Promise<void>
}

export interface FollowerDeps {
  chain: string
  node: EvmNode
  index: EvmWatchIndex
  cursors: CursorStore
  /** Queues events durably; resolves only once they are. */
  emit(events: MatchedEvent[]): Promise<void>
  recentBlocks: RecentBlockStore
  /** The events behind these `webhook-id`s, as stored when queued (missing ones left out). */
  emittedEvents(ids: readonly string[]): Promise<MatchedEvent[]>
  logger: Logger
  /** Called once when a cursor write finds the lease gone: the follower has stopped. */
  onLeaseLost(): void
  onHead?(head: Cursor): void
  now?: () => number
  /** Blocks handled per chunk of a catch-up (one queue write and one cursor write per chunk). */
  chunkBlocks?: number
  fetchConcurrency?: number
  /** Blocks kept beyond the deepest confirmations, for walking back on a reorg. */
  reorgMarginBlocks?: number
}

interface WindowBlock {
  number: number
  hash: string
  parentHash: string
  emitted: Set<string>
  /** Matches still waiting for their confirmations. */
  waiting: EvmMatch[]
}

const stored = (b: WindowBlock): RecentBlock =>
  ({ number: b.number, hash: b.hash, parentHash: b.parentHash, emitted: [...b.emitted] })

const RETRY_INITIAL_MS = 500
const RETRY_MAX_MS = 15_000

export class BlockFollower {
  readonly #d: Required<Omit<FollowerDeps, 'onHead'>> & Pick<FollowerDeps, 'onHead'>
  readonly #log: Logger
  #cursor: Cursor | undefined
  #window: WindowBlock[] = []
  /** Window changes not yet written to the recent-block store. */
  readonly #dirty = new Set<WindowBlock>()
  #forget: string[] = []
  #initialized = false
  #running: Promise<void> | undefined
  #again = false
  #stopped = false
  #failures = 0
  #retryTimer: NodeJS.Timeout | undefined
  #saved: Cursor | undefined
  readonly #waiters = new Set<{ number: number; resolve: (cursor: Cursor) => void }>()

  constructor(deps: FollowerDeps) {
    this.#d = { now: Date.now, chunkBlocks: 50, fetchConcurrency: 8, reorgMarginBlocks: 16, ...deps }
    this.#log = deps.logger
  }

  get cursor(): Cursor | undefined {
    return this.#cursor
  }

  /** Something may have happened on the chain: sync now, or right after the sync under way. */
  wake(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    clearTimeout(this.#retryTimer)
    this.#running = this.#run().finally(() => {
      this.#running = undefined
      if (this.#again && !this.#stopped) {
        this.#again = false
        this.wake()
      }
    })
  }

  /** Resolves once no sync is running and none will start. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#retryTimer)
    await this.#running
  }

  async #run(): Promise<void> {
    try {
      await this.#sync()
      this.#failures = 0
    } catch (err) {
      if (hasCode(err, 'BH_LEASE_LOST')) {
        this.#stopped = true
        this.#log.warn('lease lost while writing the cursor, stopping')
        this.#d.onLeaseLost()
        return
      }
      // Back to the saved cursor: whatever was matched but not saved is done again (idempotently).
      this.#initialized = false
      this.#failures++
      const delayMs = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** (this.#failures - 1))
      const level = hasCode(err, 'BH_RPC_DISCONNECTED') ? 'info' : 'warn'
      this.#log[level]({ err, delayMs }, 'block sync failed, retrying from the saved cursor')
      if (!this.#stopped) {
        this.#retryTimer = setTimeout(() => this.wake(), delayMs)
        this.#retryTimer.unref()
      }
    }
  }

  #windowSize(): number {
    return this.#d.index.maxConfirmations() + this.#d.reorgMarginBlocks
  }

  // --- init: the saved cursor and the window behind it ------------------------------------------

  async #init(): Promise<void> {
    const saved = await this.#d.cursors.load()
    this.#window = []
    this.#dirty.clear()
    this.#forget = []
    if (!saved) {
      // First start: begin at the head, i.e. with the head block itself.
      const head = await this.#d.node.header('latest')
      if (!head) throw new BlockhookError('BH_NODE_BAD_ANSWER', 'the node has no latest block')
      this.#cursor = { number: hexToNumber(head.number) - 1, hash: head.parentHash }
      this.#log.info({ head: hexToNumber(head.number) }, 'no cursor yet: starting at the head')
    } else {
      this.#cursor = saved
      this.#markSaved(saved)
      await this.#restoreWindow(saved)
      this.#log.info({ cursor: saved.number, window: this.#window.length }, 'resuming from the saved cursor')
    }
    this.#initialized = true
  }

  /**
   * The stored blocks linked back from the cursor. Those the node still has are re-matched to
   * restore the events still waiting for confirmations (never queued before the stop); a block it
   * no longer has is off the chain, and its waiting events are void. Stored blocks not linked to
   * the cursor (written after it by a run that stopped before moving it) are forgotten.
   */
  async #restoreWindow(cursor: Cursor): Promise<void> {
    const stored = await this.#d.recentBlocks.load()
    const chain: RecentBlock[] = []
    for (let at = stored.get(cursor.hash); at && chain.length < this.#windowSize(); at = stored.get(at.parentHash)) {
      chain.unshift(at)
    }
    const linked = new Set(chain.map((b) => b.hash))
    this.#forget = [...stored.keys()].filter((hash) => !linked.has(hash))
    const deferred = this.#d.index.maxConfirmations() > 0
    const datas = deferred
      ? await this.#mapBounded(chain, async (b) => {
        const block = await this.#d.node.blockByHash(b.hash, this.#d.index.needsTransactions())
        return block ? this.#complete(block) : undefined
      })
      : []
    chain.forEach((b, i) => {
      const data = datas[i]
      const depth = cursor.number - b.number
      const waiting = data
        ? this.#d.index.matchBlock(data, this.#d.now()).filter((m) => m.confirmations > depth && !b.emitted.includes(m.event.id))
        : []
      this.#window.push({ number: b.number, hash: b.hash, parentHash: b.parentHash, emitted: new Set(b.emitted), waiting })
    })
  }

  // --- sync ---------------------------------------------------------------------------------------

  async #sync(): Promise<void> {
    if (!this.#initialized) await this.#init()
    // The next chunk is read from the node while the current one is matched and queued.
    let prefetched: { from: number; datas: Promise<(BlockData | undefined)[]> } | undefined
    for (;;) {
      if (this.#stopped) return
      const head = await this.#d.node.header('latest')
      if (!head) return
      const headNumber = hexToNumber(head.number)
      this.#d.onHead?.({ number: headNumber, hash: head.hash })
      const cursor = this.#cursor!
      if (cursor.number >= headNumber) {
        if (cursor.number === headNumber && head.hash === cursor.hash) return
        const canonical = cursor.number === headNumber ? head : await this.#d.node.header(cursor.number)
        if (canonical?.hash === cursor.hash) return
        await this.#reorg()
        continue
      }
      const from = cursor.number + 1
      const datas = prefetched?.from === from ? await prefetched.datas : await this.#readRange(from, Math.min(headNumber, from + this.#d.chunkBlocks - 1))
      prefetched = undefined
      if (!datas[0]) return // the node has not got the block it called its head: wait for the next wake
      const next = from + datas.length
      if (datas.length > 0 && next <= headNumber) {
        prefetched = { from: next, datas: this.#readRange(next, Math.min(headNumber, next + this.#d.chunkBlocks - 1)) }
        prefetched.datas.catch(() => undefined) // awaited (and its error seen) on the next pass, or dropped after a reorg
      }
      const events: MatchedEvent[] = []
      let reorged = false
      for (const data of datas) {
        if (!data) break // the head moved back under us: the next pass sees it
        if (data.block.parentHash !== this.#cursor!.hash) {
          reorged = true
          break
        }
        events.push(...this.#extend(data))
      }
      await this.#flush(events)
      if (reorged || datas.some((d) => d === undefined)) {
        prefetched = undefined
        if (reorged) await this.#reorg()
      }
    }
  }

  #readRange(from: number, to: number): Promise<(BlockData | undefined)[]> {
    const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i)
    return this.#mapBounded(numbers, async (n) => {
      const block = await this.#d.node.blockByNumber(n, this.#d.index.needsTransactions())
      return block ? this.#complete(block) : undefined
    })
  }

  #complete(block: RpcBlock): Promise<BlockData> {
    return readBlockData(this.#d.node, this.#d.index, block)
  }

  /** Case `extend`; returns the events now ready. Updates the in-memory cursor only. */
  #extend(data: BlockData): MatchedEvent[] {
    const number = hexToNumber(data.block.number)
    const matches = this.#d.index.matchBlock(data, this.#d.now())
    const ready = matches.filter((m) => m.confirmations === 0).map((m) => m.event)
    const waiting = matches.filter((m) => m.confirmations > 0)
    const added: WindowBlock = {
      number, hash: data.block.hash, parentHash: data.block.parentHash, emitted: new Set(ready.map((e) => e.id)), waiting,
    }
    this.#window.push(added)
    this.#dirty.add(added)
    this.#cursor = { number, hash: data.block.hash }
    for (const block of this.#window) {
      if (block.waiting.length === 0) continue
      const depth = number - block.number
      block.waiting = block.waiting.filter((m) => {
        if (m.confirmations > depth) return true
        // Only while the watch is still active: a paused or deleted watch gets nothing late.
        if (this.#d.index.get(m.event.watchId)) {
          ready.push(m.event)
          block.emitted.add(m.event.id)
          this.#dirty.add(block)
        }
        return false
      })
    }
    // Case `finalize`.
    const keep = this.#windowSize()
    while (this.#window.length > 0 && this.#window[0]!.number <= number - keep) this.#drop(this.#window.shift()!)
    return ready
  }

  #drop(block: WindowBlock): void {
    this.#dirty.delete(block)
    this.#forget.push(block.hash)
  }

  /** Queues the events, then records the window, then moves the cursor: in that order. */
  async #flush(events: MatchedEvent[]): Promise<void> {
    const cursor = this.#cursor!
    if (events.length === 0 && this.#dirty.size === 0 && this.#forget.length === 0 && cursor.hash === this.#saved?.hash) return
    if (events.length > 0) await this.#d.emit(events)
    if (this.#dirty.size > 0 || this.#forget.length > 0) {
      await this.#d.recentBlocks.save([...this.#dirty].map(stored), this.#forget)
      this.#dirty.clear()
      this.#forget = []
    }
    await this.#d.cursors.save(cursor)
    this.#markSaved(cursor)
  }

  #markSaved(cursor: Cursor): void {
    this.#saved = cursor
    for (const waiter of this.#waiters) {
      if (cursor.number >= waiter.number) {
        this.#waiters.delete(waiter)
        waiter.resolve(cursor)
      }
    }
  }

  /** Resolves once the saved cursor is at `number` or beyond (shutdown drains and tests await it). */
  reached(number: number): Promise<Cursor> {
    if (this.#saved && this.#saved.number >= number) return Promise.resolve(this.#saved)
    return new Promise((resolve) => this.#waiters.add({ number, resolve }))
  }

  /** Case `reorg`: walk back to the common ancestor, retracting what dropped blocks delivered. */
  async #reorg(): Promise<void> {
    const dropped: WindowBlock[] = []
    let ancestorFound = false
    while (this.#window.length > 0) {
      const tip = this.#window[this.#window.length - 1]!
      const canonical = await this.#d.node.header(tip.number)
      if (canonical?.hash === tip.hash) {
        ancestorFound = true
        break
      }
      dropped.push(tip)
      this.#drop(this.#window.pop()!)
      this.#cursor = { number: tip.number - 1, hash: tip.parentHash }
    }
    if (!ancestorFound) {
      // Deeper than the blocks kept: nothing left to retract from; continue on the canonical chain.
      const at = this.#cursor!.number
      const canonical = await this.#d.node.header(at)
      if (!canonical) throw new BlockhookError('BH_NODE_BAD_ANSWER', `the node has no block ${at} after a reorg`)
      this.#log.error({ at, dropped: dropped.length }, 'reorg deeper than the blocks kept: older events cannot be retracted')
      this.#cursor = { number: at, hash: canonical.hash }
    }
    const emittedIds = dropped.flatMap((b) => [...b.emitted])
    const emitted = emittedIds.length > 0 ? await this.#d.emittedEvents(emittedIds) : []
    const now = this.#d.now()
    const removals = emitted.map((e) => removedEvent(e, now)).filter((e): e is MatchedEvent => e !== undefined)
    this.#log.warn({ dropped: dropped.map((b) => b.number), retracted: removals.length, ancestor: this.#cursor!.number }, 'reorg')
    await this.#flush(removals)
  }

  #mapBounded<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    return mapBounded(items, this.#d.fetchConcurrency, fn)
  }
}

/** Reads what matching needs beside the block: its logs, and receipts only if a watch needs them. */
export async function readBlockData(node: EvmNode, index: EvmWatchIndex, block: RpcBlock): Promise<BlockData> {
  const needing = index.transactionsNeedingReceipts(block)
  const [logs, receipts] = await Promise.all([
    node.logsOf(block.hash),
    needing.length > 0 ? node.receipts(block.hash, needing) : Promise.resolve(undefined),
  ])
  return { block, logs, ...(receipts ? { receipts } : {}) }
}
