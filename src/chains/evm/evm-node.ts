/**
 * The EVM JSON-RPC calls the subscriber makes, over the chain's one RpcSocket, with every answer
 * checked (rpc-types.ts). A malformed answer is an error with a code: the follower retries the
 * block rather than skip it, because skipping would lose its events.
 */
import type { Logger } from 'pino'
import { BlockhookError } from '../../domain/errors.js'
import { hasCode } from '../../domain/errors.js'
import { RpcError, type RpcSocket } from '../rpc-socket.js'
import { hexToNumber, parseBlock, parseHeader, parseLog, parseReceipt, parseTransaction, type RpcBlock, type RpcHead, type RpcLog, type RpcReceipt, type RpcTransaction } from './rpc-types.js'

export interface BlockHeaderRef extends RpcHead { parentHash: string }

export interface ChainIdentity { chainId: string; genesisHash: string }

const badAnswer = (what: string) => new BlockhookError('BH_NODE_BAD_ANSWER', `the node sent a malformed ${what}`)
const toHex = (n: number) => `0x${n.toString(16)}`

/**
 * JSON-RPC error codes by which nodes say a method is not there for us: -32601 method not found
 * (JSON-RPC 2.0; geth, Nethermind, Erigon, anvil), -32004 method not supported (EIP-1474, used by
 * providers that disable it), -32602 invalid params (nodes whose eth_getBlockReceipts takes a
 * number, not a hash). Decided by code, never by the wording of the message, which varies.
 */
const METHOD_UNAVAILABLE_CODES: ReadonlySet<number> = new Set([-32601, -32004, -32602])

function headerOf(raw: unknown): BlockHeaderRef | undefined {
  if (raw === null) return undefined
  const header = parseHeader(raw)
  if (!header) throw badAnswer('block header')
  return { number: header.number, hash: header.hash, parentHash: header.parentHash }
}

export class EvmNode {
  readonly #socket: RpcSocket
  readonly #log: Logger
  /** Cleared on the first "method not found": the node lacks eth_getBlockReceipts. */
  #blockReceipts = true

  constructor(socket: RpcSocket, logger: Logger) {
    this.#socket = socket
    this.#log = logger
  }

  /** A header by number or tag, or undefined when the node has no such block (yet, or any more). */
  async header(block: number | 'latest'): Promise<BlockHeaderRef | undefined> {
    return headerOf(await this.#socket.request('eth_getBlockByNumber', [typeof block === 'number' ? toHex(block) : block, false]))
  }

  /**
   * A block with its transactions when `withTransactions`, else its header with `transactions: []`
   * (full transactions cost the node several times more; only some watch types need them).
   */
  async blockByNumber(number: number, withTransactions: boolean): Promise<RpcBlock | undefined> {
    return this.#block(await this.#socket.request('eth_getBlockByNumber', [toHex(number), withTransactions]), withTransactions)
  }

  /** A header by hash, or undefined when the node does not have that block. */
  async headerByHash(hash: string): Promise<BlockHeaderRef | undefined> {
    return headerOf(await this.#socket.request('eth_getBlockByHash', [hash, false]))
  }

  /** The chain id and genesis hash: which chain this node serves (checked on every connection). */
  async identity(): Promise<ChainIdentity> {
    const [chainId, genesis] = await Promise.all([this.#socket.request('eth_chainId', []), this.header(0)])
    if (typeof chainId !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(chainId)) throw badAnswer('chain id')
    if (!genesis) throw new BlockhookError('BH_NODE_BAD_ANSWER', 'the node has no genesis block')
    return { chainId: String(hexToNumber(chainId)), genesisHash: genesis.hash }
  }

  async blockByHash(hash: string, withTransactions: boolean): Promise<RpcBlock | undefined> {
    return this.#block(await this.#socket.request('eth_getBlockByHash', [hash, withTransactions]), withTransactions)
  }

  #block(raw: unknown, withTransactions: boolean): RpcBlock | undefined {
    if (raw === null) return undefined
    const block = parseBlock(withTransactions || typeof raw !== 'object' ? raw : { ...raw, transactions: [] })
    if (!block) throw badAnswer('block')
    return block
  }

  /** The block's logs, by its hash (so they belong to exactly that block, whatever reorgs). */
  async logsOf(blockHash: string): Promise<RpcLog[]> {
    const raw = await this.#socket.request('eth_getLogs', [{ blockHash }])
    if (!Array.isArray(raw)) throw badAnswer('log list')
    const logs: RpcLog[] = []
    for (const item of raw) {
      const log = parseLog(item)
      if (!log) throw badAnswer('log')
      if (log.blockHash.toLowerCase() !== blockHash.toLowerCase()) throw badAnswer('log (of another block)')
      if (log.removed === true) {
        // Not part of the block we asked for; reorgs are found by parent hash, not by this flag.
        this.#log.warn({ blockHash, logIndex: log.logIndex }, 'log marked removed in eth_getLogs skipped')
        continue
      }
      logs.push(log)
    }
    return logs
  }

  /** Receipts of `txHashes` in the block: one eth_getBlockReceipts, or one call per transaction. */
  async receipts(blockHash: string, txHashes: readonly string[]): Promise<Map<string, RpcReceipt>> {
    const byHash = new Map<string, RpcReceipt>()
    if (txHashes.length === 0) return byHash
    if (this.#blockReceipts) {
      try {
        const raw = await this.#socket.request('eth_getBlockReceipts', [blockHash])
        if (!Array.isArray(raw)) throw badAnswer('receipt list')
        for (const item of raw) {
          const receipt = parseReceipt(item)
          if (!receipt) throw badAnswer('receipt')
          byHash.set(receipt.transactionHash, receipt)
        }
        return byHash
      } catch (err) {
        const unsupported = err instanceof RpcError && hasCode(err, 'BH_RPC_ERROR')
          && err.rpcCode !== undefined && METHOD_UNAVAILABLE_CODES.has(err.rpcCode)
        if (!unsupported) throw err
        this.#log.info('the node has no eth_getBlockReceipts, reading receipts one by one')
        this.#blockReceipts = false
      }
    }
    await Promise.all(txHashes.map(async (hash) => {
      const receipt = parseReceipt(await this.#socket.request('eth_getTransactionReceipt', [hash]))
      if (!receipt) throw badAnswer('receipt')
      byHash.set(hash, receipt)
    }))
    return byHash
  }

  async transaction(hash: string): Promise<RpcTransaction | undefined> {
    const raw = await this.#socket.request('eth_getTransactionByHash', [hash])
    return raw === null ? undefined : parseTransaction(raw)
  }
}
