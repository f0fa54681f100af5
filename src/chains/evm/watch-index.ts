/**
 * In-memory indexes of a chain's active EVM watches, and the pure matching of a block against them
 * (matching runs only on `block`, has no I/O, and is benchmarked alone).
 *
 * Each event looks up only the watches that can match it (by log address, topic0, transaction
 * from/to, activity address), then checks the full filter, so a block costs in proportion to its
 * events, not to the number of watches. Index values are a single entry or an array of entries,
 * and activity keys reuse the watch's own address strings: 100,000 addresses cost a map entry each.
 */
import type { EventType, TopicFilter, Watch, WatchOf } from '../../domain/watch-types.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { decodeTokenTransfers, LogDecoder, TRANSFER_BATCH_TOPIC, transferParties } from './abi.js'
import { batchParts } from './batches.js'
import { blockRef, buildEvent } from './payloads.js'
import { hexToDecimal, hexToNumber, type RpcBlock, type RpcLog, type RpcReceipt, type RpcTransaction } from './rpc-types.js'

/** A block with what matching needs; `receipts` for the transactions `transactionsNeedingReceipts` named. */
export interface BlockData {
  block: RpcBlock
  logs: RpcLog[]
  receipts?: ReadonlyMap<string, RpcReceipt>
}

type Emit = (watch: Watch, type: EventType, txHash: string, logPart: string, eventKey: string, fields: Record<string, unknown>) => void

export interface EvmMatch {
  /** How deep the block must be before the event is delivered (the watch's setting). */
  confirmations: number
  event: MatchedEvent
}

interface LogEntry {
  watch: WatchOf<'evm.logs'>
  addresses: ReadonlySet<string> | undefined
  topics: (ReadonlySet<string> | null)[]
  decoder: LogDecoder | undefined
}

interface TransactionEntry {
  watch: WatchOf<'evm.transactions'>
  from: ReadonlySet<string> | undefined
  to: ReadonlySet<string> | undefined
  selectors: ReadonlySet<string> | undefined
  status: 'success' | 'failed' | 'any'
}

interface PendingEntry {
  watch: WatchOf<'evm.pending_transactions'>
  from: ReadonlySet<string> | undefined
  to: ReadonlySet<string> | undefined
}

const NONE: readonly never[] = []
const BLOOM_BITS_PER_KEY = 16

/** FNV-1a over `key[from, to)`: keys are addresses and topics, whose tails are uniformly random. */
function fnv(key: string, from: number, to: number): number {
  let h = 0x811c9dc5
  for (let i = Math.max(0, from); i < to; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619)
  return h >>> 0
}

/**
 * Map to one value or several, without an array per key for the common single case, fronted by
 * a Bloom filter (2 bits per key in 16): with 100,000 addresses the Map is megabytes and most
 * lookups (addresses nobody watches) would each miss the CPU cache; the filter is a few hundred
 * KB and answers them from one or two words. Removed keys leave stale bits (harmless false
 * positives) until the filter is rebuilt.
 */
class MultiMap<V> {
  readonly #map = new Map<string, V | V[]>()
  #bits = new Uint32Array(32)
  #stale = 0

  add(key: string, value: V): void {
    const current = this.#map.get(key)
    if (current === undefined) {
      this.#map.set(key, value)
      if (this.#map.size * BLOOM_BITS_PER_KEY > this.#bits.length * 32) this.#rebuild()
      else this.#mark(key)
    } else if (Array.isArray(current)) current.push(value)
    else this.#map.set(key, [current, value])
  }

  delete(key: string, value: V): void {
    const current = this.#map.get(key)
    if (current === undefined) return
    if (!Array.isArray(current)) {
      if (current !== value) return
      this.#map.delete(key)
      if (++this.#stale > this.#map.size) this.#rebuild()
      return
    }
    const rest = current.filter((v) => v !== value)
    if (rest.length === 0) this.#map.delete(key)
    else this.#map.set(key, rest.length === 1 ? rest[0]! : rest)
  }

  /** The values under `key` (a shared empty array when none); no closure per lookup on the hot path. */
  get(key: string): readonly V[] {
    const mask = this.#bits.length * 32 - 1
    const a = fnv(key, key.length - 16, key.length - 8) & mask
    const b = fnv(key, key.length - 8, key.length) & mask
    if ((this.#bits[a >>> 5]! & (1 << (a & 31))) === 0 || (this.#bits[b >>> 5]! & (1 << (b & 31))) === 0) return NONE as readonly V[]
    const current = this.#map.get(key)
    if (current === undefined) return NONE as readonly V[]
    return Array.isArray(current) ? current : [current]
  }

  get size(): number {
    return this.#map.size
  }

  #mark(key: string): void {
    const mask = this.#bits.length * 32 - 1
    const a = fnv(key, key.length - 16, key.length - 8) & mask
    const b = fnv(key, key.length - 8, key.length) & mask
    this.#bits[a >>> 5]! |= 1 << (a & 31)
    this.#bits[b >>> 5]! |= 1 << (b & 31)
  }

  #rebuild(): void {
    let words = 32
    while (words * 32 < this.#map.size * BLOOM_BITS_PER_KEY * 2) words *= 2
    this.#bits = new Uint32Array(words)
    this.#stale = 0
    for (const key of this.#map.keys()) this.#mark(key)
  }
}

const lower = (values: readonly string[] | undefined): ReadonlySet<string> | undefined =>
  values && values.length > 0 ? new Set(values.map((v) => v.toLowerCase())) : undefined

function topicSets(topics: readonly TopicFilter[] | undefined): (ReadonlySet<string> | null)[] {
  return (topics ?? []).map((t) => (t === null ? null : new Set((Array.isArray(t) ? t : [t]).map((x) => x.toLowerCase()))))
}

/** `eth_getLogs` semantics, as geth applies them: a log with fewer topics than the filter fails. */
export function topicsMatch(filter: readonly (ReadonlySet<string> | null)[], topics: readonly string[]): boolean {
  if (filter.length > topics.length) return false
  for (let i = 0; i < filter.length; i++) {
    const wanted = filter[i]
    if (wanted && !wanted.has(topics[i]!.toLowerCase())) return false
  }
  return true
}

const selectorOf = (input: string): string => input.slice(0, 10).toLowerCase()
const receiptStatus = (receipt: RpcReceipt | undefined): 'success' | 'failed' | undefined =>
  receipt?.status === undefined ? undefined : hexToNumber(receipt.status) === 1 ? 'success' : 'failed'

export class EvmWatchIndex {
  readonly #chain: string
  readonly #defaultConfirmations: number
  readonly #watches = new Map<string, Watch>()
  /** Ids of the `"batch": "block"` watches. */
  readonly #batchWatches = new Set<string>()

  readonly #logsByAddress = new MultiMap<LogEntry>()
  readonly #logsByTopic0 = new MultiMap<LogEntry>()
  readonly #logsAny = new Set<LogEntry>()
  readonly #logEntries = new Map<string, LogEntry>()

  readonly #txByFrom = new MultiMap<TransactionEntry>()
  readonly #txByTo = new MultiMap<TransactionEntry>()
  readonly #txEntries = new Map<string, TransactionEntry>()

  readonly #activity = new MultiMap<WatchOf<'evm.address_activity'>>()
  readonly #blockWatches = new Map<string, WatchOf<'evm.blocks'>>()

  readonly #pendingByFrom = new MultiMap<PendingEntry>()
  readonly #pendingByTo = new MultiMap<PendingEntry>()
  readonly #pendingAny = new Set<PendingEntry>()
  readonly #pendingEntries = new Map<string, PendingEntry>()
  #maxConfirmations: number | undefined

  constructor(chain: string, defaultConfirmations: number) {
    this.#chain = chain
    this.#defaultConfirmations = defaultConfirmations
  }

  get pendingWatchCount(): number {
    return this.#pendingEntries.size
  }

  get(watchId: string): Watch | undefined {
    return this.#watches.get(watchId)
  }

  /** The deepest confirmations any watch waits for: how many blocks the follower must keep. */
  maxConfirmations(): number {
    // Asked once per block; recomputed only after a watch changed.
    if (this.#maxConfirmations === undefined) {
      let max = this.#defaultConfirmations
      for (const watch of this.#watches.values()) max = Math.max(max, this.confirmationsOf(watch))
      this.#maxConfirmations = max
    }
    return this.#maxConfirmations
  }

  confirmationsOf(watch: Watch): number {
    return watch.confirmations ?? this.#defaultConfirmations
  }

  /** Indexes an active EVM watch (replacing its previous version); any other is removed. */
  upsert(watch: Watch): void {
    this.remove(watch.id)
    this.#maxConfirmations = undefined
    if (watch.status !== 'active' || watch.chain !== this.#chain) return
    switch (watch.type) {
      case 'evm.logs': this.#addLogs(watch); break
      case 'evm.transactions': this.#addTransactions(watch); break
      case 'evm.address_activity':
        for (const address of watch.filter.addresses) this.#activity.add(address, watch)
        break
      case 'evm.blocks': this.#blockWatches.set(watch.id, watch); break
      case 'evm.pending_transactions': this.#addPending(watch); break
      default: return
    }
    this.#watches.set(watch.id, watch)
    if (watch.batch === 'block') this.#batchWatches.add(watch.id)
  }

  remove(watchId: string): void {
    const watch = this.#watches.get(watchId)
    if (!watch) return
    this.#watches.delete(watchId)
    this.#batchWatches.delete(watchId)
    this.#maxConfirmations = undefined
    switch (watch.type) {
      case 'evm.logs': {
        const entry = this.#logEntries.get(watchId)!
        this.#logEntries.delete(watchId)
        if (entry.addresses) for (const a of entry.addresses) this.#logsByAddress.delete(a, entry)
        else if (entry.topics[0]) for (const t of entry.topics[0]) this.#logsByTopic0.delete(t, entry)
        else this.#logsAny.delete(entry)
        break
      }
      case 'evm.transactions': {
        const entry = this.#txEntries.get(watchId)!
        this.#txEntries.delete(watchId)
        if (entry.from) for (const a of entry.from) this.#txByFrom.delete(a, entry)
        else for (const a of entry.to ?? []) this.#txByTo.delete(a, entry)
        break
      }
      case 'evm.address_activity':
        for (const address of watch.filter.addresses) this.#activity.delete(address, watch)
        break
      case 'evm.blocks': this.#blockWatches.delete(watchId); break
      case 'evm.pending_transactions': {
        const entry = this.#pendingEntries.get(watchId)!
        this.#pendingEntries.delete(watchId)
        if (entry.from) for (const a of entry.from) this.#pendingByFrom.delete(a, entry)
        else if (entry.to) for (const a of entry.to) this.#pendingByTo.delete(a, entry)
        else this.#pendingAny.delete(entry)
        break
      }
      default: break
    }
  }

  #addLogs(watch: WatchOf<'evm.logs'>): void {
    const address = watch.filter.address
    const entry: LogEntry = {
      watch,
      addresses: lower(address === undefined ? undefined : Array.isArray(address) ? address : [address]),
      topics: topicSets(watch.filter.topics),
      decoder: watch.filter.abi ? new LogDecoder(watch.filter.abi) : undefined,
    }
    this.#logEntries.set(watch.id, entry)
    if (entry.addresses) for (const a of entry.addresses) this.#logsByAddress.add(a, entry)
    else if (entry.topics[0]) for (const t of entry.topics[0]) this.#logsByTopic0.add(t, entry)
    else this.#logsAny.add(entry)
  }

  #addTransactions(watch: WatchOf<'evm.transactions'>): void {
    const entry: TransactionEntry = {
      watch,
      from: lower(watch.filter.from),
      to: lower(watch.filter.to),
      selectors: lower(watch.filter.selector),
      status: watch.filter.status ?? 'any',
    }
    this.#txEntries.set(watch.id, entry)
    // Indexed by one list only: every given list must match, so one is enough to find candidates.
    if (entry.from) for (const a of entry.from) this.#txByFrom.add(a, entry)
    else for (const a of entry.to ?? []) this.#txByTo.add(a, entry)
  }

  #addPending(watch: WatchOf<'evm.pending_transactions'>): void {
    const entry: PendingEntry = { watch, from: lower(watch.filter.from), to: lower(watch.filter.to) }
    this.#pendingEntries.set(watch.id, entry)
    if (entry.from) for (const a of entry.from) this.#pendingByFrom.add(a, entry)
    else if (entry.to) for (const a of entry.to) this.#pendingByTo.add(a, entry)
    else this.#pendingAny.add(entry)
  }

  // --- matching ---------------------------------------------------------------------------------
  // Each watch sits in exactly one index per event kind (logs: by address, else by topic0, else
  // "any"; transactions: by from, else by to), so candidates never repeat and need no dedup set.

  #transactionCandidates(tx: RpcTransaction): TransactionEntry[] {
    const found: TransactionEntry[] = []
    const from = tx.from.toLowerCase()
    const to = tx.to?.toLowerCase()
    const check = (entry: TransactionEntry) => {
      if (entry.from && !entry.from.has(from)) return
      if (entry.to && (to === undefined || !entry.to.has(to))) return
      if (entry.selectors && !entry.selectors.has(selectorOf(tx.input))) return
      found.push(entry)
    }
    for (const entry of this.#txByFrom.get(from)) check(entry)
    if (to !== undefined) for (const entry of this.#txByTo.get(to)) check(entry)
    return found
  }

  /** Whether matching looks at transactions at all (else blocks are read without them). */
  needsTransactions(): boolean {
    return this.#txEntries.size > 0 || this.#activity.size > 0
  }

  /** The transactions that need a receipt: candidates of an `evm.transactions` watch. */
  transactionsNeedingReceipts(block: RpcBlock): string[] {
    if (this.#txEntries.size === 0) return []
    return block.transactions.filter((tx) => this.#transactionCandidates(tx).length > 0).map((tx) => tx.hash)
  }

  matchBlock(data: BlockData, nowMs: number): EvmMatch[] {
    const matches: EvmMatch[] = []
    const block = blockRef(data.block)
    const emit: Emit = (watch, type, txHash, logPart, eventKey, fields) => {
      if (watch.startBlock !== undefined && block.number < watch.startBlock) return
      const confirmations = this.confirmationsOf(watch)
      matches.push({
        confirmations,
        event: buildEvent({ watch, chain: this.#chain, type, block, txHash, logPart, eventKey, confirmations, fields, nowMs }),
      })
    }

    if (this.#blockWatches.size > 0) {
      const { transactions: _transactions, ...header } = data.block
      for (const watch of this.#blockWatches.values()) {
        emit(watch, 'evm.block', '', 'block', `${this.#chain}:${block.hash}`, { header })
      }
    }
    const hasTransactionWatches = this.#txEntries.size > 0
    const hasActivity = this.#activity.size > 0
    if (hasTransactionWatches || hasActivity) {
      for (const tx of data.block.transactions) {
        if (hasTransactionWatches) this.#matchTransaction(tx, data, emit)
        if (hasActivity) this.#matchExternalActivity(tx, emit)
      }
    }
    const hasLogWatches = this.#logEntries.size > 0
    if (hasLogWatches || hasActivity) {
      for (const log of data.logs) {
        if (hasLogWatches) this.#matchLog(log, emit)
        if (hasActivity) this.#matchTokenActivity(log, emit)
      }
    }
    return this.#batchWatches.size === 0 ? matches : this.#batched(matches, nowMs)
  }

  /** A batch watch's matches of the block become its `evm.batch` parts, with the same confirmations. */
  #batched(matches: EvmMatch[], nowMs: number): EvmMatch[] {
    const out: EvmMatch[] = []
    const byWatch = new Map<string, EvmMatch[]>()
    for (const m of matches) {
      if (!this.#batchWatches.has(m.event.watchId)) out.push(m)
      else {
        const group = byWatch.get(m.event.watchId)
        if (group) group.push(m)
        else byWatch.set(m.event.watchId, [m])
      }
    }
    for (const group of byWatch.values()) {
      const confirmations = group[0]!.confirmations
      for (const event of batchParts(group.map((m) => m.event), nowMs)) out.push({ confirmations, event })
    }
    return out
  }

  #matchTransaction(tx: RpcTransaction, data: BlockData, emit: Emit): void {
    const candidates = this.#transactionCandidates(tx)
    if (candidates.length === 0) return
    const receipt = data.receipts?.get(tx.hash)
    const status = receiptStatus(receipt)
    for (const entry of candidates) {
      if (entry.status !== 'any' && status !== entry.status) continue
      emit(entry.watch, 'evm.transaction', tx.hash, 'tx', `${this.#chain}:${tx.hash}`, {
        transaction: tx,
        receipt: {
          status: status ?? null,
          gasUsed: receipt ? hexToDecimal(receipt.gasUsed) : null,
          contractAddress: receipt?.contractAddress ?? null,
        },
      })
    }
  }

  /** Watches holding `from` or `to`, each once. */
  #activityWatches(from: string, to: string | null): readonly WatchOf<'evm.address_activity'>[] {
    const byFrom = this.#activity.get(from)
    if (to === null || to === from) return byFrom
    const byTo = this.#activity.get(to)
    if (byTo.length === 0) return byFrom
    if (byFrom.length === 0) return byTo
    return [...byFrom, ...byTo.filter((w) => !byFrom.includes(w))]
  }

  #matchExternalActivity(tx: RpcTransaction, emit: Emit): void {
    const from = tx.from.toLowerCase()
    const to = tx.to?.toLowerCase() ?? null
    const watches = this.#activityWatches(from, to)
    if (watches.length === 0) return
    const activity = {
      category: 'external', from, to, value: hexToDecimal(tx.value), tokenId: null, contract: null,
      transactionHash: tx.hash, logIndex: null,
    }
    for (const watch of watches) {
      emit(watch, 'evm.activity', tx.hash, 'external', `${this.#chain}:${tx.hash}:external`, { activity })
    }
  }

  #matchLog(log: RpcLog, emit: Emit): void {
    const address = log.address.toLowerCase()
    const byAddress = this.#logsByAddress.get(address)
    const byTopic = log.topics[0] ? this.#logsByTopic0.get(log.topics[0].toLowerCase()) : NONE
    if (byAddress.length === 0 && byTopic.length === 0 && this.#logsAny.size === 0) return
    const logIndex = hexToNumber(log.logIndex)
    const check = (entry: LogEntry) => {
      if (!topicsMatch(entry.topics, log.topics)) return
      const decoded = entry.decoder?.decode(log)
      emit(entry.watch, 'evm.log', log.transactionHash, String(logIndex), `${this.#chain}:${log.transactionHash}:${logIndex}`, {
        log, ...(decoded ? { decoded } : {}),
      })
    }
    for (const entry of byAddress) check(entry)
    for (const entry of byTopic) check(entry)
    for (const entry of this.#logsAny) check(entry)
  }

  #matchTokenActivity(log: RpcLog, emit: Emit): void {
    const parties = transferParties(log)
    if (!parties) return
    // Cheap test first: most transfers in a block touch no watched address.
    if (this.#activity.get(parties.from).length === 0 && this.#activity.get(parties.to).length === 0) return
    const transfers = decodeTokenTransfers(log)
    const logIndex = hexToNumber(log.logIndex)
    const batch = log.topics[0] === TRANSFER_BATCH_TOPIC
    transfers.forEach((transfer, i) => {
      // A TransferBatch gives one event per token id, each with an id and key of its own.
      const part = batch ? `${logIndex}:${i}` : String(logIndex)
      const activity = { ...transfer, transactionHash: log.transactionHash, logIndex }
      for (const watch of this.#activityWatches(transfer.from, transfer.to)) {
        emit(watch, 'evm.activity', log.transactionHash, part, `${this.#chain}:${log.transactionHash}:${part}`, { activity })
      }
    })
  }

  /** A mempool transaction against `evm.pending_transactions` watches (delivered at once). */
  matchPending(tx: RpcTransaction, nowMs: number): EvmMatch[] {
    const matches: EvmMatch[] = []
    const from = tx.from.toLowerCase()
    const to = tx.to?.toLowerCase()
    const check = (entry: PendingEntry) => {
      if (entry.from && !entry.from.has(from)) return
      if (entry.to && (to === undefined || !entry.to.has(to))) return
      matches.push({
        confirmations: 0,
        event: buildEvent({
          watch: entry.watch, chain: this.#chain, type: 'evm.pending_transaction', block: undefined, txHash: tx.hash,
          logPart: 'pending', eventKey: `${this.#chain}:${tx.hash}`, confirmations: 0, fields: { transaction: tx }, nowMs,
        }),
      })
    }
    for (const entry of this.#pendingByFrom.get(from)) check(entry)
    if (to !== undefined) for (const entry of this.#pendingByTo.get(to)) check(entry)
    for (const entry of this.#pendingAny) check(entry)
    return matches
  }
}
