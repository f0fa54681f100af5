/**
 * Decoding of logs: the token transfers `evm.address_activity` follows (fixed layouts, decoded
 * from topics and data by hand because they run on every log of every block), and the `abi`
 * option of `evm.logs` watches (any event, decoded with viem).
 */
import { decodeEventLog, parseAbi, toEventSelector, type Abi } from 'viem'
import type { RpcLog } from './rpc-types.js'

export const TRANSFER_TOPIC = toEventSelector('event Transfer(address indexed from, address indexed to, uint256 value)')
export const TRANSFER_SINGLE_TOPIC = toEventSelector(
  'event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value)',
)
export const TRANSFER_BATCH_TOPIC = toEventSelector(
  'event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values)',
)

export interface TokenTransfer {
  category: 'erc20' | 'erc721' | 'erc1155'
  from: string
  to: string
  /** Decimal string; null for an ERC-721 transfer. */
  value: string | null
  /** Decimal string; null for an ERC-20 transfer. */
  tokenId: string | null
  contract: string
}

const topicAddress = (topic: string): string => `0x${topic.slice(26)}`.toLowerCase()
const wordAt = (data: string, index: number): bigint | undefined => {
  const start = 2 + index * 64
  if (data.length < start + 64) return undefined
  return BigInt(`0x${data.slice(start, start + 64)}`)
}
/** Most ids one TransferBatch may carry before it is treated as malformed (bounds the work). */
const MAX_BATCH_IDS = 10_000

/**
 * From and to of a token transfer log, from its topics alone (no data decoding), or undefined
 * when the log is not one: the cheap test run on every log of every block.
 */
export function transferParties(log: RpcLog): { from: string; to: string } | undefined {
  const [topic0, t1, t2, t3] = log.topics
  if (topic0 === TRANSFER_TOPIC && t1 && t2) return { from: topicAddress(t1), to: topicAddress(t2) }
  if ((topic0 === TRANSFER_SINGLE_TOPIC || topic0 === TRANSFER_BATCH_TOPIC) && t2 && t3) {
    return { from: topicAddress(t2), to: topicAddress(t3) }
  }
  return undefined
}

/** The transfers a log records, or [] when it is not a well-formed token transfer. */
export function decodeTokenTransfers(log: RpcLog): TokenTransfer[] {
  const [topic0, t1, t2, t3] = log.topics
  const contract = log.address.toLowerCase()
  if (topic0 === TRANSFER_TOPIC && t1 && t2) {
    if (log.topics.length === 3) {
      const value = wordAt(log.data, 0)
      if (value === undefined) return []
      return [{ category: 'erc20', from: topicAddress(t1), to: topicAddress(t2), value: value.toString(), tokenId: null, contract }]
    }
    if (log.topics.length === 4 && t3) {
      return [{ category: 'erc721', from: topicAddress(t1), to: topicAddress(t2), value: null, tokenId: BigInt(t3).toString(), contract }]
    }
    return []
  }
  if (topic0 === TRANSFER_SINGLE_TOPIC && log.topics.length === 4 && t2 && t3) {
    const id = wordAt(log.data, 0)
    const value = wordAt(log.data, 1)
    if (id === undefined || value === undefined) return []
    return [{ category: 'erc1155', from: topicAddress(t2), to: topicAddress(t3), value: value.toString(), tokenId: id.toString(), contract }]
  }
  if (topic0 === TRANSFER_BATCH_TOPIC && log.topics.length === 4 && t2 && t3) {
    return decodeBatch(log.data).map(([id, value]) => ({
      category: 'erc1155' as const, from: topicAddress(t2), to: topicAddress(t3), value, tokenId: id, contract,
    }))
  }
  return []
}

/** `(uint256[] ids, uint256[] values)` ABI-encoded: two offsets, then each array as length + words. */
function decodeBatch(data: string): [string, string][] {
  const idsOffset = wordAt(data, 0)
  const valuesOffset = wordAt(data, 1)
  if (idsOffset === undefined || valuesOffset === undefined || idsOffset % 32n !== 0n || valuesOffset % 32n !== 0n) return []
  const ids = readArray(data, Number(idsOffset / 32n))
  const values = readArray(data, Number(valuesOffset / 32n))
  if (!ids || !values || ids.length !== values.length) return []
  return ids.map((id, i) => [id, values[i]!])
}

function readArray(data: string, word: number): string[] | undefined {
  const length = wordAt(data, word)
  if (length === undefined || length > BigInt(MAX_BATCH_IDS)) return undefined
  const items: string[] = []
  for (let i = 0; i < Number(length); i++) {
    const item = wordAt(data, word + 1 + i)
    if (item === undefined) return undefined
    items.push(item.toString())
  }
  return items
}

export interface DecodedLog {
  name: string
  args: Record<string, unknown> | unknown[]
}

/** An `evm.logs` watch's event signatures, parsed once when the watch is indexed. */
export class LogDecoder {
  readonly #abi: Abi

  constructor(signatures: readonly string[]) {
    this.#abi = parseAbi(signatures as string[])
  }

  /** Undefined when no event of the ABI fits the log (the watch still gets the raw log). */
  decode(log: RpcLog): DecodedLog | undefined {
    try {
      const decoded = decodeEventLog({
        abi: this.#abi, topics: log.topics as [`0x${string}`, ...`0x${string}`[]], data: log.data as `0x${string}`, strict: true,
      })
      return { name: decoded.eventName ?? 'unknown', args: jsonSafe(decoded.args) as DecodedLog['args'] }
    } catch {
      return undefined // the log is not one of the ABI's events: delivered undecoded by design
    }
  }
}

/** bigints become decimal strings (README, "The webhook") and addresses lowercase, like the rest of the payload. */
function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'string') return /^0x[0-9a-fA-F]{40}$/.test(value) ? value.toLowerCase() : value
  if (Array.isArray(value)) return value.map(jsonSafe)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]))
  }
  return value
}
