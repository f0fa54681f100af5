import t, { type Test } from 'tap'
import { startFakeChain, ADDRESS, type FakeChain } from './helpers/fake-chain.js'
import { FAST, harness, type Harness } from './helpers/subscriber-harness.js'
import { startRedis } from './helpers/processes.js'
import type { RunningSubscriber } from '../workers/subscriber.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

/** Polls a state that has no event of its own (the follower's view of the node), until it holds. */
async function until(holds: () => boolean): Promise<void> {
  while (!holds()) await new Promise((resolve) => setTimeout(resolve, 10))
}

interface Setup { chain: FakeChain; h: Harness; sub: RunningSubscriber; watchId: string }

async function setup(t: Test, options: { newChainEachRun?: boolean; standby?: boolean; requestTimeoutMs?: number } = {}): Promise<Setup> {
  const chain = await startFakeChain()
  t.teardown(() => Promise.all([chain.node.close(), chain.standby.close()]))
  const h = harness(t, redisServer.url, { ws: [chain.node.wsUrl, ...(options.standby ? [chain.standby.wsUrl] : [])], http: '' },
    options.newChainEachRun ? { newChainEachRun: true } : {})
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address: ADDRESS } })
  // Started on block 1, so that the first event is block 1's in every test.
  chain.mine(1)
  const socket = { ...FAST.evm!.socket, ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}) }
  const sub = await h.startSubscriber({ ...FAST, evm: { socket } })
  await h.caughtUp(sub, 1)
  return { chain, h, sub, watchId: watch.id }
}

/** What the watch's receiver is sent: each event's type and transaction, in order. */
async function received(s: Setup): Promise<string[]> {
  return (await s.h.records(s.watchId)).map((r) => `${r.type} ${(r.data.log as { transactionHash: string }).transactionHash}`)
}
const canonical = (chain: FakeChain, from: number) => chain.canonicalTxHashes().slice(from - 1).map((tx) => `evm.log ${tx}`)

t.test('a node whose head falls back and that has no blocks above it: nothing retracted, nothing lost', async (t) => {
  const s = await setup(t)
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  await s.h.caughtUp(s.sub, s.chain.mine(8))
  s.chain.lag(5)
  const seen = s.chain.latestRequests(2)
  s.chain.head()
  s.chain.head()
  await seen
  t.equal(s.sub.notReadyReason(), undefined, 'a lagging node is still a live connection')
  s.chain.lag(0)
  await s.h.caughtUp(s.sub, s.chain.mine(2))
  t.same(await received(s), canonical(s.chain, 1), 'every canonical block once, no evm.log.removed')
})

t.test('blocks served with a zero parent hash (hardhat_mine) are read again, not taken for a reorg', async (t) => {
  const s = await setup(t)
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  s.chain.zeroParent(s.chain.blocks.length, 3)
  await s.h.caughtUp(s.sub, s.chain.mine(3))
  t.same(await received(s), canonical(s.chain, 1))
})

t.test('a node on another chain id: not followed, /readyz names it; followed again once it is back', async (t) => {
  const s = await setup(t)
  await s.h.caughtUp(s.sub, s.chain.mine(2))
  const driver = await s.h.leader(s.sub)
  s.chain.chainId = '0x1'
  const checked = s.chain.chainIdRequests(1)
  driver.socket.failover('test: a new connection')
  await checked
  await until(() => s.sub.notReadyReason() !== undefined)
  t.match(s.sub.notReadyReason(), /^chain local: the node serves chain id 1 with genesis 0x\w+, but the cursor was built on chain id 31337/)
  s.chain.mine(2)
  s.chain.chainId = '0x7a69'
  driver.socket.failover('test: back on the right node')
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  t.equal(s.sub.notReadyReason(), undefined)
  t.same(await received(s), canonical(s.chain, 1), 'every block once, nothing lost')
})

t.test('dev: a node restarted on a fresh chain is followed again from its new head', async (t) => {
  const s = await setup(t, { newChainEachRun: true })
  await s.h.caughtUp(s.sub, s.chain.mine(6))
  const before = await received(s)
  t.same(before, canonical(s.chain, 1))
  s.chain.restart()
  const driver = await s.h.leader(s.sub)
  s.chain.mine(2)
  driver.socket.failover('test: the node restarted')
  await until(() => driver.follower!.cursor!.number < 6)
  const head = s.chain.mine(2)
  await s.h.caughtUp(s.sub, head)
  const after = (await received(s)).slice(before.length)
  t.same(after, canonical(s.chain, 2), 'the new chain from its head at the restart, no retraction of the old one')
})

t.test('floods, huge nested frames and huge hex values cost no event and do not stop the process', async (t) => {
  const s = await setup(t)
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  const big = 'x'.repeat(400_000)
  for (let i = 0; i < 100; i++) s.chain.sendRaw(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: `0x${i}`, result: big } }))
  s.chain.sendRaw(`${'['.repeat(200_000)}${']'.repeat(200_000)}`)
  s.chain.hugeHex(s.chain.blocks.length, 1_000_000, 2)
  await s.h.caughtUp(s.sub, s.chain.mine(3))
  t.same(await received(s), canonical(s.chain, 1))
  t.equal(s.sub.notReadyReason(), undefined)
  t.equal((await s.h.leader(s.sub)).socket.reconnects, 0, 'dropped input does not cost the connection')
})

t.test('a node that sends heads but answers nothing: the next endpoint takes over', async (t) => {
  const s = await setup(t, { standby: true, requestTimeoutMs: 500 })
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  const driver = await s.h.leader(s.sub)
  const moved = new Promise<void>((resolve) => driver.socket.on('connected', (info) => { if (info.endpoint === s.chain.standby.wsUrl) resolve() }))
  s.chain.silent = true
  s.chain.mine(1)
  await moved
  await s.h.caughtUp(s.sub, s.chain.mine(2))
  t.same(await received(s), canonical(s.chain, 1))
})

t.test('lastHeadAt moves only with a new head: the same head read again, even by a new process, leaves it (a stalled chain stays stalled)', async (t) => {
  const s = await setup(t)
  const status = () => s.h.redis.hgetall(s.h.keys.chainStatus('local'))
  await s.h.caughtUp(s.sub, s.chain.mine(1))
  // The status write is coalesced: wait for the one that carries block 2.
  let moved: Record<string, string>
  for (moved = await status(); moved.headNumber !== '2'; moved = await status()) await new Promise((resolve) => setTimeout(resolve, 10))

  // Heads for a block already seen (a node re-announcing it, a reconnect's first read).
  const seen = s.chain.latestRequests(3)
  for (let i = 0; i < 3; i++) s.chain.head()
  await seen
  await s.sub.close()
  t.equal((await status()).lastHeadAt, moved.lastHeadAt, 'reading the same head again is not a new head')

  const next = await s.h.startSubscriber()
  await s.h.caughtUp(next, 2)
  await next.close()
  t.equal((await status()).lastHeadAt, moved.lastHeadAt, 'nor is a new process finding the head its predecessor saw')

  const again = await s.h.startSubscriber()
  await s.h.caughtUp(again, s.chain.mine(1))
  await again.close()
  const after = await status()
  t.equal(after.headNumber, '3')
  t.ok(Date.parse(after.lastHeadAt!) > Date.parse(moved.lastHeadAt!), 'a new block moves it')
})
