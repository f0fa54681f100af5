/**
 * In-memory indexes of a chain's active EVM watches, and the pure matching of a block against them
 * (STYLE §10: matching runs only on `block`, has no I/O, and is benchmarked alone).
 *
 * Each event looks up only the watches that can match it (by log address, topic0, transaction
 * from/to, activity address), then checks the full filter, so a block costs in proportion to its
 * events, not to the number of watches. Index values are a single entry or an array of entries,
 * and activity keys reuse the watch's own address strings: 100,000 addresses cost a map entry each.
 */
import type { EventType, TopicFilter, Watch, WatchOf } from '../../domain/watch-types.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { decodeTokenTransfers, LogDecoder, TRANSFER_BATCH_TOPIC } from './abi.js'
import { blockRef, buildEvent } from './payloads.js'
import { hexToDecimal, hexToNumber, type RpcBlock, type RpcLog, type RpcReceipt, type RpcTransaction } from './rpc-types.js'

/** A block with what matching needs; `receipts` only when `needsReceipts` said so. */
export interface BlockData {
  block: RpcBlock
  logs: RpcLog[]
  receipts?: ReadonlyMap<string, RpcReceipt>
}

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

/** Map to one value or several, without an array per key for the common single case. */
class MultiMap<V> {
  readonly #map = new Map<string, V | V[]>()

  add(key: string, value: V): void {
    const current = this.#map.get(key)
    if (current === undefined) this.#map.set(key, value)
    else if (Array.isArray(current)) current.push(value)
    else this.#map.set(key, [current, value])
  }

  delete(key: string, value: V): void {
    const current = this.#map.get(key)
    if (current === undefined) return
    if (!Array.isArray(current)) {
      if (current === value) this.#map.delete(key)
      return
    }
    const rest = current.filter((v) => v !== value)
    if (rest.length === 0) this.#map.delete(key)
    else this.#map.set(key, rest.length === 1 ? rest[0]! : rest)
  }

  forEach(key: string, visit: (value: V) => void): void {
    const current = this.#map.get(key)
    if (current === undefined) return
    if (Array.isArray(current)) for (const v of current) visit(v)
    else visit(current)
  }

  get size(): number {
    return this.#map.size
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

  constructor(chain: string, defaultConfirmations: number) {
    this.#chain = chain
    this.#defaultConfirmations = defaultConfirmations
  }

  get size(): number {
    return this.#watches.size
  }

  get pendingWatchCount(): number {
    return this.#pendingEntries.size
  }

  get(watchId: string): Watch | undefined {
    return this.#watches.get(watchId)
  }

  /** The deepest confirmations any watch waits for: how many blocks the follower must keep. */
  maxConfirmations(): number {
    let max = this.#defaultConfirmations
    for (const watch of this.#watches.values()) max = Math.max(max, this.confirmationsOf(watch))
    return max
  }

  confirmationsOf(watch: Watch): number {
    return watch.confirmations ?? this.#defaultConfirmations
  }

  /** Indexes an active EVM watch (replacing its previous version); any other is removed. */
  upsert(watch: Watch): void {
    this.remove(watch.id)
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
  }

  remove(watchId: string): void {
    const watch = this.#watches.get(watchId)
    if (!watch) return
    this.#watches.delete(watchId)
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
    this.#txByFrom.forEach(from, check)
    if (to !== undefined) this.#txByTo.forEach(to, check)
    return found
  }

  /** True when some transaction of the block is a candidate of an `evm.transactions` watch. */
  needsReceipts(block: RpcBlock): boolean {
    if (this.#txEntries.size === 0) return false
    return block.transactions.some((tx) => this.#transactionCandidates(tx).length > 0)
  }

  /** The transactions that need a receipt (for the fallback that fetches them one by one). */
  transactionsNeedingReceipts(block: RpcBlock): string[] {
    if (this.#txEntries.size === 0) return []
    return block.transactions.filter((tx) => this.#transactionCandidates(tx).length > 0).map((tx) => tx.hash)
  }

  matchBlock(data: BlockData, nowMs: number): EvmMatch[] {
    const matches: EvmMatch[] = []
    const block = blockRef(data.block)
    const emit = (watch: Watch, type: EventType, txHash: string, logPart: string, eventKey: string, fields: Record<string, unknown>) => {
      const confirmations = this.confirmationsOf(watch)
      matches.push({
        confirmations,
        event: buildEvent({ watch, chain: this.#chain, type, block, txHash, logPart, eventKey, confirmations, fields, nowMs }),
      })
    }

    for (const watch of this.#blockWatches.values()) {
      const { transactions: _transactions, ...header } = data.block
      emit(watch, 'evm.block', '', 'block', `${this.#chain}:${block.hash}`, { header })
    }
    for (const tx of data.block.transactions) this.#matchTransaction(tx, data, emit)
    for (const log of data.logs) this.#matchLog(log, emit)
    return matches
  }

  #matchTransaction(
    tx: RpcTransaction, data: BlockData,
    emit: (watch: Watch, type: EventType, txHash: string, logPart: string, eventKey: string, fields: Record<string, unknown>) => void,
  ): void {
    if (this.#txEntries.size > 0) {
      const candidates = this.#transactionCandidates(tx)
      if (candidates.length > 0) {
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
    }
    if (this.#activity.size === 0) return
    const from = tx.from.toLowerCase()
    const to = tx.to?.toLowerCase() ?? null
    const seen = new Set<string>()
    const visit = (watch: WatchOf<'evm.address_activity'>) => {
      if (seen.has(watch.id)) return
      seen.add(watch.id)
      emit(watch, 'evm.activity', tx.hash, 'external', `${this.#chain}:${tx.hash}:external`, {
        activity: {
          category: 'external', from, to, value: hexToDecimal(tx.value), tokenId: null, contract: null,
          transactionHash: tx.hash, logIndex: null,
        },
      })
    }
    this.#activity.forEach(from, visit)
    if (to !== null) this.#activity.forEach(to, visit)
  }

  #matchLog(
    log: RpcLog,
    emit: (watch: Watch, type: EventType, txHash: string, logPart: string, eventKey: string, fields: Record<string, unknown>) => void,
  ): void {
    const logIndex = hexToNumber(log.logIndex)
    if (this.#logEntries.size > 0) {
      const seen = new Set<LogEntry>()
      const check = (entry: LogEntry) => {
        if (seen.has(entry)) return
        seen.add(entry)
        if (entry.addresses && !entry.addresses.has(log.address.toLowerCase())) return
        if (!topicsMatch(entry.topics, log.topics)) return
        const decoded = entry.decoder?.decode(log)
        emit(entry.watch, 'evm.log', log.transactionHash, String(logIndex), `${this.#chain}:${log.transactionHash}:${logIndex}`, {
          log, ...(decoded ? { decoded } : {}),
        })
      }
      this.#logsByAddress.forEach(log.address.toLowerCase(), check)
      if (log.topics[0]) this.#logsByTopic0.forEach(log.topics[0].toLowerCase(), check)
      for (const entry of this.#logsAny) check(entry)
    }
    if (this.#activity.size === 0) return
    const transfers = decodeTokenTransfers(log)
    transfers.forEach((transfer, i) => {
      // A TransferBatch gives one event per token id, each with an id and key of its own.
      const part = log.topics[0] === TRANSFER_BATCH_TOPIC ? `${logIndex}:${i}` : String(logIndex)
      const seen = new Set<string>()
      const visit = (watch: WatchOf<'evm.address_activity'>) => {
        if (seen.has(watch.id)) return
        seen.add(watch.id)
        emit(watch, 'evm.activity', log.transactionHash, part, `${this.#chain}:${log.transactionHash}:${part}`, {
          activity: { ...transfer, transactionHash: log.transactionHash, logIndex },
        })
      }
      this.#activity.forEach(transfer.from, visit)
      this.#activity.forEach(transfer.to, visit)
    })
  }

  /** A mempool transaction against `evm.pending_transactions` watches (delivered at once). */
  matchPending(tx: RpcTransaction, nowMs: number): EvmMatch[] {
    const matches: EvmMatch[] = []
    const from = tx.from.toLowerCase()
    const to = tx.to?.toLowerCase()
    const seen = new Set<PendingEntry>()
    const check = (entry: PendingEntry) => {
      if (seen.has(entry)) return
      seen.add(entry)
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
    this.#pendingByFrom.forEach(from, check)
    if (to !== undefined) this.#pendingByTo.forEach(to, check)
    for (const entry of this.#pendingAny) check(entry)
    return matches
  }
}
