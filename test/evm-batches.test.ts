/**
 * `"batch": "block"` watches on a real anvil and Redis: one evm.batch per block holding each event
 * as it would have been sent alone, parts under 256 KiB that stay the same after a restart, and
 * evm.batch.removed when the block is dropped.
 */
import t from 'tap'
import type { Address } from 'viem'
import { MAX_BATCH_BODY_BYTES } from '../src/chains/evm/batches.js'
import { renderWebhookBody, type DeliveryRecord } from '../src/delivery/delivery-record.js'
import { webhookId } from '../src/domain/ids.js'
import { CHAIN, harness, rpc, sprayBlock, startTokenChain } from './helpers/subscriber-harness.js'

const { redisServer, anvil, token, transferWatch } = await startTokenChain(t, 1_000_000n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address

interface Log { transactionHash: string; logIndex: string; blockHash: string }
interface Item { id: string; type: string; eventKey: string; log: Log }

const spray = (count: number) => sprayBlock(anvil.url, token, BOB, count)

const items = (records: DeliveryRecord[]) => records.flatMap((r) => r.data.events as Item[])

t.test('a block of 50 matching logs is one evm.batch holding each event as it would have been sent alone', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const batched = await h.createWatch({ ...transferWatch, batch: 'block' })
  const single = await h.createWatch(transferWatch)
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())
  const block = await spray(50)
  await h.caughtUp(sub, block)

  const [batch, ...more] = await h.records(batched.id)
  t.same(more, [], 'one webhook for the block')
  t.equal(batch!.type, 'evm.batch')
  const body = JSON.parse(renderWebhookBody(batch!)) as { data: Record<string, unknown> }
  t.same(Object.keys(body.data), ['watchId', 'chain', 'sequence', 'confirmations', 'block', 'events', 'part', 'parts'])
  t.match(body.data, { watchId: batched.id, chain: CHAIN, sequence: 1, confirmations: 0, part: 1, parts: 1, block: { number: block } })
  const alone = await h.records(single.id)
  t.equal(alone.length, 50)
  const events = body.data.events as Item[]
  t.same(events.map((e) => e.log), alone.map((r) => r.data.log), 'the logs as the node sent them, in order')
  events.forEach((e, i) => {
    const { block: _block, confirmations: _confirmations, ...fields } = alone[i]!.data
    t.same(e, { id: webhookId(batched.id, [CHAIN, e.log.blockHash, e.log.transactionHash, String(Number(e.log.logIndex)), 'evm.log']), type: 'evm.log', ...fields })
  })
  t.ok(await h.jobExists(batch!.id), 'queued under the batch webhook-id')
})

t.test('a block of 700 logs goes in parts under 256 KiB, in order, and the same parts after a restart', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const batched = await h.createWatch({ ...transferWatch, batch: 'block' })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())
  const block = await spray(700)
  await h.caughtUp(sub, block)

  const parts = await h.records(batched.id)
  t.ok(parts.length >= 2, `${parts.length} parts`)
  parts.forEach((part, i) => {
    t.ok(Buffer.byteLength(renderWebhookBody(part)) < MAX_BATCH_BODY_BYTES, `part ${i + 1} under 256 KiB`)
    t.match(part.data, { part: i + 1, parts: parts.length })
  })
  const all = items(parts)
  t.equal(all.length, 700)
  t.same(all.map((e) => Number(e.log.logIndex)), Array.from({ length: 700 }, (_, i) => i), 'every log once, in order')
  t.equal(new Set(parts.map((p) => p.id)).size, parts.length, 'each part its own webhook-id')

  // A fresh start at the head matches the block again: the same parts, so nothing new is queued.
  await sub.close()
  await h.redis.del(h.keys.chainCursor(CHAIN), h.keys.chainRecentBlocks(CHAIN))
  const again = await h.startSubscriber()
  await h.caughtUp(again, block)
  t.same((await h.records(batched.id)).map((r) => r.id), parts.map((r) => r.id))
})

t.test('a batched block dropped by anvil_reorg is retracted with evm.batch.removed', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const batched = await h.createWatch({ ...transferWatch, batch: 'block' })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())
  const block = await spray(3)
  await h.caughtUp(sub, block)
  const [batch] = await h.records(batched.id)

  await rpc(anvil.url, 'anvil_reorg', [1, []])
  await h.caughtUp(sub, await h.mine())
  const records = await h.records(batched.id)
  t.same(records.map((r) => r.type), ['evm.batch', 'evm.batch.removed'])
  const removed = records[1]!
  t.equal(removed.data.retracts, batch!.id)
  t.same(removed.data.events, items([batch!]).map((e) => e.id), 'the ids it takes back')
  t.match(removed.data, { part: 1, parts: 1, block: { number: block } })
  t.ok(await h.jobExists(removed.id))
})
