/**
 * The acceptance session of the EVM subscriber and delivery issues, as a new user lives it: the
 * api, subscriber and worker roles started in this process against a real anvil and a real Redis;
 * a receiver written as the user would write it (node:http, `standardwebhooks` over the raw body,
 * a set of seen webhook-ids, 400 for a bad signature); watches registered through the REST API;
 * then ERC-20 transfers, a reorg that drops an already-delivered transfer, a subscriber restart
 * with blocks mined while it is stopped, and the receiver down (503, then refusing connections)
 * while events occur. Every expectation is computed from the node's own canonical chain.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import type { Address, Hash } from 'viem'
import { foundry } from 'viem/chains'
import { startApi } from '../src/api/server.js'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import type { RunningRole } from '../src/roles.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'
import { ADMIN } from './helpers/api.js'
import { testConfig } from './helpers/config.js'
import { ACCOUNTS, anvilClients, deploy, send } from './helpers/contracts.js'
import { freePort, startAnvil, startRedis } from './helpers/processes.js'
import { CHAIN, FAST, rpc } from './helpers/subscriber-harness.js'

const ALICE = ACCOUNTS[0]
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const CAROL = '0x00000000000000000000000000000000000000c0' as Address
/** Receives transfers too, but no activity watch holds it. */
const DAVE = '0x00000000000000000000000000000000000000d0' as Address
const TRANSFER_ABI = 'event Transfer(address indexed from, address indexed to, uint256 value)'
const TRANSFER_SELECTOR = '0xa9059cbb'

// --- the user's receiver ---------------------------------------------------------------------------

interface Payload {
  type: string
  timestamp: string
  data: Record<string, unknown> & {
    watchId: string
    sequence: number
    eventKey: string
    block: { number: number; hash: string; timestamp: number }
    retracts?: string
  }
}

interface Accepted { path: string; body: string; payload: Payload; headers: IncomingHttpHeaders }

/**
 * What a new user writes: one path per watch, each verified with that watch's secret before
 * anything is read from the body; ids kept so a redelivery is acknowledged but not processed again.
 * `unavailable` answers 503 without looking (the app is down behind its proxy); `refusing` closes
 * the listening socket, so connections are refused, until `resume`.
 */
async function startUserReceiver() {
  const verifiers = new Map<string, Webhook>()
  const accepted = new Map<string, Accepted>()
  /** Requests per webhook-id answered 503, and 2xx answers to an id already accepted. */
  const unavailableAnswers = new Map<string, number>()
  const bodiesSeen = new Map<string, Set<string>>()
  let requests = 0
  let duplicates = 0
  let rejected = 0
  let unavailable = false
  const waiters = new Set<{ done: () => boolean; resolve: () => void }>()
  const notify = () => {
    for (const waiter of waiters) {
      if (waiter.done()) {
        waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const id = String(req.headers['webhook-id'])
      requests++
      if (!bodiesSeen.has(id)) bodiesSeen.set(id, new Set())
      bodiesSeen.get(id)!.add(raw)
      if (unavailable) {
        unavailableAnswers.set(id, (unavailableAnswers.get(id) ?? 0) + 1)
        res.writeHead(503).end()
        notify()
        return
      }
      const verifier = verifiers.get(req.url ?? '')
      let payload: Payload
      try {
        if (!verifier) throw new Error(`no secret for ${req.url}`)
        payload = verifier.verify(raw, headersOf(req.headers)) as Payload
      } catch {
        rejected++
        res.writeHead(400).end()
        return
      }
      if (accepted.has(id)) duplicates++
      else accepted.set(id, { path: req.url!, body: raw, payload, headers: req.headers })
      res.writeHead(200).end()
      notify()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }

  return {
    url: `http://127.0.0.1:${port}`,
    accepted,
    unavailableAnswers,
    bodiesSeen,
    get requests() { return requests },
    get duplicates() { return duplicates },
    get rejected() { return rejected },
    trust(path: string, secret: string) { verifiers.set(path, new Webhook(secret)) },
    /** Resolves once `done` holds, checked after every request; a session that never gets there fails on tap's timeout. */
    until(done: () => boolean): Promise<void> {
      if (done()) return Promise.resolve()
      return new Promise((resolve) => waiters.add({ done, resolve }))
    },
    goUnavailable() { unavailable = true },
    async refuse() {
      const closed = new Promise((resolve) => server.close(resolve))
      server.closeAllConnections()
      await closed
    },
    async resume() {
      unavailable = false
      if (!server.listening) {
        server.listen(port, '127.0.0.1')
        await once(server, 'listening')
      }
    },
    async close() {
      if (!server.listening) return
      await this.refuse()
    },
  }
}

function headersOf(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]))
}

// --- what the node says should arrive ---------------------------------------------------------------

type WatchName = 'logs' | 'activity' | 'transactions'

interface NodeLog { address: string; topics: string[]; data: string; transactionHash: string; logIndex: string; blockHash: string }
interface NodeTransaction { hash: string; from: string; to: string | null; value: string; input: string }
interface NodeBlock { number: string; hash: string; timestamp: string; transactions: NodeTransaction[] }

interface ExpectedEvent {
  watch: WatchName
  type: string
  eventKey: string
  blockHash: string
  blockNumber: number
  blockTimestamp: number
  /** The data fields the payload must carry, as the node reports them. */
  fields: Record<string, unknown>
}

const identity = (type: string, eventKey: string, blockHash: string) => `${type} ${eventKey} ${blockHash}`
const topicAddress = (topic: string) => `0x${topic.slice(26)}`.toLowerCase()

// --- the session -----------------------------------------------------------------------------------

const redisServer = await startRedis()
const anvil = await startAnvil(['--no-mining'])
const clients = anvilClients(anvil.url)
const mine = async (): Promise<number> => {
  await rpc(anvil.url, 'evm_mine')
  return Number(await rpc<string>(anvil.url, 'eth_blockNumber'))
}
const token = await deploy(clients, 'TestToken', async () => { await mine() })
await send(clients, token, 'TestToken', 'mint', [ALICE, 1_000_000n])
await mine()

const transfer = (to: Address, amount: bigint): Promise<Hash> => send(clients, token, 'TestToken', 'transfer', [to, amount])
const payEther = (to: Address, wei: bigint): Promise<Hash> =>
  clients.wallet.sendTransaction({ to, value: wei, account: ALICE, chain: foundry, gas: 21_000n })

/** Every event the three watches should see in blocks `from`..`to` of the node's canonical chain. */
async function expectedEvents(from: number, to: number): Promise<ExpectedEvent[]> {
  const watched = new Set<string>([BOB, CAROL])
  const events: ExpectedEvent[] = []
  for (let n = from; n <= to; n++) {
    const hex = `0x${n.toString(16)}`
    const block = await rpc<NodeBlock>(anvil.url, 'eth_getBlockByNumber', [hex, true])
    const logs = await rpc<NodeLog[]>(anvil.url, 'eth_getLogs', [{ fromBlock: hex, toBlock: hex }])
    const at = { blockHash: block.hash, blockNumber: n, blockTimestamp: Number(block.timestamp) }
    for (const tx of block.transactions) {
      const to = tx.to?.toLowerCase() ?? null
      if (watched.has(tx.from.toLowerCase()) || (to && watched.has(to))) {
        events.push({
          watch: 'activity', type: 'evm.activity', eventKey: `${CHAIN}:${tx.hash}:external`, ...at,
          fields: { activity: { category: 'external', from: tx.from.toLowerCase(), to, value: BigInt(tx.value).toString(), tokenId: null, contract: null, transactionHash: tx.hash, logIndex: null } },
        })
      }
      if (to === token && tx.input.startsWith(TRANSFER_SELECTOR)) {
        const receipt = await rpc<{ status: string; gasUsed: string; contractAddress: string | null }>(anvil.url, 'eth_getTransactionReceipt', [tx.hash])
        events.push({
          watch: 'transactions', type: 'evm.transaction', eventKey: `${CHAIN}:${tx.hash}`, ...at,
          fields: {
            transaction: tx,
            receipt: { status: receipt.status === '0x1' ? 'success' : 'failed', gasUsed: BigInt(receipt.gasUsed).toString(), contractAddress: receipt.contractAddress },
          },
        })
      }
    }
    for (const log of logs) {
      if (log.address.toLowerCase() !== token || log.topics[0] !== TRANSFER_TOPIC) continue
      const logIndex = Number(log.logIndex)
      const [fromParty, toParty, value] = [topicAddress(log.topics[1]!), topicAddress(log.topics[2]!), BigInt(log.data).toString()]
      const eventKey = `${CHAIN}:${log.transactionHash}:${logIndex}`
      events.push({
        watch: 'logs', type: 'evm.log', eventKey, ...at,
        fields: { log, decoded: { name: 'Transfer', args: { from: fromParty, to: toParty, value } } },
      })
      if (watched.has(fromParty) || watched.has(toParty)) {
        events.push({
          watch: 'activity', type: 'evm.activity', eventKey, ...at,
          fields: { activity: { category: 'erc20', from: fromParty, to: toParty, value, tokenId: null, contract: token, transactionHash: log.transactionHash, logIndex } },
        })
      }
    }
  }
  return events
}

t.test('a session of transfers, a reorg, a subscriber restart and a receiver outage: every event once, verified, retracted when dropped', async (t) => {
  const receiver = await startUserReceiver()
  const config = testConfig({
    redisUrl: redisServer.url,
    host: '127.0.0.1',
    port: await freePort(),
    // BLOCKHOOK_ALLOW_PRIVATE_URLS=true: the receiver is on loopback.
    allowPrivateUrls: true,
    file: {
      chains: [{ id: CHAIN, type: 'evm', ws: [anvil.wsUrl], confirmations: 0, blockTimeMs: 1_000 }],
      delivery: { timeoutMs: 5_000, retrySchedule: ['1s', '1s', '2s', '2s', '5s'] },
      // The final checks read every delivery of the outage at once; a user's script would be throttled.
      api: { rateLimitPerSecond: 1_000 },
    },
  })
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const roles: RunningRole[] = []
  let subscriber: RunningRole | undefined
  t.teardown(async () => {
    await subscriber?.close()
    for (const role of roles.reverse()) await role.close()
    await receiver.close()
  })
  roles.push(await startWorker(config, logger.child({ role: 'worker' })))
  roles.push(await startApi(config, logger.child({ role: 'api' })))
  const apiUrl = `http://127.0.0.1:${config.port}`

  // The receiver's verification is real: a forged signature is refused before anything else.
  const forged = await fetch(`${receiver.url}/hooks/logs`, {
    method: 'POST',
    headers: { 'webhook-id': 'evt_forged', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,Zm9yZ2Vk' },
    body: '{}',
  })
  t.equal(forged.status, 400, 'a request the receiver cannot verify is refused')
  t.equal(receiver.rejected, 1)

  // --- the user's side of the API -------------------------------------------------------------------
  async function call<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${apiUrl}${path}`, {
      method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as T }
  }
  const tenant = await call<{ apiKey: string }>('POST', '/admin/tenants', ADMIN, { name: 'new user' })
  t.equal(tenant.status, 201)
  const auth = { authorization: `Bearer ${tenant.body.apiKey}` }

  const filters: Record<WatchName, { type: string; filter: object }> = {
    logs: { type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC], abi: [TRANSFER_ABI] } },
    activity: { type: 'evm.address_activity', filter: { addresses: [BOB, CAROL] } },
    transactions: { type: 'evm.transactions', filter: { to: [token], selector: [TRANSFER_SELECTOR], status: 'success' } },
  }
  const watchIds = {} as Record<WatchName, string>
  const watchOfPath = new Map<string, WatchName>()
  for (const [name, { type, filter }] of Object.entries(filters) as [WatchName, { type: string; filter: object }][]) {
    const path = `/hooks/${name}`
    const created = await call<{ id: string; secret: string; status: string }>('POST', '/watches', auth, {
      chain: CHAIN, type, filter, url: `${receiver.url}${path}`, description: `${name} of the test token`,
    })
    t.equal(created.status, 201, `${type} watch created`)
    t.equal(created.body.status, 'active')
    receiver.trust(path, created.body.secret)
    watchIds[name] = created.body.id
    watchOfPath.set(path, name)
  }

  // The subscriber starts after the watches exist and begins at the head: an empty block, so the
  // session's first event is in the block after it.
  const startBlock = await mine()
  const startSubscriberRole = async () => {
    subscriber = await startSubscriber(config, logger.child({ role: 'subscriber' }), FAST)
  }
  await startSubscriberRole()
  // It follows once /admin/status reports the head it started from (then no block mined is skipped).
  for (;;) {
    const status = await call<{ chains: { id: string; connected: boolean; head: { number: number | null } }[] }>('GET', '/admin/status', ADMIN)
    const chain = status.body.chains.find((c) => c.id === CHAIN)
    if (chain?.connected && (chain.head.number ?? -1) >= startBlock) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  /** Events the node's canonical chain holds after `startBlock`, and those of dropped blocks. */
  const dropped: ExpectedEvent[] = []
  const canonical = async () => expectedEvents(startBlock + 1, Number(await rpc<string>(anvil.url, 'eth_blockNumber')))
  /** Every distinct webhook the session should have brought so far: canonical, dropped, and one retraction per dropped. */
  const awaitSession = async () => {
    const total = (await canonical()).length + 2 * dropped.length
    await receiver.until(() => receiver.accepted.size >= total)
    return total
  }

  // 1. Transfers: to watched holders, to an unwatched one, and plain ether to a watched one.
  await transfer(BOB, 10n)
  await transfer(CAROL, 20n)
  await transfer(DAVE, 30n)
  await payEther(BOB, 1_000n)
  await mine()
  await awaitSession()

  // 2. A reorg: a block with a transfer is delivered, then replaced by a branch without it.
  const snapshot = await rpc<string>(anvil.url, 'evm_snapshot')
  await transfer(BOB, 5n)
  const droppedBlock = await mine()
  const droppedEvents = await expectedEvents(droppedBlock, droppedBlock)
  t.equal(droppedEvents.length, 3, 'the dropped transfer is a log, an activity and a transaction')
  await awaitSession()
  t.equal(await rpc(anvil.url, 'evm_revert', [snapshot]), true)
  dropped.push(...droppedEvents)
  await transfer(CAROL, 7n)
  t.equal(await mine(), droppedBlock, 'the new branch replaces the block at its height')
  await mine()
  await awaitSession()

  // 3. The subscriber stops; blocks with transfers are mined; it starts again from its cursor.
  await subscriber!.close()
  subscriber = undefined
  await transfer(BOB, 1n)
  await mine()
  await transfer(CAROL, 2n)
  await transfer(DAVE, 3n)
  await mine()
  await mine()
  await startSubscriberRole()
  await awaitSession()

  // 4. The receiver is down: first answering 503, then refusing connections, while events occur.
  const outageFrom = Number(await rpc<string>(anvil.url, 'eth_blockNumber')) + 1
  receiver.goUnavailable()
  await transfer(BOB, 100n)
  await payEther(CAROL, 2_000n)
  const unavailableBlock = await mine()
  const answered503 = await expectedEvents(unavailableBlock, unavailableBlock)
  await receiver.until(() => receiver.unavailableAnswers.size >= answered503.length)
  await receiver.refuse()
  await transfer(CAROL, 200n)
  const outageTo = await mine()
  const outage = await expectedEvents(outageFrom, outageTo)
  t.ok(outage.length > answered503.length, 'events also occur while connections are refused')
  // Down until every delivery of the outage has had a connection refused (seen through the API).
  for (;;) {
    const lists = await Promise.all(Object.values(watchIds).map((id) =>
      call<{ items: { attempts: { statusCode: number | null }[] }[] }>('GET', `/watches/${id}/deliveries?status=pending&limit=100`, auth)))
    const pending = lists.flatMap((list) => list.body.items)
    if (pending.length === outage.length && pending.every((d) => d.attempts.some((a) => a.statusCode === null))) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await receiver.resume()
  const total = await awaitSession()

  // --- what the user got --------------------------------------------------------------------------
  const expected = await canonical()
  t.comment(`${expected.length} events on the canonical chain, ${dropped.length} dropped and retracted, ${outage.length} during the outage; ` +
    `${receiver.requests} requests received for ${receiver.bodiesSeen.size} distinct webhook-ids`)
  t.equal(receiver.rejected, 1, 'every webhook verified (the one refusal was the forged request)')
  t.equal(receiver.accepted.size, total, 'nothing beyond what the chain holds')
  t.equal(receiver.duplicates, 0, 'each webhook-id accepted exactly once')
  for (const [id, bodies] of receiver.bodiesSeen) {
    if (id === 'evt_forged') continue
    t.equal(bodies.size, 1, `${id}: every attempt sent the same body`)
  }

  const byIdentity = new Map<string, { id: string } & Accepted>()
  for (const [id, entry] of receiver.accepted) {
    t.match(entry.headers, { 'content-type': 'application/json', 'user-agent': /^blockhook\/\d+\.\d+\.\d+/, 'webhook-timestamp': /^\d+$/ }, `${id} headers`)
    const { type, data } = entry.payload
    t.equal(data.watchId, watchIds[watchOfPath.get(entry.path)!], `${id} came to its watch's URL`)
    byIdentity.set(identity(type, data.eventKey, data.block.hash), { id, ...entry })
  }
  for (const event of [...expected, ...dropped]) {
    const got = byIdentity.get(identity(event.type, event.eventKey, event.blockHash))
    if (!t.ok(got, `${event.type} ${event.eventKey} in block ${event.blockNumber} arrived`)) continue
    t.equal(got!.path, `/hooks/${event.watch}`)
    t.equal(got!.payload.timestamp, new Date(event.blockTimestamp * 1000).toISOString(), 'timestamp: the block time')
    t.match(got!.payload.data, {
      chain: CHAIN, confirmations: 0, block: { number: event.blockNumber, hash: event.blockHash, timestamp: event.blockTimestamp },
    })
    t.same(Object.fromEntries(Object.keys(event.fields).map((k) => [k, got!.payload.data[k]])), event.fields, 'the node\'s objects as the node sent them')
  }

  const retractions = [...receiver.accepted].filter(([, entry]) => entry.payload.type.endsWith('.removed'))
  t.equal(retractions.length, dropped.length, 'one retraction per event of the dropped block')
  for (const event of dropped) {
    const original = byIdentity.get(identity(event.type, event.eventKey, event.blockHash))!
    const retraction = retractions.find(([, entry]) => entry.payload.data.retracts === original.id)
    if (!t.ok(retraction, `${event.type} ${event.eventKey} is retracted by the original webhook-id`)) continue
    const [retractionId, { payload, path }] = retraction!
    t.not(retractionId, original.id)
    t.equal(path, original.path)
    t.equal(payload.type, `${event.type}.removed`)
    t.equal(payload.data.eventKey, event.eventKey)
    t.equal(payload.data.block.hash, event.blockHash)
    if (event.type === 'evm.log') t.equal((payload.data.log as { removed: boolean }).removed, true)
  }

  // Every delivery of the outage: delivered, its failed attempts recorded before the 2xx.
  for (const event of outage) {
    const { id } = byIdentity.get(identity(event.type, event.eventKey, event.blockHash))!
    const delivery = await call<{ status: string; attempts: { statusCode: number | null; error: string | null }[]; nextAttemptAt: string | null; payload: unknown }>('GET', `/deliveries/${id}`, auth)
    t.equal(delivery.body.status, 'delivered', `${id} delivered`)
    t.equal(delivery.body.nextAttemptAt, null)
    const attempts = delivery.body.attempts
    const last = attempts.at(-1)!
    t.match(last, { statusCode: 200, error: null }, 'the last attempt is the 2xx')
    const failed = attempts.slice(0, -1)
    t.ok(failed.length > 0 && failed.every((a) => a.statusCode !== 200 && typeof a.error === 'string'), 'the failed attempts before it, each with its error')
    t.equal(failed.filter((a) => a.statusCode === 503).length, receiver.unavailableAnswers.get(id) ?? 0, 'each 503 the receiver gave is recorded')
    t.ok(failed.some((a) => a.statusCode === null), 'a refused connection is recorded')
    t.same(delivery.body.payload, receiver.accepted.get(id)!.payload, 'the payload as the receiver got it')
  }
  t.equal(answered503.filter((e) => receiver.unavailableAnswers.has(byIdentity.get(identity(e.type, e.eventKey, e.blockHash))!.id)).length,
    answered503.length, 'the retries after a 503 reused its webhook-id')

  // Stats add up once the worker has recorded the last outcomes.
  for (const [name, watchId] of Object.entries(watchIds) as [WatchName, string][]) {
    const received = [...receiver.accepted.values()].filter((entry) => entry.path === `/hooks/${name}`)
    let watch: { body: { stats: { matched: number; delivered: number; failed: number; pending: number; lastDeliveredAt: string | null } } }
    do {
      watch = await call('GET', `/watches/${watchId}`, auth)
      if (watch.body.stats.pending > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    } while (watch.body.stats.pending > 0)
    t.match(watch.body.stats, { matched: received.length, delivered: received.length, failed: 0, pending: 0, lastDeliveredAt: String }, `${name} stats`)
    const inSequence = received.sort((a, b) => a.payload.data.sequence - b.payload.data.sequence)
    t.same(inSequence.map((entry) => entry.payload.data.sequence), received.map((_, i) => i + 1), `${name}: sequence counts every match once`)
    const heights = inSequence.map((entry) => entry.payload.data.block.number)
    t.ok(heights.every((height, i) => i === 0 || height >= heights[i - 1]!), `${name}: sequence follows the chain (a retraction before the new branch)`)
  }
})

t.teardown(async () => {
  await anvil.stop()
  await redisServer.stop()
})
