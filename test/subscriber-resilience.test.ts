import t from 'tap'
import type { Address } from 'viem'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { startAnvil } from './helpers/processes.js'
import { send } from './helpers/contracts.js'
import { FAST, harness, loggedTxHashes, rpc, startTokenChain, type Harness } from './helpers/subscriber-harness.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
import { startFakeNode } from './helpers/fake-evm-node.js'

const { redisServer, anvil, clients, token, transferWatch } = await startTokenChain(t, 10n ** 24n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const txHashes = loggedTxHashes

/** Sends `count` transfers, one block each, straight to anvil; returns their hashes and the last block. */
async function transfers(h: Harness, count: number): Promise<{ hashes: string[]; last: number }> {
  const hashes: string[] = []
  let last = 0
  for (let i = 0; i < count; i++) {
    hashes.push(await send(clients, token, 'TestToken', 'transfer', [BOB, BigInt(i + 1)]))
    last = await h.mine()
  }
  return { hashes, last }
}

t.test('blocks mined while the subscriber is stopped are all queued after it starts, none twice', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const instant = await h.createWatch(transferWatch)
  const confirmed = await h.createWatch({ ...transferWatch, confirmations: 3 })
  const first = await h.startSubscriber()
  await h.caughtUp(first, await h.mine())
  const before = await transfers(h, 2)
  await h.caughtUp(first, before.last)
  await first.close()

  const whileStopped = await transfers(h, 12)
  const second = await h.startSubscriber()
  await h.caughtUp(second, whileStopped.last)
  const all = [...before.hashes, ...whileStopped.hashes]
  t.same(await txHashes(h, instant.id), all, 'every transfer, in order, once')
  t.same(await txHashes(h, confirmed.id), all.slice(0, -3), 'the ones 3 deep, including those waiting at the stop')
  await second.close()

  const third = await h.startSubscriber()
  const head = await h.mine()
  await h.caughtUp(third, head)
  t.same(await txHashes(h, instant.id), all, 'a restart queues nothing twice')
  t.same(await txHashes(h, confirmed.id), all.slice(0, -2))
  const sequences = (await h.records(instant.id)).map((r) => r.sequence)
  t.same(sequences, all.map((_, i) => i + 1), 'no sequence number spent on a duplicate')
})

t.test('a connection cut mid-stream: reconnect, resubscribe, backfill what was mined meanwhile', async (t) => {
  const proxy = await startTcpProxy(anvil.port)
  t.teardown(() => proxy.close())
  const h = harness(t, redisServer.url, { ws: [proxy.wsUrl], http: anvil.url })
  const watch = await h.createWatch(transferWatch)
  // A slow first retry, so that the blocks below are mined while disconnected: only the backfill can find them.
  const value = async (metric: { get(): Promise<{ values: { value: number; labels: object }[] }> }) =>
    (await metric.get()).values.map((v) => [v.labels, v.value])
  const sub = await h.startSubscriber({ ...FAST, evm: { socket: { backoffInitialMs: 600, backoffMaxMs: 600 } } })
  const metrics = sub.metrics
  const chain = await h.leader(sub)
  await h.caughtUp(sub, await h.mine())
  t.same(await value(metrics.wsReconnects), [[{ chain: 'local' }, 0]], 'the reconnect counter is exposed at 0 before any reconnect')
  // Long connected by now: the next `connected` is the reconnect.
  const reconnected = new Promise<void>((resolve) => chain.socket.on('connected', () => resolve()))
  proxy.cut()
  const missed = await transfers(h, 3)
  await reconnected
  await h.caughtUp(sub, missed.last)
  t.same(await txHashes(h, watch.id), missed.hashes)
  t.equal(proxy.connections, 2)

  const after = await transfers(h, 1)
  await h.caughtUp(sub, after.last)
  t.same(await txHashes(h, watch.id), [...missed.hashes, ...after.hashes], 'newHeads resubscribed')
  t.same(await value(metrics.wsReconnects), [[{ chain: 'local' }, 1]])
  t.same(await value(metrics.eventsMatched), [[{ chain: 'local', type: 'evm.log' }, 4]])
  t.same(await value(metrics.chainHead), [[{ chain: 'local' }, after.last]])
  await chain.socket.close()
  await sub.close()
  const status = await h.redis.hgetall(h.keys.chainStatus('local'))
  t.match(status, { type: 'evm', connected: 'false', endpoint: `ws://127.0.0.1:${proxy.port}`, reconnects: '1', headNumber: String(after.last) })
  t.match(status.lastHeadAt, /^\d{4}-\d\d-\d\dT/)
})

t.test('a link that stops forwarding without closing: the head watchdog reconnects and backfills', async (t) => {
  const ticking = await startAnvil(['--block-time', '1'])
  t.teardown(() => ticking.stop())
  const proxy = await startTcpProxy(ticking.port)
  t.teardown(() => proxy.close())
  const h = harness(t, redisServer.url, { ws: [proxy.wsUrl], http: ticking.url })
  const watch = await h.createWatch({ type: 'evm.blocks', filter: {} })
  // Pings far apart: only the watchdog (3 × the 1 s block time) can notice the hang.
  const sub = await h.startSubscriber({ ...FAST, evm: { socket: { watchdogMs: 3_000, pingIntervalMs: 600_000, backoffInitialMs: 20 } } })
  const chain = await h.leader(sub)
  await h.caughtUp(sub, Number(await rpc<string>(ticking.url, 'eth_blockNumber')))
  // Long connected by now: the next `connected` is the reconnect.
  const reconnected = new Promise<void>((resolve) => chain.socket.on('connected', () => resolve()))
  proxy.stall()
  const stalledAt = chain.follower!.cursor!.number
  await reconnected
  const head = Number(await rpc<string>(ticking.url, 'eth_blockNumber'))
  await h.caughtUp(sub, head)
  const numbers = (await h.records(watch.id)).map((r) => (r.data.block as { number: number }).number)
  t.ok(head > stalledAt, 'blocks went on while the link hung')
  t.same(numbers.filter((n) => n > stalledAt && n <= head), Array.from({ length: head - stalledAt }, (_, i) => stalledAt + 1 + i), 'no block missed')
  t.equal(proxy.connections, 2)
})

t.test('a node sending garbage frames, unknown shapes, a malformed block and removed logs: skipped, retried, no crash', async (t) => {
  // Numbered from 1: a zero hash is no block's, and a zero parent is a node contradicting itself.
  const hash = (n: number) => `0x${(n + 1).toString(16).padStart(64, '0')}`
  const address = '0x00000000000000000000000000000000000000aa'
  const block = (n: number) => ({ number: `0x${n.toString(16)}`, hash: hash(n), parentHash: hash(n - 1), timestamp: '0x6553f100', transactions: [] })
  const log = (n: number, index: number, removed: boolean) => ({
    address, topics: [TRANSFER_TOPIC], data: '0x', blockNumber: `0x${n.toString(16)}`, blockHash: hash(n),
    transactionHash: hash(1000 + index), transactionIndex: '0x0', logIndex: `0x${index.toString(16)}`, removed,
  })
  let head = 1
  let malformedOnce = true
  // Block 2 read in full (by number, or by hash as the head) is malformed the first time.
  const fullBlock = (n: number) => {
    if (n !== 2 || !malformedOnce) return block(n)
    malformedOnce = false
    return { number: 'zz', hash: 'nope' }
  }
  const node = await startFakeNode({
    eth_subscribe: () => '0xaa',
    eth_unsubscribe: () => true,
    eth_getBlockByNumber: ([tag]) => {
      const n = tag === 'latest' ? head : Number(tag)
      if (n > head) return null
      return tag === 'latest' ? block(n) : fullBlock(n)
    },
    eth_getBlockByHash: ([h]) => fullBlock(Number(h) - 1),
    eth_getLogs: ([filter]) => ((filter as { blockHash: string }).blockHash === hash(2) ? [log(2, 0, true), log(2, 1, false)] : []),
  })
  t.teardown(() => node.close())
  const h = harness(t, redisServer.url, { ws: [node.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address } })
  const sub = await h.startSubscriber()
  const chain = await h.leader(sub)
  await h.caughtUp(sub, 1)
  const connection = node.connections[node.connections.length - 1]!
  connection.sendRaw('{"jsonrpc":"2.0","method":')
  connection.sendRaw('\u0000\u0001garbage')
  connection.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'x', result: 1 }))
  connection.notify('0xaa', { number: 'not hex' })
  connection.notify('0xbb', { for: 'an unknown subscription' })
  head = 2
  connection.notify('0xaa', { number: '0x2', hash: hash(2) })
  await h.caughtUp(sub, 2)
  const records = await h.records(watch.id)
  t.same(records.map((r) => (r.data.log as { logIndex: string }).logIndex), ['0x1'], 'the removed log is skipped, the good one delivered')
  t.equal(malformedOnce, false, 'the malformed block was served, then retried rather than skipped')
  t.equal(chain.socket.reconnects, 0, 'garbage does not cost the connection')
  t.equal(sub.notReadyReason(), undefined)
})

t.test('readiness names the chain without a live node connection, never its URL path or key', async (t) => {
  const h = harness(t, redisServer.url, { ws: ['ws://127.0.0.1:9/secret-key?api-key=hidden'], http: anvil.url })
  const sub = await h.startSubscriber()
  t.match(sub.notReadyReason(), /^chain local: no connection to a node \(ws:\/\/127\.0\.0\.1:9\)$/)
})

t.test('a node without eth_getBlockReceipts: receipts are read one transaction at a time', async (t) => {
  const hash = (n: number) => `0x${(n + 1).toString(16).padStart(64, '0')}`
  const sender = '0x00000000000000000000000000000000000000aa'
  const tx = { hash: hash(900), from: sender, to: BOB, input: '0x', value: '0x2a', blockHash: hash(1), blockNumber: '0x1', transactionIndex: '0x0' }
  const block = (n: number) => ({ number: `0x${n.toString(16)}`, hash: hash(n), parentHash: hash(n - 1), timestamp: '0x6553f100', transactions: n === 1 ? [tx] : [] })
  const node = await startFakeNode({
    eth_subscribe: () => '0x1',
    eth_getBlockByNumber: ([tag]) => block(tag === 'latest' ? 1 : Number(tag)),
    eth_getBlockByHash: ([h]) => block(Number(h) - 1),
    eth_getLogs: () => [],
    eth_getTransactionReceipt: ([h]) => ({ transactionHash: h, status: '0x0', gasUsed: '0x5208', contractAddress: null }),
  })
  t.teardown(() => node.close())
  const h = harness(t, redisServer.url, { ws: [node.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.transactions', filter: { from: [sender], status: 'failed' } })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, 1)
  const [record] = await h.records(watch.id)
  t.same(record!.data.transaction, tx)
  t.same(record!.data.receipt, { status: 'failed', gasUsed: '21000', contractAddress: null })
  t.same(node.requests.filter((r) => r.method.endsWith('Receipts') || r.method.endsWith('Receipt')).map((r) => r.method),
    ['eth_getBlockReceipts', 'eth_getTransactionReceipt'])
})
