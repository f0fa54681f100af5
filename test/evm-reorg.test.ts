import t from 'tap'
import type { Address } from 'viem'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { parseLoggedEvent } from '../src/stream/stream-entry.js'
import { send } from './helpers/contracts.js'
import { harness, rpc, startTokenChain } from './helpers/subscriber-harness.js'

const { redisServer, anvil, clients, token } = await startTokenChain(t, 1_000_000n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const CAROL = '0x00000000000000000000000000000000000000c0' as Address

interface Log { transactionHash: string; removed: boolean }

t.test('a reorg retracts what dropped blocks delivered; a confirmations-3 watch only ever sees the new branch', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const filter = { address: token, topics: [TRANSFER_TOPIC] }
  const instant = await h.createWatch({ type: 'evm.logs', filter })
  const confirmed = await h.createWatch({ type: 'evm.logs', filter, confirmations: 3 })
  const blocks = await h.createWatch({ type: 'evm.blocks', filter: {} })
  const sub = await h.startSubscriber()
  const start = await h.mine()
  await h.caughtUp(sub, start)

  const snapshot = await rpc<string>(anvil.url, 'evm_snapshot')
  const dropped = await send(clients, token, 'TestToken', 'transfer', [BOB, 5n])
  const droppedBlock = await h.mine()
  await h.caughtUp(sub, droppedBlock)
  const [first] = await h.records(instant.id)
  t.equal((first!.data.log as Log).transactionHash, dropped)
  t.same(await h.records(confirmed.id), [], 'not yet 3 deep')

  t.equal(await rpc(anvil.url, 'evm_revert', [snapshot]), true)
  const kept = await send(clients, token, 'TestToken', 'transfer', [CAROL, 7n])
  const newBranch = await h.mine()
  t.equal(newBranch, droppedBlock, 'the new block replaces the dropped one at the same height')
  await h.caughtUp(sub, newBranch)
  await h.mine()
  await h.caughtUp(sub, await h.mine())
  t.same(await h.records(confirmed.id), [], '2 deep: still waiting')
  const head = await h.mine()
  await h.caughtUp(sub, head)

  const instantRecords = await h.records(instant.id)
  t.same(instantRecords.map((r) => [r.type, (r.data.log as Log).transactionHash, (r.data.log as Log).removed]), [
    ['evm.log', dropped, false],
    ['evm.log.removed', dropped, true],
    ['evm.log', kept, false],
  ])
  t.equal(instantRecords[1]!.data.retracts, first!.id, 'retracts names the webhook-id taken back')
  t.equal(instantRecords[1]!.data.eventKey, first!.data.eventKey)
  t.not(instantRecords[1]!.id, first!.id)
  for (const record of instantRecords) t.ok(await h.jobExists(record.id))

  const confirmedRecords = await h.records(confirmed.id)
  t.same(confirmedRecords.map((r) => [r.type, (r.data.log as Log).transactionHash]), [['evm.log', kept]], 'never the dropped event')
  t.equal(confirmedRecords[0]!.data.confirmations, 3)

  const blockRecords = await h.records(blocks.id)
  const removedBlocks = blockRecords.filter((r) => r.type === 'evm.block.removed')
  t.equal(removedBlocks.length, 1)
  t.equal((removedBlocks[0]!.data.block as { number: number }).number, droppedBlock)
  const numbers = blockRecords.filter((r) => r.type === 'evm.block').map((r) => (r.data.block as { number: number }).number)
  t.same(numbers, [start, droppedBlock, droppedBlock, droppedBlock + 1, droppedBlock + 2, droppedBlock + 3])
})

t.test('a reorg that happens while the subscriber is stopped is retracted after it starts, and nothing is queued twice', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const instant = await h.createWatch({ type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] } })
  const confirmed = await h.createWatch({ type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, confirmations: 2 })
  const first = await h.startSubscriber()
  await h.caughtUp(first, await h.mine())
  const snapshot = await rpc<string>(anvil.url, 'evm_snapshot')
  const dropped = await send(clients, token, 'TestToken', 'transfer', [BOB, 5n])
  const droppedBlock = await h.mine()
  await h.caughtUp(first, droppedBlock)
  await first.close()

  const droppedHash = ((await h.records(instant.id))[0]!.data.block as { hash: string }).hash
  await rpc(anvil.url, 'evm_revert', [snapshot])
  t.equal(await rpc(anvil.url, 'eth_getBlockByHash', [droppedHash, false]), null,
    'the node has forgotten the dropped block: only what blockhook kept can retract it')
  const kept = await send(clients, token, 'TestToken', 'transfer', [CAROL, 7n])
  await h.mine()
  await h.mine()
  const head = await h.mine()
  const second = await h.startSubscriber()
  await h.caughtUp(second, head)

  t.same((await h.records(instant.id)).map((r) => [r.type, (r.data.log as Log).transactionHash]), [
    ['evm.log', dropped],
    ['evm.log.removed', dropped],
    ['evm.log', kept],
  ])
  t.same((await h.records(confirmed.id)).map((r) => [r.type, (r.data.log as Log).transactionHash]), [['evm.log', kept]])
  await second.close()
  const third = await h.startSubscriber()
  await h.caughtUp(third, await h.mine())
  t.equal((await h.records(instant.id)).length, 3, 'a restart after the reorg queues nothing again')
})

t.test("an ordered watch's retraction takes its turn: held behind the event before it, not queued at once", async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, ordered: true })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())

  const snapshot = await rpc<string>(anvil.url, 'evm_snapshot')
  await send(clients, token, 'TestToken', 'transfer', [BOB, 5n])
  await h.caughtUp(sub, await h.mine())
  t.equal(await rpc(anvil.url, 'evm_revert', [snapshot]), true)
  await send(clients, token, 'TestToken', 'transfer', [CAROL, 7n])
  await h.mine()
  await h.caughtUp(sub, await h.mine())

  // No worker runs: the first event is still pending, so the two after it must wait.
  const records = await h.records(watch.id)
  t.same(records.map((r) => [r.type, r.sequence, r.ordered]), [
    ['evm.log', 1, true], ['evm.log.removed', 2, true], ['evm.log', 3, true],
  ])
  t.same(await Promise.all(records.map((r) => h.jobExists(r.id))), [true, false, false], 'only the first is queued')
  t.same(await h.redis.zrange(h.keys.watchOrderedDeliveries(watch.id), '0', '-1'), records.map((r) => r.id), 'the rest wait in sequence order')
})

t.test('a watch without a url: the events of a dropped block are retracted on its event stream', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, url: undefined })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())

  const snapshot = await rpc<string>(anvil.url, 'evm_snapshot')
  const dropped = await send(clients, token, 'TestToken', 'transfer', [BOB, 5n])
  await h.caughtUp(sub, await h.mine())
  t.equal(await rpc(anvil.url, 'evm_revert', [snapshot]), true)
  const kept = await send(clients, token, 'TestToken', 'transfer', [CAROL, 7n])
  await h.mine()
  await h.caughtUp(sub, await h.mine())

  // What a stream client of the tenant reads (GET /events/stream serves this log).
  const entries = await h.redis.xrange(h.keys.tenantEventLog(watch.tenantId, 0), '-', '+')
  const events = entries.map(([cursor, fields]) => parseLoggedEvent(0, cursor, fields)!).filter((e) => e.watchId === watch.id)
    .map((e) => ({ id: e.id, ...(JSON.parse(e.body) as { type: string; data: { sequence: number; retracts?: string; log: Log } }) }))
  t.same(events.map((e) => [e.type, e.data.sequence, e.data.log.transactionHash]), [
    ['evm.log', 1, dropped], ['evm.log.removed', 2, dropped], ['evm.log', 3, kept],
  ])
  t.equal(events[1]!.data.retracts, events[0]!.id, 'retracts names the id of the event taken back')
  t.same(await h.records(watch.id), [], 'still no delivery record: nothing is sent to a url')
})
