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
 * Each sync first checks, once per connection, that the node serves the chain the cursor was
 * built on (chain id and genesis hash, kept with the cursor). Then it takes the head (the one a
 * `newHeads` notification brought, or else reads it) and lets `reconcile` (reconcile.ts, pure)
 * name the case:
 * - `extend`: the blocks after the cursor, in chunks, in order: match each, queue the events that
 *   are ready (confirmations 0, and older blocks' events now deep enough), push it on the window;
 * - `reorg`: the node has shown, by hash, other blocks at the heights of ours down to a common
 *   ancestor: pop those, queueing `*.removed` for every event they emitted (built from their
 *   stored delivery records), then go on from the ancestor;
 * - `node-behind`: wait for the next head (and fail over if it lasts), retracting nothing;
 * - `node-inconsistent`: back off with jitter and read again (another endpoint if there is one);
 * - `finalize`: blocks deeper than the window (max confirmations + a margin) leave it.
 * docs/reorgs.md tells the cases apart for users.
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
import type { Cursor, CursorChain } from '../../subscriber/cursor-store.js'
import type { BlockHeaderRef, ChainIdentity, EvmNode } from './evm-node.js'
import { removedEvent } from './payloads.js'
import { reconcile, type HeaderAnswer, type Reconcile } from './reconcile.js'
import { hexToNumber, type RpcBlock } from './rpc-types.js'
import type { BlockData, EvmMatch, EvmWatchIndex } from './watch-index.js'

export type { Cursor }

export interface CursorStore {
  load(): Promise<Cursor | undefined>
  /** The chain the saved cursor was built on, if recorded. */
  loadChain(): Promise<CursorChain | undefined>
  /** Throws BH_LEASE_LOST when this process no longer holds the chain. */
  save(cursor: Cursor, chain?: CursorChain): Promise<void>
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
  /** `blockhook dev`: a node on another chain is a new dev chain: start again from its head. */
  newChainEachRun?: boolean
  /** Moves to the next endpoint (set only when there is one). */
  failover?(reason: string): void
}

/** Node-behind syncs in a row after which the next endpoint is tried. */
const BEHIND_SYNCS_BEFORE_FAILOVER = 3
const toAnswer = (h: BlockHeaderRef): HeaderAnswer => ({ number: hexToNumber(h.number), hash: h.hash, parentHash: h.parentHash })

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
  readonly #d: Required<Omit<FollowerDeps, 'onHead' | 'failover'>> & Pick<FollowerDeps, 'onHead' | 'failover'>
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
  #lastFailure: string | undefined
  /** Checked on each connection before anything is read. */
  #chainChecked = false
  #chain: ChainIdentity | undefined
  #savedChain: ChainIdentity | undefined
  #differentChain: string | undefined
  /** The saved cursor is of another (dev) chain: start again from the head. */
  #startOver = false
  /** The node-behind episode under way, logged once, and its length in syncs. */
  #behind: { reason: string; syncs: number } | undefined
  #retryTimer: NodeJS.Timeout | undefined
  /**
   * The head a `newHeads` notification brought, newer than any head read so far (notifications and
   * answers come in order on the one connection): a sync takes it instead of asking for the head.
   */
  #notifiedHead: BlockHeaderRef | undefined
  #saved: Cursor | undefined
  readonly #waiters = new Set<{ number: number; resolve: (cursor: Cursor) => void }>()

  constructor(deps: FollowerDeps) {
    this.#d = { now: Date.now, chunkBlocks: 50, fetchConcurrency: 8, reorgMarginBlocks: 16, newChainEachRun: false, ...deps }
    this.#log = deps.logger
  }

  get cursor(): Cursor | undefined {
    return this.#cursor
  }

  /** Why this chain is not followed: the node serves another chain than the cursor's. */
  get differentChain(): string | undefined {
    return this.#differentChain
  }

  /** A new connection (maybe another node): check its chain again, then catch up from the cursor. */
  connectionChanged(): void {
    this.#chainChecked = false
    // Maybe another node: what the last one notified says nothing about this one.
    this.#notifiedHead = undefined
    this.wake(true)
  }

  /**
   * Something may have happened on the chain: sync now, or right after the sync under way. While
   * backing off after a failure only `force` (a new connection) cuts the wait short.
   */
  wake(force = false): void {
    if (this.#stopped) return
    if (!force && this.#retryTimer && this.#failures > 0) return
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

  /**
   * The node's new head, from its `newHeads` notification: at the tip the block is then read by
   * hash together with its logs, and the head is not asked for again.
   */
  newHead(head: BlockHeaderRef): void {
    this.#notifiedHead = head
    this.wake()
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
      this.#lastFailure = undefined
      this.#retryTimer = undefined
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
      // Equal jitter, so that many chains (or processes) behind one provider do not retry in step.
      const ceiling = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** Math.min(this.#failures - 1, 30))
      const delayMs = Math.round(ceiling / 2 + (ceiling / 2) * Math.random())
      const message = err instanceof Error ? err.message : String(err)
      // Once per episode: the same failure again is only a debug line.
      const level = hasCode(err, 'BH_RPC_DISCONNECTED') ? 'info' : message === this.#lastFailure ? 'debug' : 'warn'
      this.#lastFailure = message
      this.#log[level]({ err, delayMs, failures: this.#failures }, 'block sync failed, retrying from the saved cursor')
      if (hasCode(err, 'BH_NODE_BAD_ANSWER') && this.#failures >= 2) this.#d.failover?.(message)
      if (!this.#stopped) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined
          this.wake(true)
        }, delayMs)
        this.#retryTimer.unref()
      }
    }
  }

  #windowSize(): number {
    return this.#d.index.maxConfirmations() + this.#d.reorgMarginBlocks
  }

  // --- init: the saved cursor and the window behind it ------------------------------------------

  async #init(): Promise<void> {
    const saved = this.#startOver ? undefined : await this.#d.cursors.load()
    this.#window = []
    this.#dirty.clear()
    this.#forget = []
    if (this.#startOver) {
      // The old chain's blocks mean nothing on the new one.
      this.#forget = [...(await this.#d.recentBlocks.load()).keys()]
      this.#saved = undefined
      this.#startOver = false
    }
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
    if (!this.#chainChecked) await this.#checkChain()
    if (this.#differentChain) return
    if (!this.#initialized) await this.#init()
    // The next chunk is read from the node while the current one is matched and queued.
    let prefetched: { from: number; datas: Promise<(BlockData | undefined)[]> } | undefined
    for (;;) {
      if (this.#stopped) return
      const raw = this.#takeNotifiedHead() ?? await this.#readHead()
      const head = raw ? toAnswer(raw) : null
      if (head) this.#d.onHead?.({ number: head.number, hash: head.hash })
      const decision = await this.#reconcile(head)
      if (decision.case !== 'node-behind' && this.#behind) {
        this.#log.info({ syncs: this.#behind.syncs }, 'the node has caught up')
        this.#behind = undefined
      }
      switch (decision.case) {
        case 'idle':
          return
        case 'node-behind':
          this.#nodeBehind(decision.reason)
          return
        case 'node-inconsistent':
          throw new BlockhookError('BH_NODE_BAD_ANSWER', `the node contradicts itself: ${decision.reason}`)
        case 'reorg':
          prefetched = undefined
          await this.#reorg(decision)
          continue
        case 'extend':
          break
        default:
          throw new BlockhookError('BH_NODE_BAD_ANSWER', `unexpected reconcile step ${decision.case}`)
      }
      const headNumber = head!.number
      const from = this.#cursor!.number + 1
      const datas = prefetched?.from === from ? await prefetched.datas : await this.#readRange(from, Math.min(headNumber, from + this.#d.chunkBlocks - 1), head!)
      prefetched = undefined
      const next = from + datas.length
      if (datas.length > 0 && next <= headNumber) {
        prefetched = { from: next, datas: this.#readRange(next, Math.min(headNumber, next + this.#d.chunkBlocks - 1), head!) }
        prefetched.datas.catch(() => undefined) // awaited (and its error seen) on the next pass, or dropped
      }
      const events: MatchedEvent[] = []
      let extended = 0
      for (const [i, data] of datas.entries()) {
        // Anything else (a block gone, another parent) is for the next reconcile to name.
        if (!data || hexToNumber(data.block.number) !== from + i || data.block.parentHash !== this.#cursor!.hash) break
        events.push(...this.#extend(data))
        extended++
      }
      await this.#flush(events)
      if (extended < datas.length) {
        prefetched = undefined
        // The header said extend but the full block does not: never loop on that without a pause.
        if (extended === 0) throw new BlockhookError('BH_NODE_BAD_ANSWER', `the node's block ${from} does not match its header`)
      }
    }
  }

  /** A notified head above the cursor (one at or below it may be older than what was read since). */
  #takeNotifiedHead(): BlockHeaderRef | undefined {
    const head = this.#notifiedHead
    this.#notifiedHead = undefined
    return head && hexToNumber(head.number) > this.#cursor!.number ? head : undefined
  }

  async #readHead(): Promise<BlockHeaderRef | undefined> {
    const head = await this.#d.node.header('latest')
    // A notification that came before this answer is older than it.
    this.#notifiedHead = undefined
    return head
  }

  /** Asks the node what `reconcile` needs until it names a case. */
  async #reconcile(head: HeaderAnswer | null): Promise<Reconcile> {
    // The head is the node's block at its height: at the tip nothing more needs asking.
    const byNumber = new Map<number, HeaderAnswer | null>(head ? [[head.number, head]] : [])
    const byHash = new Map<string, HeaderAnswer | null>()
    for (;;) {
      const decision = reconcile({ cursor: this.#cursor!, window: this.#window, head, byNumber, byHash })
      if (decision.case === 'need-number') {
        const h = await this.#d.node.header(decision.number)
        byNumber.set(decision.number, h ? toAnswer(h) : null)
      } else if (decision.case === 'need-hash') {
        const h = await this.#d.node.headerByHash(decision.hash)
        byHash.set(decision.hash, h ? toAnswer(h) : null)
      } else {
        return decision
      }
    }
  }

  #nodeBehind(reason: string): void {
    if (!this.#behind) {
      this.#behind = { reason, syncs: 0 }
      this.#log.warn({ reason, cursor: this.#cursor!.number }, 'the node is behind blockhook: waiting for it, retracting nothing')
    }
    if (++this.#behind.syncs % BEHIND_SYNCS_BEFORE_FAILOVER === 0) this.#d.failover?.(`the node is behind: ${reason}`)
  }

  /** Different chain: the node's chain id or genesis hash is not the one the cursor was built on. */
  async #checkChain(): Promise<void> {
    const identity = await this.#d.node.identity()
    const saved = await this.#d.cursors.loadChain()
    if (saved && (saved.chainId !== identity.chainId || saved.genesisHash !== identity.genesisHash)) {
      const detail = { node: identity, cursor: saved }
      if (this.#d.newChainEachRun) {
        this.#log.warn(detail, 'the node serves a new chain (dev): starting again from its head')
        this.#startOver = true
        this.#initialized = false
      } else {
        const reason = `chain ${this.#d.chain}: the node serves chain id ${identity.chainId} with genesis ${identity.genesisHash}, `
          + `but the cursor was built on chain id ${saved.chainId} with genesis ${saved.genesisHash}: not following`
        if (this.#differentChain !== reason) this.#log.error(detail, reason)
        this.#differentChain = reason
        this.#chainChecked = true
        this.#d.failover?.('the node serves another chain')
        return
      }
    }
    if (this.#differentChain) this.#log.info(identity, 'the node serves the cursor\'s chain again: following')
    this.#differentChain = undefined
    this.#chain = identity
    this.#chainChecked = true
  }

  /** The head's block is read by its hash, together with its logs: one round trip at the tip. */
  #readRange(from: number, to: number, head: HeaderAnswer): Promise<(BlockData | undefined)[]> {
    const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i)
    return this.#mapBounded(numbers, async (n) => {
      if (n === head.number) return readBlockDataByHash(this.#d.node, this.#d.index, head.hash)
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
    if (events.length === 0 && this.#dirty.size === 0 && this.#forget.length === 0 && cursor.hash === this.#saved?.hash && !this.#chainUnsaved()) return
    if (events.length > 0) await this.#d.emit(events)
    if (this.#dirty.size > 0 || this.#forget.length > 0) {
      await this.#d.recentBlocks.save([...this.#dirty].map(stored), this.#forget)
      this.#dirty.clear()
      this.#forget = []
    }
    await this.#d.cursors.save(cursor, this.#chain)
    this.#savedChain = this.#chain
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

  /** Whether the chain in use is not yet recorded with the saved cursor. */
  #chainUnsaved(): boolean {
    return this.#chain !== undefined && this.#savedChain !== this.#chain
  }

  /**
   * Case `reorg`: drops our blocks above the common ancestor. Only blocks the node has shown
   * replaced by another block at their height (by hash) are retracted; `reconcile` names them.
   */
  async #reorg(decision: Extract<Reconcile, { case: 'reorg' }>): Promise<void> {
    const replaced = new Set(decision.replaced)
    const dropped: WindowBlock[] = []
    const above = decision.deeperThanKept ? decision.ancestor.number - 1 : decision.ancestor.number
    while (this.#window.length > 0 && this.#window[this.#window.length - 1]!.number > above) {
      const tip = this.#window.pop()!
      this.#drop(tip)
      if (replaced.has(tip.hash)) dropped.push(tip)
    }
    this.#cursor = decision.ancestor
    if (decision.deeperThanKept) {
      this.#window = []
      this.#log.error({ at: decision.ancestor.number, dropped: dropped.length }, 'reorg deeper than the blocks kept: older events cannot be retracted')
    }
    const emittedIds = dropped.flatMap((b) => [...b.emitted])
    const emitted = emittedIds.length > 0 ? await this.#d.emittedEvents(emittedIds) : []
    const now = this.#d.now()
    const removals = emitted.map((e) => removedEvent(e, now)).filter((e): e is MatchedEvent => e !== undefined)
    this.#log.warn({ dropped: dropped.map((b) => b.number), retracted: removals.length, ancestor: this.#cursor.number }, 'reorg')
    await this.#flush(removals)
  }

  #mapBounded<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    return mapBounded(items, this.#d.fetchConcurrency, fn)
  }
}

/**
 * The block `hash` with what matching needs, its logs asked for at the same time as the block
 * (both by hash); undefined when the node does not have the block.
 */
async function readBlockDataByHash(node: EvmNode, index: EvmWatchIndex, hash: string): Promise<BlockData | undefined> {
  const logs = node.logsOf(hash)
  // A block gone from the node is undefined (for the next reconcile), whatever its logs' answer was.
  logs.catch(() => undefined)
  const block = await node.blockByHash(hash, index.needsTransactions())
  return block ? readBlockData(node, index, block, logs) : undefined
}

/** Reads what matching needs beside the block: its logs, and receipts only if a watch needs them. */
export async function readBlockData(node: EvmNode, index: EvmWatchIndex, block: RpcBlock, logsOfBlock = node.logsOf(block.hash)): Promise<BlockData> {
  const needing = index.transactionsNeedingReceipts(block)
  const [logs, receipts] = await Promise.all([
    logsOfBlock,
    needing.length > 0 ? node.receipts(block.hash, needing) : Promise.resolve(undefined),
  ])
  return { block, logs, ...(receipts ? { receipts } : {}) }
}
