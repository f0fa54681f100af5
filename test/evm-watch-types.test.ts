import t from 'tap'
import { QueueEvents } from 'bullmq'
import { pad, parseEther, type Address } from 'viem'
import { foundry } from 'viem/chains'
import { DELIVERY_QUEUE } from '../src/delivery/delivery-queue.js'
import { webhookId } from '../src/domain/ids.js'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { startAnvil, startRedis } from './helpers/processes.js'
import { ACCOUNTS, anvilClients, deploy, send } from './helpers/contracts.js'
import { CHAIN, harness, rpc } from './helpers/subscriber-harness.js'

const redisServer = await startRedis()
const anvil = await startAnvil(['--no-mining'])
t.teardown(async () => { await anvil.stop(); await redisServer.stop() })
const clients = anvilClients(anvil.url)
const mineNow = async () => { await rpc(anvil.url, 'evm_mine') }

const ALICE = ACCOUNTS[0]
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const CAROL = '0x00000000000000000000000000000000000000c0' as Address
const OTHER_TOPIC = `0x${'ab'.repeat(32)}`

const token = await deploy(clients, 'TestToken', mineNow)
const nft = await deploy(clients, 'TestNft', mineNow)
const multi = await deploy(clients, 'TestMulti', mineNow)

interface NodeLog { transactionHash: string; logIndex: string; blockHash: string; [k: string]: unknown }

t.test('evm.logs: eth_getLogs topic semantics (null, OR, length) and ABI decoding, payload as the node sent it', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const decoded = await h.createWatch({
    type: 'evm.logs',
    filter: { address: token.toUpperCase().replace('0X', '0x'), abi: ['event Transfer(address indexed from, address indexed to, uint256 value)'] },
  })
  const toBobOrCarol = await h.createWatch({ type: 'evm.logs', filter: { topics: [TRANSFER_TOPIC, null, [pad(BOB), pad(CAROL)]] } })
  const fromAlice = await h.createWatch({ type: 'evm.logs', filter: { address: [token, nft], topics: [TRANSFER_TOPIC, pad(ALICE)] } })
  const otherEvent = await h.createWatch({ type: 'evm.logs', filter: { topics: [[OTHER_TOPIC]] } })
  const fourTopics = await h.createWatch({ type: 'evm.logs', filter: { address: token, topics: [null, null, null, null] } })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())

  await send(clients, token, 'TestToken', 'mint', [ALICE, 1000n])
  await send(clients, token, 'TestToken', 'transfer', [BOB, 5n])
  await send(clients, token, 'TestToken', 'transfer', [CAROL, 7n])
  const block = await h.mine()
  await h.caughtUp(sub, block)

  const header = await clients.public.getBlock({ blockNumber: BigInt(block) })
  const nodeLogs = await rpc<NodeLog[]>(anvil.url, 'eth_getLogs', [{ blockHash: header.hash }])
  t.equal(nodeLogs.length, 3)

  const all = await h.records(decoded.id)
  t.equal(all.length, 3, 'every Transfer of the token')
  all.forEach((record, i) => {
    const log = nodeLogs[i]!
    t.equal(record.type, 'evm.log')
    t.same(record.data.log, log, 'the log as the node sent it')
    t.same(record.data.block, { number: block, hash: header.hash, timestamp: Number(header.timestamp) })
    t.equal(record.data.eventKey, `${CHAIN}:${log.transactionHash}:${Number(log.logIndex)}`)
    t.equal(record.data.confirmations, 0)
    t.equal(record.id, webhookId(decoded.id, [CHAIN, header.hash, log.transactionHash, String(Number(log.logIndex)), 'evm.log']))
    t.equal(record.timestamp, new Date(Number(header.timestamp) * 1000).toISOString())
  })
  t.same(all.map((r) => r.data.decoded), [
    { name: 'Transfer', args: { from: '0x0000000000000000000000000000000000000000', to: ALICE, value: '1000' } },
    { name: 'Transfer', args: { from: ALICE, to: BOB, value: '5' } },
    { name: 'Transfer', args: { from: ALICE, to: CAROL, value: '7' } },
  ])
  for (const record of all) t.ok(await h.jobExists(record.id), 'queued with the webhook-id as job id')

  t.same((await h.records(toBobOrCarol.id)).map((r) => (r.data.log as NodeLog).transactionHash), [nodeLogs[1]!.transactionHash, nodeLogs[2]!.transactionHash])
  t.notOk((await h.records(toBobOrCarol.id))[0]!.data.decoded, 'no abi, no decoded')
  t.equal((await h.records(fromAlice.id)).length, 2, 'topic position 1 = alice')
  t.equal((await h.records(otherEvent.id)).length, 0)
  t.equal((await h.records(fourTopics.id)).length, 0, 'a log with fewer topics than the filter does not match')
})

t.test('evm.transactions (from/to, status, selector), evm.address_activity (external, ERC-20/721/1155) and evm.blocks', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const toBob = await h.createWatch({ type: 'evm.transactions', filter: { to: [BOB] } })
  const aliceTransfers = await h.createWatch({ type: 'evm.transactions', filter: { from: [ALICE], selector: ['0xa9059cbb'], status: 'success' } })
  const failedToToken = await h.createWatch({ type: 'evm.transactions', filter: { to: [token], status: 'failed' } })
  const bobActivity = await h.createWatch({ type: 'evm.address_activity', filter: { addresses: [BOB, CAROL] } })
  const blocks = await h.createWatch({ type: 'evm.blocks', filter: {} })
  const sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())

  const ethTx = await clients.wallet.sendTransaction({ account: ALICE, chain: foundry, to: BOB, value: parseEther('1.5') })
  const erc20Tx = await send(clients, token, 'TestToken', 'transfer', [BOB, 3n])
  const failedTx = await clients.wallet.writeContract({
    address: token, abi: [{ type: 'function', name: 'transfer', stateMutability: 'nonpayable', inputs: [{ name: 'to', type: 'address' }, { name: 'v', type: 'uint256' }], outputs: [{ type: 'bool' }] }],
    functionName: 'transfer', args: [BOB, 10n ** 30n], account: ALICE, chain: foundry, gas: 200_000n,
  })
  const nftTx = await send(clients, nft, 'TestNft', 'mint', [BOB, 42n])
  const singleTx = await send(clients, multi, 'TestMulti', 'mint', [CAROL, 7n, 3n])
  const batchTx = await send(clients, multi, 'TestMulti', 'mintBatch', [BOB, [1n, 2n], [10n, 20n]])
  const block = await h.mine()
  await h.caughtUp(sub, block)
  const nodeBlock = await rpc<Record<string, unknown> & { hash: string; transactions: { hash: string }[] }>(anvil.url, 'eth_getBlockByNumber', [`0x${block.toString(16)}`, true])
  const failedReceipt = await clients.public.getTransactionReceipt({ hash: failedTx })
  t.equal(failedReceipt.status, 'reverted')

  const [ethRecord, ...restToBob] = await h.records(toBob.id)
  t.equal(restToBob.length, 0, 'only the plain transfer is sent to bob')
  t.equal(ethRecord!.type, 'evm.transaction')
  t.same(ethRecord!.data.transaction, nodeBlock.transactions.find((tx) => tx.hash === ethTx), 'the transaction as the node sent it')
  t.same(ethRecord!.data.receipt, { status: 'success', gasUsed: '21000', contractAddress: null })
  t.equal(ethRecord!.data.eventKey, `${CHAIN}:${ethTx}`)

  t.same((await h.records(aliceTransfers.id)).map((r) => (r.data.transaction as { hash: string }).hash), [erc20Tx], 'selector and status')
  const failed = await h.records(failedToToken.id)
  t.same(failed.map((r) => (r.data.transaction as { hash: string }).hash), [failedTx])
  t.same(failed[0]!.data.receipt, { status: 'failed', gasUsed: failedReceipt.gasUsed.toString(), contractAddress: null })

  const activity = (await h.records(bobActivity.id)).map((r) => ({ type: r.type, ...(r.data.activity as object) }))
  t.same(activity, [
    { type: 'evm.activity', category: 'external', from: ALICE, to: BOB, value: parseEther('1.5').toString(), tokenId: null, contract: null, transactionHash: ethTx, logIndex: null },
    { type: 'evm.activity', category: 'external', from: ALICE, to: token, value: '0', tokenId: null, contract: null, transactionHash: erc20Tx, logIndex: null },
    { type: 'evm.activity', category: 'erc20', from: ALICE, to: BOB, value: '3', tokenId: null, contract: token, transactionHash: erc20Tx, logIndex: 0 },
    { type: 'evm.activity', category: 'erc721', from: '0x0000000000000000000000000000000000000000', to: BOB, value: null, tokenId: '42', contract: nft, transactionHash: nftTx, logIndex: 1 },
    { type: 'evm.activity', category: 'erc1155', from: '0x0000000000000000000000000000000000000000', to: CAROL, value: '3', tokenId: '7', contract: multi, transactionHash: singleTx, logIndex: 2 },
    { type: 'evm.activity', category: 'erc1155', from: '0x0000000000000000000000000000000000000000', to: BOB, value: '10', tokenId: '1', contract: multi, transactionHash: batchTx, logIndex: 3 },
    { type: 'evm.activity', category: 'erc1155', from: '0x0000000000000000000000000000000000000000', to: BOB, value: '20', tokenId: '2', contract: multi, transactionHash: batchTx, logIndex: 3 },
  ].filter((a) => a.category !== 'external' || a.to === BOB), 'alice→token calls are not bob\'s activity')
  const keys = (await h.records(bobActivity.id)).map((r) => r.data.eventKey)
  t.equal(new Set(keys).size, keys.length, 'each token id of a batch has its own eventKey')

  const blockRecords = await h.records(blocks.id)
  const last = blockRecords[blockRecords.length - 1]!
  t.equal(last.type, 'evm.block')
  const { transactions: _txs, ...header } = nodeBlock
  t.same(last.data.header, header, 'the header as the node sent it')
  t.equal(blockRecords.length, 2, 'one per block since the start')
})

t.test('evm.pending_transactions: a mempool transaction is delivered before it is mined', async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.pending_transactions', filter: { to: [CAROL] } })
  const sub = await h.startSubscriber()
  const chain = await h.leader(sub)
  await chain.pendingTransactions!.ready
  const connection = h.redis.duplicate()
  const events = new QueueEvents(DELIVERY_QUEUE, { connection, prefix: h.keys.shardTag(0) })
  t.teardown(async () => { await events.close(); connection.disconnect() })
  await events.waitUntilReady()
  const waiting = new Promise<string>((resolve) => events.on('waiting', ({ jobId }) => resolve(jobId)))

  const hash = await clients.wallet.sendTransaction({ account: ALICE, chain: foundry, to: CAROL, value: 1n })
  const expected = webhookId(watch.id, [CHAIN, '', hash, 'pending', 'evm.pending_transaction'])
  t.equal(await waiting, expected)
  const [record] = await h.records(watch.id)
  t.equal(record!.type, 'evm.pending_transaction')
  t.match(record!.data.transaction, { hash, to: CAROL, blockHash: null })
  await h.mine()
})
