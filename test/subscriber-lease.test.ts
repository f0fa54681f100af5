import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { QueueEvents } from 'bullmq'
import type { Address } from 'viem'
import { DELIVERY_QUEUE, replayJobId } from '../src/delivery/delivery-queue.js'
import { ReplayQueue } from '../src/delivery/replay-requests.js'
import { send } from './helpers/contracts.js'
import { harness, loggedTxHashes, startTokenChain, type Harness } from './helpers/subscriber-harness.js'

const { redisServer, anvil, clients, token, transferWatch } = await startTokenChain(t, 10n ** 24n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const txHashes = loggedTxHashes

async function transfer(h: Harness): Promise<{ hash: string; block: number }> {
  const hash = await send(clients, token, 'TestToken', 'transfer', [BOB, 1n])
  return { hash, block: await h.mine() }
}

t.test('a watch created, paused and deleted while running takes effect as soon as the feed is applied', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const sub = await h.startSubscriber()
  const chain = await h.leader(sub)
  await h.caughtUp(sub, await h.mine())

  const watch = await h.createWatch(transferWatch)
  await chain.watchSet!.whenApplied(await h.feedPosition())
  const seen = await transfer(h)
  await h.caughtUp(sub, seen.block)
  t.same(await txHashes(h, watch.id), [seen.hash], 'created: matched')

  await h.store.update(watch.id, (w) => ({ ...w, status: 'paused' }))
  await chain.watchSet!.whenApplied(await h.feedPosition())
  await h.caughtUp(sub, (await transfer(h)).block)
  t.same(await txHashes(h, watch.id), [seen.hash], 'paused: nothing more')

  await h.store.update(watch.id, (w) => ({ ...w, status: 'active' }))
  await chain.watchSet!.whenApplied(await h.feedPosition())
  const again = await transfer(h)
  await h.caughtUp(sub, again.block)
  t.same(await txHashes(h, watch.id), [seen.hash, again.hash], 'active again: matched')

  const other = await h.createWatch(transferWatch)
  await h.store.delete(watch)
  await chain.watchSet!.whenApplied(await h.feedPosition())
  const last = await transfer(h)
  await h.caughtUp(sub, last.block)
  t.same(await txHashes(h, watch.id), [seen.hash, again.hash], 'deleted: nothing more')
  t.same(await txHashes(h, other.id), [last.hash], 'the others still match')
})

t.test('two subscribers: the standby takes over from the cursor when the leader is killed; nothing lost or queued twice', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch(transferWatch)
  await h.mine() // the leader's first start takes the head block: an empty one
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./helpers/subscriber-process.ts', import.meta.url))], {
    env: { ...process.env, BH_TEST_CONFIG: JSON.stringify(h.config) }, stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  while (!output.includes('leading')) await once(child.stdout!, 'data')

  const standby = await h.startSubscriber()
  const runner = standby.chains.get('local')!
  t.equal(runner.leading, false, 'the lease is held by the other process')

  const connection = h.redis.duplicate()
  const events = new QueueEvents(DELIVERY_QUEUE, { connection, prefix: h.keys.shardTag(0) })
  t.teardown(async () => { await events.close(); connection.disconnect() })
  await events.waitUntilReady()
  const queued = new Promise<void>((resolve) => events.once('waiting', () => resolve()))
  const first = await transfer(h)
  await queued
  t.same(await txHashes(h, watch.id), [first.hash], 'the leader queued it')

  child.kill('SIGKILL')
  await once(child, 'exit')
  const meanwhile = [await transfer(h), await transfer(h), await transfer(h)]
  await h.caughtUp(standby, meanwhile[2]!.block)
  t.equal(runner.leading, true)
  t.same(await txHashes(h, watch.id), [first.hash, ...meanwhile.map((m) => m.hash)], 'every transfer exactly once')
  t.equal(await h.redis.get(h.keys.chainLease('local')) !== null, true)
  t.equal(standby.notReadyReason(), undefined)
})

t.test('a replay request scans its range again for that watch and re-queues each match under its webhook-id', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch(transferWatch)
  const bystander = await h.createWatch(transferWatch)
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())
  const sent = await transfer(h)
  await h.caughtUp(sub, sent.block)
  const [record] = await h.records(watch.id)
  // As the worker records a delivery.
  const at = new Date().toISOString()
  await h.deliveryQueue.store.recordAttempt(record!, { at, statusCode: 200, durationMs: 1, error: null }, 'delivered', null, { ttlMs: 60_000, counts: true }, Date.parse(at))

  const connection = h.redis.duplicate()
  const events = new QueueEvents(DELIVERY_QUEUE, { connection, prefix: h.keys.shardTag(0) })
  t.teardown(async () => { await events.close(); connection.disconnect() })
  await events.waitUntilReady()
  const waiting = new Promise<string>((resolve) => events.once('waiting', ({ jobId }) => resolve(jobId)))
  const replayId = await new ReplayQueue(h.redis, h.keys).request({ watchId: watch.id, tenantId: watch.tenantId, chain: 'local', fromBlock: sent.block - 1, toBlock: sent.block })
  t.equal(await waiting, replayJobId(record!.id, replayId))

  const after = await h.records(watch.id)
  t.same(after.map((r) => [r.id, r.status]), [[record!.id, 'pending']], 'the same webhook-id, pending again, no new record')
  t.equal((await h.records(bystander.id)).length, 1, 'other watches are not replayed')
})
