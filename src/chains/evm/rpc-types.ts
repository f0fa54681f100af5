/**
 * The node's objects as blockhook reads them. Each parser checks only the fields blockhook relies
 * on and returns the node's object unchanged (payloads pass it on as the node sent it, README, "The webhook"),
 * or undefined for an unknown shape, which the caller logs and skips.
 */
export interface RpcLog {
  address: string
  topics: string[]
  data: string
  blockNumber: string
  blockHash: string
  transactionHash: string
  transactionIndex: string
  logIndex: string
  removed?: boolean
}

export interface RpcTransaction {
  hash: string
  from: string
  to: string | null
  input: string
  value: string
  [field: string]: unknown
}

export interface RpcBlock {
  number: string
  hash: string
  parentHash: string
  timestamp: string
  transactions: RpcTransaction[]
  [field: string]: unknown
}

export interface RpcReceipt {
  transactionHash: string
  status?: string
  gasUsed: string
  contractAddress: string | null
  [field: string]: unknown
}

/** The `newHeads` notification: only its number and hash are used, to wake the follower. */
export interface RpcHead { number: string; hash: string }

const HEX = /^0x[0-9a-fA-F]*$/
/**
 * Quantities are bounded before anything converts them: a uint256 has at most 64 hex digits,
 * and a block number or index fits a JavaScript number (13 hex digits). Without the bound a
 * node's 10-million-digit "value" would stall the event loop in the decimal conversion.
 */
const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/
const SMALL_QUANTITY = /^0x[0-9a-fA-F]{1,13}$/
const HASH = /^0x[0-9a-fA-F]{64}$/
const ADDRESS = /^0x[0-9a-fA-F]{40}$/

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isBytes = (v: unknown): v is string => typeof v === 'string' && HEX.test(v)
const isQuantity = (v: unknown): v is string => typeof v === 'string' && QUANTITY.test(v)
const isSmallQuantity = (v: unknown): v is string => typeof v === 'string' && SMALL_QUANTITY.test(v)
const isHash = (v: unknown): v is string => typeof v === 'string' && HASH.test(v)
const isAddress = (v: unknown): v is string => typeof v === 'string' && ADDRESS.test(v)

export function parseHead(v: unknown): RpcHead | undefined {
  return isObject(v) && isSmallQuantity(v.number) && isHash(v.hash) ? (v as unknown as RpcHead) : undefined
}

/** A block header as `eth_getBlockByNumber(…, false)` answers it: a head with its parent's hash. */
export function parseHeader(v: unknown): (RpcHead & { parentHash: string }) | undefined {
  return parseHead(v) && isHash((v as { parentHash?: unknown }).parentHash) ? (v as RpcHead & { parentHash: string }) : undefined
}

export function parseTransaction(v: unknown): RpcTransaction | undefined {
  if (!isObject(v) || !isHash(v.hash) || !isAddress(v.from)) return undefined
  if (v.to !== null && v.to !== undefined && !isAddress(v.to)) return undefined
  if (!isBytes(v.input) || !isQuantity(v.value)) return undefined
  return v as RpcTransaction
}

/** A block read with full transactions; undefined also when any transaction is malformed. */
export function parseBlock(v: unknown): RpcBlock | undefined {
  if (!isObject(v) || !isSmallQuantity(v.number) || !isHash(v.hash) || !isHash(v.parentHash) || !isSmallQuantity(v.timestamp)) return undefined
  if (!Array.isArray(v.transactions) || !v.transactions.every((tx) => parseTransaction(tx) !== undefined)) return undefined
  return v as unknown as RpcBlock
}

export function parseLog(v: unknown): RpcLog | undefined {
  if (!isObject(v) || !isAddress(v.address) || !Array.isArray(v.topics) || !v.topics.every(isHash)) return undefined
  if (!isBytes(v.data) || !isSmallQuantity(v.logIndex) || !isHash(v.transactionHash) || !isHash(v.blockHash)) return undefined
  if (!isSmallQuantity(v.blockNumber) || !isSmallQuantity(v.transactionIndex)) return undefined
  return v as unknown as RpcLog
}

export function parseReceipt(v: unknown): RpcReceipt | undefined {
  if (!isObject(v) || !isHash(v.transactionHash) || !isQuantity(v.gasUsed)) return undefined
  if (v.status !== undefined && !isSmallQuantity(v.status)) return undefined
  return v as unknown as RpcReceipt
}

export const hexToNumber = (hex: string): number => Number.parseInt(hex, 16)
export const hexToDecimal = (hex: string): string => BigInt(hex).toString(10)
