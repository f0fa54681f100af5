/**
 * The rules a watch must satisfy beyond its JSON Schema (README, "Concepts"), as pure functions the watch
 * routes call: the type fits the chain, `confirmations` and `commitment` belong to the chain's
 * type, ABI entries parse, and filters are stored in one canonical form (hex lowercase, address
 * lists deduplicated) so matching compares strings as they are.
 */
import { parseAbiItem } from 'viem'
import type { ChainConfig, Commitment } from '../config/config.js'
import { MAX_BACKFILL_DEPTH } from '../delivery/replay-requests.js'
import { badRequest, BlockhookError } from '../domain/errors.js'
import {
  ADDRESS_LIST_FIELDS,
  chainTypeOf,
  MAX_WATCH_ADDRESSES,
  type FilterByType,
  type Watch,
  type WatchType,
} from '../domain/watch-types.js'

export interface ChainSettingsInput {
  confirmations?: number
  commitment?: Commitment
}

export function findChain(chains: readonly ChainConfig[], id: string): ChainConfig {
  const chain = chains.find((c) => c.id === id)
  if (!chain) throw badRequest('BH_UNKNOWN_CHAIN', `unknown chain "${id}"`)
  return chain
}

export function checkTypeFitsChain(type: WatchType, chain: ChainConfig): void {
  if (chainTypeOf(type) !== chain.type) {
    throw badRequest('BH_TYPE_CHAIN_MISMATCH', `body/type "${type}" does not fit chain "${chain.id}", which is ${chain.type}`)
  }
}

/** `confirmations` is for EVM watches only, `commitment` for Solana ones. */
export function checkChainSettings(type: WatchType, input: ChainSettingsInput): void {
  const chainType = chainTypeOf(type)
  if (input.confirmations !== undefined && chainType !== 'evm') {
    throw badRequest('BH_FIELD_NOT_FOR_CHAIN', 'body/confirmations applies to EVM watches only')
  }
  if (input.commitment !== undefined && chainType !== 'solana') {
    throw badRequest('BH_FIELD_NOT_FOR_CHAIN', 'body/commitment applies to Solana watches only')
  }
}

/** The settings a new watch gets: what was asked, else the chain's default, for its chain type only. */
export function chainSettings(type: WatchType, chain: ChainConfig, input: ChainSettingsInput): ChainSettingsInput {
  checkChainSettings(type, input)
  return chainTypeOf(type) === 'evm'
    ? { confirmations: input.confirmations ?? chain.confirmations }
    : { commitment: input.commitment ?? chain.commitment }
}

const lower = (values: readonly string[]) => values.map((v) => v.toLowerCase())
const lowerUnique = (values: readonly string[]) => [...new Set(lower(values))]

function checkAbi(abi: readonly string[]): void {
  abi.forEach((signature, i) => {
    let item: ReturnType<typeof parseAbiItem>
    try {
      item = parseAbiItem(signature)
    } catch (err) {
      throw badRequest('BH_INVALID_ABI', `body/filter/abi/${i} is not a valid event signature: ${(err as Error & { shortMessage?: string }).shortMessage ?? (err as Error).message}`)
    }
    if (item.type !== 'event') throw badRequest('BH_INVALID_ABI', `body/filter/abi/${i} must be an event, not a ${item.type}`)
  })
}

/** Every distinct address the filter's address lists hold. */
export function addressCount(type: WatchType, filter: Watch['filter']): number {
  const fields = ADDRESS_LIST_FIELDS[type] ?? []
  const all = new Set<string>()
  for (const field of fields) for (const a of (filter as Record<string, string[] | undefined>)[field] ?? []) all.add(a)
  return all.size
}

function checkAddressTotal(type: WatchType, filter: Watch['filter']): number {
  const count = addressCount(type, filter)
  if (count > MAX_WATCH_ADDRESSES) {
    throw badRequest('BH_TOO_MANY_ADDRESSES', `body/filter holds ${count} addresses, more than ${MAX_WATCH_ADDRESSES}`)
  }
  return count
}

/**
 * The stored form of a filter that passed its schema: ABI checked, hex strings lowercase,
 * address lists deduplicated, at most MAX_WATCH_ADDRESSES addresses in all.
 */
export function normalizeFilter<T extends WatchType>(type: T, filter: FilterByType[T]): FilterByType[T] {
  const normalized = normalizeByType(type, filter) as FilterByType[T]
  checkAddressTotal(type, normalized)
  return normalized
}

function normalizeByType(type: WatchType, input: unknown): unknown {
  switch (type) {
    case 'evm.logs': {
      const f = input as FilterByType['evm.logs']
      if (f.abi) checkAbi(f.abi)
      return {
        ...f,
        ...(f.address !== undefined && {
          address: typeof f.address === 'string' ? f.address.toLowerCase() : lowerUnique(f.address),
        }),
        ...(f.topics !== undefined && {
          topics: f.topics.map((t) => (t === null ? null : typeof t === 'string' ? t.toLowerCase() : lower(t))),
        }),
      }
    }
    case 'evm.transactions': {
      const f = input as FilterByType['evm.transactions']
      return {
        ...f,
        ...(f.from && { from: lowerUnique(f.from) }),
        ...(f.to && { to: lowerUnique(f.to) }),
        ...(f.selector && { selector: lowerUnique(f.selector) }),
      }
    }
    case 'evm.address_activity': {
      const f = input as FilterByType['evm.address_activity']
      return { ...f, addresses: lowerUnique(f.addresses) }
    }
    case 'evm.pending_transactions': {
      const f = input as FilterByType['evm.pending_transactions']
      return { ...f, ...(f.from && { from: lowerUnique(f.from) }), ...(f.to && { to: lowerUnique(f.to) }) }
    }
    default:
      // Solana keys are case-sensitive base58; blocks and slots have empty filters.
      return input
  }
}

/**
 * PATCH /watches/:id/addresses: `add` goes into, and `remove` comes out of, every address list
 * the filter has (`addresses`; `from` and/or `to` of `evm.transactions`). Returns the new
 * filter and how many distinct addresses it holds.
 */
export function changeAddresses(
  watch: Watch,
  change: { add?: readonly string[]; remove?: readonly string[] },
): { filter: Watch['filter']; count: number } {
  const fields = ADDRESS_LIST_FIELDS[watch.type]
  if (!fields) {
    throw badRequest('BH_NO_ADDRESS_LIST', `watch type "${watch.type}" has no address list; use PATCH /watches/:id to change its filter`)
  }
  const add = lower(change.add ?? [])
  const remove = new Set(lower(change.remove ?? []))
  const current = watch.filter as Record<string, string[] | undefined>
  const next: Record<string, unknown> = { ...current }
  for (const field of fields) {
    const list = current[field]
    if (list === undefined) continue
    next[field] = [...new Set([...list, ...add])].filter((a) => !remove.has(a))
  }
  const count = addressCount(watch.type, next as Watch['filter'])
  if (count > MAX_WATCH_ADDRESSES) {
    throw badRequest('BH_TOO_MANY_ADDRESSES', `the watch would hold ${count} addresses, more than ${MAX_WATCH_ADDRESSES}`)
  }
  return { filter: next as Watch['filter'], count }
}

/**
 * The blocks a `fromBlock` backfill scans: from it to the head blockhook knows (later blocks are
 * matched live). Empty (undefined) when `fromBlock` is past the head.
 */
export function backfillRange(type: WatchType, fromBlock: number, head: number | undefined): { fromBlock: number; toBlock: number } | undefined {
  if (!blockBased(type)) {
    throw badRequest('BH_FIELD_NOT_FOR_TYPE', `body/fromBlock applies to EVM watches of mined blocks, not ${type}`)
  }
  if (head === undefined) {
    throw new BlockhookError('BH_CHAIN_HEAD_UNKNOWN', 'body/fromBlock needs the chain\'s head, and no subscriber has followed this chain yet', 409)
  }
  if (fromBlock < head - MAX_BACKFILL_DEPTH) {
    throw badRequest('BH_VALIDATION', `body/fromBlock must be at most ${MAX_BACKFILL_DEPTH} blocks behind the head (${head})`)
  }
  return fromBlock > head ? undefined : { fromBlock, toBlock: head }
}

/** Batches are per block: for EVM watches of mined blocks. */
export function checkBatchable(type: WatchType): void {
  if (!blockBased(type)) throw badRequest('BH_FIELD_NOT_FOR_TYPE', `body/batch "block" applies to EVM watches of mined blocks, not ${type}`)
}

const blockBased = (type: WatchType) => chainTypeOf(type) === 'evm' && type !== 'evm.pending_transactions'

/** The addresses `next` holds in its address lists that `watch`'s filter did not. */
export function addedAddresses(watch: Watch, next: Watch['filter']): string[] {
  const fields = ADDRESS_LIST_FIELDS[watch.type] ?? []
  const before = new Set<string>()
  for (const field of fields) for (const a of (watch.filter as Record<string, string[] | undefined>)[field] ?? []) before.add(a)
  const added = new Set<string>()
  for (const field of fields) for (const a of (next as Record<string, string[] | undefined>)[field] ?? []) if (!before.has(a)) added.add(a)
  return [...added]
}
