/**
 * A scripted EVM chain behind the fake node, for the node faults anvil cannot produce (they come
 * from load balancers, failovers, Hardhat and broken or hostile nodes): a head that lags, blocks
 * with a zero parent, a restart on a fresh chain, another chain id, floods of notifications, huge
 * frames and hex values, and a node that sends heads but answers nothing. Every block carries one
 * Transfer log from `ADDRESS`, so an `evm.logs` watch gets exactly one event per canonical block.
 */
import { TRANSFER_TOPIC } from '../../src/chains/evm/abi.js'
import { startFakeNode, type FakeNode } from './fake-evm-node.js'

export const ADDRESS = '0x00000000000000000000000000000000000000aa'
const ZERO = `0x${'0'.repeat(64)}`
/** The id of the node's one subscription (newHeads), for tests that send their own notifications on it. */
export const SUBSCRIPTION = '0x5b'

export interface FakeBlock { number: number; hash: string; parentHash: string }

export interface FakeChain {
  node: FakeNode
  /** A second node serving the same chain, always answering. */
  standby: FakeNode
  /** The canonical blocks, genesis first. */
  readonly blocks: FakeBlock[]
  /** The transaction hashes of the canonical blocks' logs, from block 1. */
  canonicalTxHashes(): string[]
  /** Adds `count` blocks and sends a head for the last one. */
  mine(count?: number): number
  /** Reports a head `blocks` below the tip and has no block above it (0: caught up). */
  lag(blocks: number): void
  /** The next `times` reads of block `number` serve it with a zero parent hash. */
  zeroParent(number: number, times: number): void
  /** A new chain from a new genesis (a node restarted without its state). */
  restart(): void
  chainId: string
  /** While true `node` answers no request, but still sends heads. */
  silent: boolean
  /** The next `times` reads of block `number` have a timestamp of `digits` hex digits. */
  hugeHex(number: number, digits: number, times: number): void
  /** Resolves once the node has answered eth_chainId `count` more times. */
  chainIdRequests(count: number): Promise<void>
  /** Sends a head notification for the current head. */
  head(): void
  /** Resolves once `count` more requests for the latest block have arrived. */
  latestRequests(count: number): Promise<void>
  sendRaw(text: string): void
}

export async function startFakeChain(): Promise<FakeChain> {
  let era = 0
  const label = (n: number) => `0x${era.toString(16).padStart(8, '0')}${n.toString(16).padStart(56, '0')}`
  const blocks: FakeBlock[] = []
  const txHash = (b: FakeBlock) => `0x${b.hash.slice(4)}ff`
  const build = (number: number) => {
    blocks.push({ number, hash: label(number + 1), parentHash: number === 0 ? ZERO : blocks[number - 1]!.hash })
  }
  build(0)
  let lagBlocks = 0
  const zeroParents = new Map<number, number>()
  const hugeHexes = new Map<number, { digits: number; times: number }>()
  type Waiter = { left: number; resolve: () => void }
  const latestWaiters: Waiter[] = []
  const chainIdWaiters: Waiter[] = []
  const count = (waiters: Waiter[]) => {
    for (const w of [...waiters]) if (--w.left <= 0) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  }
  const tip = () => blocks.length - 1 - lagBlocks
  const rpcBlock = (b: FakeBlock, full: boolean) => {
    const zero = zeroParents.get(b.number) ?? 0
    if (zero > 0) zeroParents.set(b.number, zero - 1)
    const huge = hugeHexes.get(b.number)
    if (huge && --huge.times === 0) hugeHexes.delete(b.number)
    return {
      number: `0x${b.number.toString(16)}`, hash: b.hash, parentHash: zero > 0 ? ZERO : b.parentHash,
      timestamp: huge ? `0x${'f'.repeat(huge.digits)}` : '0x6553f100',
      transactions: full ? [{ hash: txHash(b), from: ADDRESS, to: ADDRESS, input: '0x', value: '0x1' }] : [],
    }
  }
  const visible = (b: FakeBlock | undefined) => (b && b.number <= tip() ? b : undefined)
  const handlers = (silent: () => boolean) => {
    const answer = <T>(fn: (params: unknown[]) => T) => (params: unknown[]) => (silent() ? undefined : fn(params))
    return {
      eth_chainId: answer(() => {
        count(chainIdWaiters)
        return chain.chainId
      }),
      eth_subscribe: answer(() => SUBSCRIPTION),
      eth_unsubscribe: answer(() => true),
      eth_getBlockByNumber: answer(([tag, full]) => {
        if (tag === 'latest') count(latestWaiters)
        const b = visible(blocks[tag === 'latest' ? tip() : Number(tag)])
        return b ? rpcBlock(b, full === true) : null
      }),
      eth_getBlockByHash: answer(([hash, full]) => {
        const b = visible(blocks.find((x) => x.hash === hash))
        return b ? rpcBlock(b, full === true) : null
      }),
      eth_getLogs: answer(([filter]) => {
        const b = blocks.find((x) => x.hash === (filter as { blockHash: string }).blockHash)
        return b ? [{
          address: ADDRESS, topics: [TRANSFER_TOPIC, `0x${'0'.repeat(64)}`, `0x${'0'.repeat(64)}`], data: `0x${'0'.repeat(63)}1`,
          blockNumber: `0x${b.number.toString(16)}`, blockHash: b.hash, transactionHash: txHash(b), transactionIndex: '0x0', logIndex: '0x0', removed: false,
        }] : []
      }),
    }
  }
  const node = await startFakeNode(handlers(() => chain.silent))
  const standby = await startFakeNode(handlers(() => false))
  const chain: FakeChain = {
    node, standby, blocks, chainId: '0x7a69', silent: false,
    canonicalTxHashes: () => blocks.slice(1).map(txHash),
    mine(count = 1) {
      for (let i = 0; i < count; i++) build(blocks.length)
      chain.head()
      return blocks.length - 1
    },
    lag(n) { lagBlocks = n },
    zeroParent(number, times) { zeroParents.set(number, times) },
    restart() {
      era++
      blocks.length = 0
      build(0)
    },
    hugeHex(number, digits, times) { hugeHexes.set(number, { digits, times }) },
    head() {
      const b = blocks[tip()]!
      for (const c of [...node.connections, ...standby.connections]) c.notify(SUBSCRIPTION, { number: `0x${b.number.toString(16)}`, hash: b.hash, parentHash: b.parentHash })
    },
    latestRequests: (left) => new Promise((resolve) => latestWaiters.push({ left, resolve })),
    chainIdRequests: (left) => new Promise((resolve) => chainIdWaiters.push({ left, resolve })),
    sendRaw(text) { node.connections[node.connections.length - 1]!.sendRaw(text) },
  }
  return chain
}
