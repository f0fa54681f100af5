import t from 'tap'
import { TRANSFER_BATCH_TOPIC, TRANSFER_TOPIC, decodeTokenTransfers } from '../src/chains/evm/abi.js'
import { removedEvent } from '../src/chains/evm/payloads.js'
import type { RpcBlock, RpcLog } from '../src/chains/evm/rpc-types.js'
import { EvmWatchIndex } from '../src/chains/evm/watch-index.js'
import type { TopicFilter, Watch } from '../src/domain/watch-types.js'

/** A seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return state / 2 ** 32
  }
}

const ADDRESSES = Array.from({ length: 6 }, (_, i) => `0x${String(i + 1).repeat(40)}`)
const TOPICS = Array.from({ length: 5 }, (_, i) => `0x${String.fromCharCode(97 + i).repeat(64)}`)
const BLOCK_HASH = `0x${'f'.repeat(64)}`

function logsWatch(id: string, filter: { address?: string | string[]; topics?: TopicFilter[] }): Watch {
  return {
    id, tenantId: 'ten_t', chain: 'c', type: 'evm.logs', filter, url: 'https://example.com', status: 'active',
    confirmations: 0, createdAt: '', updatedAt: '',
  }
}

/** eth_getLogs as geth applies it, written the naive way. */
function reference(filter: { address?: string | string[]; topics?: TopicFilter[] }, log: RpcLog): boolean {
  if (filter.address !== undefined) {
    const list = Array.isArray(filter.address) ? filter.address : [filter.address]
    if (!list.includes(log.address)) return false
  }
  const topics = filter.topics ?? []
  if (topics.length > log.topics.length) return false
  return topics.every((wanted, i) => wanted === null || (Array.isArray(wanted) ? wanted : [wanted]).includes(log.topics[i]!))
}

function block(logs: RpcLog[]): { block: RpcBlock; logs: RpcLog[] } {
  return { block: { number: '0x1', hash: BLOCK_HASH, parentHash: BLOCK_HASH, timestamp: '0x1', transactions: [] }, logs }
}

t.test('log matching agrees with eth_getLogs semantics on generated filters and logs, also after removals', async (t) => {
  const next = random(42)
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!
  const topicFilter = (): TopicFilter => {
    const r = next()
    return r < 0.3 ? null : r < 0.6 ? pick(TOPICS) : TOPICS.filter(() => next() < 0.5).concat(pick(TOPICS))
  }
  const watches = Array.from({ length: 300 }, (_, i) => {
    const r = next()
    const address = r < 0.3 ? undefined : r < 0.6 ? pick(ADDRESSES) : ADDRESSES.filter(() => next() < 0.4).concat(pick(ADDRESSES))
    const topics = next() < 0.2 ? undefined : Array.from({ length: Math.floor(next() * 5) }, topicFilter)
    return logsWatch(`wch_${i}`, { ...(address ? { address } : {}), ...(topics ? { topics } : {}) })
  })
  const logs: RpcLog[] = Array.from({ length: 200 }, (_, i) => ({
    address: pick(ADDRESSES), topics: Array.from({ length: Math.floor(next() * 5) }, () => pick(TOPICS)), data: '0x',
    blockNumber: '0x1', blockHash: BLOCK_HASH, transactionHash: `0x${i.toString(16).padStart(64, '0')}`, transactionIndex: '0x0',
    logIndex: `0x${i.toString(16)}`,
  }))
  const index = new EvmWatchIndex('c', 0)
  for (const w of watches) index.upsert(w)

  const check = (active: Watch[], label: string) => {
    const expected = new Set<string>()
    for (const log of logs) {
      for (const w of active) if (reference(w.filter as never, log)) expected.add(`${w.id} ${log.logIndex}`)
    }
    const actual = index.matchBlock(block(logs), 0).map((m) => `${m.event.watchId} ${(m.event.data.log as RpcLog).logIndex}`)
    t.equal(actual.length, new Set(actual).size, `${label}: no event twice`)
    t.same(new Set(actual), expected, `${label}: same matches as the reference (${expected.size})`)
  }
  check(watches, 'all watches')
  const removed = watches.filter((_, i) => i % 2 === 0)
  for (const w of removed) index.remove(w.id)
  index.upsert({ ...watches[1]!, status: 'paused' })
  check(watches.filter((w, i) => i % 2 === 1 && i !== 1), 'after removing half and pausing one')
})

t.test('address activity: a watch holding both sides of a transfer gets it once; malformed transfers are ignored', async (t) => {
  const [alice, bob] = ADDRESSES as [string, string]
  const index = new EvmWatchIndex('c', 0)
  index.upsert({ ...logsWatch('wch_a', {}), type: 'evm.address_activity', filter: { addresses: [alice, bob] } } as Watch)
  const word = (a: string) => `0x${a.slice(2).padStart(64, '0')}`
  const transfer: RpcLog = {
    address: ADDRESSES[5]!, topics: [TRANSFER_TOPIC, word(alice), word(bob)], data: word('0x05'), blockNumber: '0x1',
    blockHash: BLOCK_HASH, transactionHash: `0x${'1'.repeat(64)}`, transactionIndex: '0x0', logIndex: '0x0',
  }
  const truncated: RpcLog = { ...transfer, logIndex: '0x1', data: '0x05' }
  const badBatch: RpcLog = { ...transfer, logIndex: '0x2', topics: [TRANSFER_BATCH_TOPIC, word(alice), word(alice), word(bob)], data: `0x${'f'.repeat(128)}` }
  const matches = index.matchBlock(block([transfer, truncated, badBatch]), 0)
  t.same(matches.map((m) => m.event.data.activity), [{
    category: 'erc20', from: alice, to: bob, value: '5', tokenId: null, contract: ADDRESSES[5], transactionHash: transfer.transactionHash, logIndex: 0,
  }])
  t.same(decodeTokenTransfers(truncated), [])
  t.same(decodeTokenTransfers(badBatch), [])
})

t.test('a removed event has its own id, retracts the original and marks the log removed', async (t) => {
  const index = new EvmWatchIndex('c', 0)
  index.upsert(logsWatch('wch_r', { address: ADDRESSES[0] }))
  const log: RpcLog = {
    address: ADDRESSES[0]!, topics: [], data: '0x', blockNumber: '0x1', blockHash: BLOCK_HASH,
    transactionHash: `0x${'2'.repeat(64)}`, transactionIndex: '0x0', logIndex: '0x3', removed: false,
  }
  const [match] = index.matchBlock(block([log]), 0)
  const removed = removedEvent(match!.event, 5)!
  t.equal(removed.type, 'evm.log.removed')
  t.not(removed.id, match!.event.id)
  t.equal(removed.data.retracts, match!.event.id)
  t.equal(removed.data.eventKey, `c:${log.transactionHash}:3`)
  t.match(removed.data.log, { removed: true, logIndex: '0x3' })
  t.equal((match!.event.data.log as RpcLog).removed, false, 'the original is left as it was')
})
