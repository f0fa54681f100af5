/**
 * Matching alone (issue 3): 100,000 `evm.address_activity` addresses and 10,000 `evm.logs` watches
 * indexed, one synthetic block of 300 transactions and 1,000 logs (a few percent touching a watched
 * address). Prints the median match time, its ratio to the same block against 100 watches (cost
 * must not grow with the number of watches), and the heap per indexed address (watch objects as
 * parsed from Redis plus the index). Run with --expose-gc (bench/run.ts does).
 */
import { randomBytes } from 'node:crypto'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import type { RpcBlock, RpcLog, RpcTransaction } from '../src/chains/evm/rpc-types.js'
import { EvmWatchIndex, type BlockData } from '../src/chains/evm/watch-index.js'
import type { Watch } from '../src/domain/watch-types.js'

const ACTIVITY_ADDRESSES = 100_000
const ADDRESSES_PER_ACTIVITY_WATCH = 1_000
const LOG_WATCHES = 10_000
const TXS = 300
const LOGS = 1_000
const HIT_RATE = 0.03
const ROUNDS = 500

const hex = (bytes: number) => `0x${randomBytes(bytes).toString('hex')}`
const word = (address: string) => `0x${address.slice(2).padStart(64, '0')}`
const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)]!
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined)

function watch(id: number, type: Watch['type'], filter: object): Watch {
  const now = new Date().toISOString()
  // Through JSON, as the subscriber gets it from Redis: the strings are the stored ones.
  return JSON.parse(JSON.stringify({
    id: `wch_${id}`, tenantId: 'ten_bench', chain: 'bench', type, filter, url: 'https://example.com/hook',
    status: 'active', confirmations: 0, createdAt: now, updatedAt: now,
  })) as Watch
}

function activityWatches(addresses: number): { watches: Watch[]; watched: string[] } {
  const watches: Watch[] = []
  const watched: string[] = []
  for (let i = 0; i < addresses / ADDRESSES_PER_ACTIVITY_WATCH; i++) {
    const list = Array.from({ length: Math.min(ADDRESSES_PER_ACTIVITY_WATCH, addresses) }, () => hex(20))
    watched.push(...list)
    watches.push(watch(i, 'evm.address_activity', { addresses: list }))
  }
  return { watches, watched }
}

function logWatches(count: number, offset: number): { watches: Watch[]; contracts: string[] } {
  const watches: Watch[] = []
  const contracts: string[] = []
  for (let i = 0; i < count; i++) {
    if (i % 10 === 9) {
      // Address-less: by topic0, some with OR and null positions.
      watches.push(watch(offset + i, 'evm.logs', { topics: [hex(32), null, [word(hex(20)), word(hex(20))]] }))
    } else {
      const address = hex(20)
      contracts.push(address)
      watches.push(watch(offset + i, 'evm.logs', { address, topics: [TRANSFER_TOPIC] }))
    }
  }
  return { watches, contracts }
}

function syntheticBlock(watched: readonly string[], contracts: readonly string[]): BlockData {
  const blockHash = hex(32)
  const address = (pool: readonly string[]) => (Math.random() < HIT_RATE && pool.length > 0 ? pick(pool) : hex(20))
  const transactions: RpcTransaction[] = Array.from({ length: TXS }, (_, i) => ({
    hash: hex(32), from: address(watched), to: address(watched), input: i % 2 ? '0xa9059cbb' + '00'.repeat(64) : '0x',
    value: '0xde0b6b3a7640000', blockHash, blockNumber: '0x1', transactionIndex: `0x${i.toString(16)}`,
  }))
  const logs: RpcLog[] = Array.from({ length: LOGS }, (_, i) => ({
    address: address(contracts),
    topics: i % 2 ? [TRANSFER_TOPIC, word(address(watched)), word(address(watched))] : [hex(32), word(hex(20))],
    data: word('0x3e8'), blockNumber: '0x1', blockHash, transactionHash: transactions[i % TXS]!.hash,
    transactionIndex: `0x${(i % TXS).toString(16)}`, logIndex: `0x${i.toString(16)}`, removed: false,
  }))
  return { block: { number: '0x1', hash: blockHash, parentHash: hex(32), timestamp: '0x6553f100', transactions } as RpcBlock, logs }
}

/**
 * Median time of matching the block against each index, rounds interleaved so that load from
 * other processes on the machine weighs on both alike.
 */
function medianMs(indexes: readonly EvmWatchIndex[], block: BlockData): { medianMs: number; matches: number }[] {
  const matches = indexes.map((index) => {
    let found = 0
    for (let i = 0; i < 30; i++) found = index.matchBlock(block, Date.now()).length // warm up
    return found
  })
  const times = indexes.map(() => [] as number[])
  for (let round = 0; round < ROUNDS; round++) {
    indexes.forEach((index, i) => {
      const start = process.hrtime.bigint()
      index.matchBlock(block, Date.now())
      times[i]!.push(Number(process.hrtime.bigint() - start) / 1e6)
    })
  }
  return times.map((list, i) => {
    list.sort((a, b) => a - b)
    return { medianMs: list[Math.floor(list.length / 2)]!, matches: matches[i]! }
  })
}

// Heap per indexed address: the activity watches as parsed from Redis, plus their index.
gc()
const heapBefore = process.memoryUsage().heapUsed
const activity = activityWatches(ACTIVITY_ADDRESSES)
const big = new EvmWatchIndex('bench', 0)
for (const w of activity.watches) big.upsert(w)
gc()
const bytesPerAddress = (process.memoryUsage().heapUsed - heapBefore) / ACTIVITY_ADDRESSES

const logs = logWatches(LOG_WATCHES, activity.watches.length)
for (const w of logs.watches) big.upsert(w)

// The same block (same hit addresses) against 100 watches holding the addresses it touches.
const block = syntheticBlock(activity.watched, logs.contracts)
const touched = new Set<string>()
for (const tx of block.block.transactions) touched.add(tx.from).add(tx.to!)
for (const log of block.logs) {
  touched.add(log.address)
  for (const topic of log.topics.slice(1)) touched.add(`0x${topic.slice(26)}`)
}
const small = new EvmWatchIndex('bench', 0)
const touchedActivity = activity.watched.filter((a) => touched.has(a))
const touchedContracts = logs.contracts.filter((a) => touched.has(a))
for (let i = 0; i < 50; i++) {
  small.upsert(watch(900_000 + i, 'evm.address_activity', { addresses: touchedActivity.filter((_, j) => j % 50 === i) }))
  small.upsert(watch(950_000 + i, 'evm.logs', { address: touchedContracts.filter((_, j) => j % 50 === i).slice(0, 1000).concat(hex(20)), topics: [TRANSFER_TOPIC] }))
}

const [large, baseline] = medianMs([big, small], block) as [{ medianMs: number; matches: number }, { medianMs: number; matches: number }]
const ratio = large.medianMs / baseline.medianMs

console.log(`indexed: ${ACTIVITY_ADDRESSES} activity addresses (${activity.watches.length} watches) + ${LOG_WATCHES} evm.logs watches`)
console.log(`block: ${TXS} txs, ${LOGS} logs; matches: ${large.matches} (large index), ${baseline.matches} (100 watches)`)
console.log(`median match time: ${large.medianMs.toFixed(3)} ms (target <= 5 ms) ${large.medianMs <= 5 ? 'OK' : 'OVER'}`)
console.log(`100 watches: ${baseline.medianMs.toFixed(3)} ms; ratio ${ratio.toFixed(2)} (target <= 2) ${ratio <= 2 ? 'OK' : 'OVER'}`)
console.log(`heap per indexed address: ${bytesPerAddress.toFixed(0)} bytes (target <= 300) ${bytesPerAddress <= 300 ? 'OK' : 'OVER'}`)
