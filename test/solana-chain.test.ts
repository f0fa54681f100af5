/**
 * The Solana chain (driver and leader) end to end: a documented-protocol node (test/helpers/solana-node.ts)
 * sends notifications, and what the test looks at is what blockhook stored and queued in a real
 * Redis: delivery records, their webhook bodies, BullMQ jobs, watch status.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { pino } from 'pino'
import { createRedis } from '../src/storage/redis.js'
import { redisKeys } from '../src/storage/keys.js'
import { SecretBox } from '../src/storage/secret-box.js'
import { WatchService } from '../src/services/watch-service.js'
import { WatchStore } from '../src/storage/watch-store.js'
import { DeliveryQueue, type EnqueueOptions } from '../src/delivery/delivery-queue.js'
import { renderWebhookBody, type MatchedEvent } from '../src/delivery/delivery-record.js'
import { newId, newWebhookSecret, webhookId } from '../src/domain/ids.js'
import type { Watch } from '../src/domain/watch-types.js'
import type { Commitment } from '../src/config/config.js'
import { createMetrics } from '../src/metrics.js'
import { SolanaChain, type SolanaChainDeps } from '../src/chains/solana/solana-chain.js'
import { SolanaHttpClient } from '../src/chains/solana/http-client.js'
import { ChainLease } from '../src/subscriber/lease.js'
import type { SolanaWatch } from '../src/chains/solana/subscriptions.js'
import { startRedis } from './helpers/processes.js'
import { testConfig } from './helpers/config.js'
import { FakeSolanaNode, solanaFixture, type LedgerTransaction } from './helpers/solana-node.js'
import { capturedLogger, corruptDeep, repeated } from './helpers/node-fuzz.js'

const ACCOUNT = 'CM78CPUeXjn8o3yroDHxUtKsZZgoy4GPkPPXfouKNH12'
const PROGRAM = '11111111111111111111111111111111'
const MENTIONED = 'H4vnBqifaSACnKa7acsxstsY1iV1bvJNxsCY7enrd1hq'
const SIGNATURE = '2EBVM6cB8vAAD93Ktr6Vd8p67XPbQzCJX47MpReuiCXJAtcjaxpvWpcg9Ege1Nr5Tk3a2GFrByT7WPBjdsTycY9b'
/** Base58 signatures of 64 bytes for the ledger (the fixture's ones, with a different last byte). */
const SIGS = Array.from({ length: 6 }, (_, i) => `5h6xBEauJ3PK6SWCZ1PGjBvj8vDdWG3KpwATGy1ARAXFSDwt8GFXM7W5Ncn16wmqokgpiKRLuS83KUxyZyv2sUY${'abcdef'[i]}`)

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

/** Lets a test await what the subscriber queues instead of sleeping. */
class ObservedDeliveryQueue extends DeliveryQueue {
  readonly events: MatchedEvent[] = []
  readonly #waiters: { match: (e: MatchedEvent) => boolean; resolve: (e: MatchedEvent) => void }[] = []

  override async enqueue(events: readonly MatchedEvent[], options?: EnqueueOptions, nowMs?: number): Promise<number> {
    const added = await super.enqueue(events, options, nowMs)
    for (const event of events) {
      this.events.push(event)
      for (const waiter of [...this.#waiters]) {
        if (!waiter.match(event)) continue
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve(event)
      }
    }
    return added
  }

  waitFor(match: (e: MatchedEvent) => boolean): Promise<MatchedEvent> {
    const seen = this.events.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve) => this.#waiters.push({ match, resolve }))
  }
}

async function harness(t: Test, options: { http?: boolean } = {}) {
  const node = await FakeSolanaNode.start()
  const config = testConfig({
    redisUrl: redisServer.url,
    file: {
      chains: [{
        id: 'sol', type: 'solana', ws: [node.wsUrl], http: options.http === false ? [] : [node.httpUrl],
        commitment: 'confirmed',
      }],
    },
  })
  const redis = createRedis(config.redisUrl, 'test')
  const keys = redisKeys(config.redisPrefix)
  const store = new WatchStore(redis, keys, new SecretBox(undefined))
  const queue = new ObservedDeliveryQueue(redis, keys, config.delivery, config.stream)
  const metrics = createMetrics()
  const lease = new ChainLease(redis, keys.chainLease('sol'), 'test-subscriber', 60_000)
  const chains: SolanaChain[] = []
  t.teardown(async () => {
    for (const chain of chains) await chain.close()
    await queue.close()
    await node.stop()
    redis.disconnect()
  })

  /**
   * A subscriber process for the chain: connects, takes the lease, leads. With `connectedFirst`,
   * it leads only once its connection is open, as a standby taking over does.
   */
  async function startChain(overrides: Partial<Pick<SolanaChainDeps, 'http' | 'logger'>> = {}, { connectedFirst = false } = {}): Promise<SolanaChain> {
    const chain = new SolanaChain({
      chain: config.chains[0]!, redis, keys, store, watches: WatchService.forConfig(config, redis, keys, store, queue), deliveryQueue: queue, metrics, logger: pino({ level: 'silent' }),
      socket: { backoffInitialMs: 10, backoffMaxMs: 50, requestTimeoutMs: 5_000 },
      gapRetryDelaysMs: [20, 100],
      ...overrides,
    })
    chains.push(chain)
    const connected = new Promise<void>((resolve) => chain.socket.on('connected', () => resolve()))
    chain.start()
    if (connectedFirst) await connected
    if (!(await lease.acquire())) throw new Error('lease taken')
    await chain.lead(lease, () => t.fail('lease lost'))
    return chain
  }

  async function addWatch<T extends SolanaWatch['type']>(type: T, filter: unknown, extra: { commitment?: Commitment } = {}): Promise<SolanaWatch> {
    const now = new Date().toISOString()
    const watch = {
      id: newId('wch'), tenantId: 'ten_test', chain: 'sol', type, filter, url: 'https://example.com/hook',
      status: 'active', createdAt: now, updatedAt: now, ...extra,
    } as SolanaWatch
    await store.create(watch as Watch, newWebhookSecret())
    return watch
  }

  /** Resolves once the leader has applied every watch change made so far. */
  async function changesApplied(chain: SolanaChain): Promise<void> {
    const [last] = await redis.xrevrange(keys.watchChanges, '+', '-', 'COUNT', 1)
    if (last) await chain.watchSet!.whenApplied(last[0])
  }

  /** The webhook body the worker would send for an event, as the receiver parses it. */
  async function webhookBody(id: string) {
    const record = await queue.store.get(id)
    if (!record) throw new Error(`no delivery record ${id}`)
    return { record, body: JSON.parse(renderWebhookBody(record)) as { type: string; data: Record<string, unknown> } }
  }

  /** The chain's /admin/status entry as stored in Redis. */
  async function chainStatus(chain: SolanaChain) {
    await chain.status.flush()
    return redis.hgetall(keys.chainStatus('sol'))
  }

  return { node, store, queue, metrics, redis, keys, startChain, addWatch, changesApplied, webhookBody, chainStatus }
}

const result = (fixture: string) => solanaFixture(fixture).params.result

t.test('each watch type goes end to end from a node notification to a queued delivery', async (t) => {
  const h = await harness(t)
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  const program = await h.addWatch('solana.program', { programId: PROGRAM, filters: [{ dataSize: 80 }] })
  const logs = await h.addWatch('solana.logs', { all: true })
  const signature = await h.addWatch('solana.signature', { signature: SIGNATURE }, { commitment: 'finalized' })
  const slot = await h.addWatch('solana.slot', {})
  // What getAccountInfo answers when the leader notes the account's state on its first start.
  h.node.setAccount(ACCOUNT, { slot: 5199307, value: result('account-notification').value })
  const chain = await h.startChain()

  const cases = [
    { watch: account, method: 'accountSubscribe', fixture: 'account-notification', type: 'solana.account',
      params: [ACCOUNT, { commitment: 'confirmed', encoding: 'base64' }], parts: ['sol', 'solana.account', ACCOUNT, 5199307] },
    { watch: program, method: 'programSubscribe', fixture: 'program-notification', type: 'solana.program_account',
      params: [PROGRAM, { commitment: 'confirmed', encoding: 'base64', filters: [{ dataSize: 80 }] }],
      parts: ['sol', 'solana.program_account', 'H4vnBqifaSACnKa7acsxstsY1iV1bvJNxsCY7enrd1hq', 5208469] },
    { watch: logs, method: 'logsSubscribe', fixture: 'logs-notification', type: 'solana.logs',
      params: ['all', { commitment: 'confirmed' }],
      parts: ['sol', 'solana.logs', 5208469, '5h6xBEauJ3PK6SWCZ1PGjBvj8vDdWG3KpwATGy1ARAXFSDwt8GFXM7W5Ncn16wmqokgpiKRLuS83KUxyZyv2sUYv'] },
    { watch: signature, method: 'signatureSubscribe', fixture: 'signature-notification', type: 'solana.signature',
      params: [SIGNATURE, { commitment: 'finalized' }], parts: ['sol', 'solana.signature', 5207624, SIGNATURE] },
    { watch: slot, method: 'slotSubscribe', fixture: 'slot-notification', type: 'solana.slot',
      params: [], parts: ['sol', 'solana.slot', 76] },
  ] as const

  for (const c of cases) {
    const sub = await h.node.waitForSubscription(c.method)
    t.same(sub.params, c.params, `${c.method} params`)
    const sent = result(c.fixture)
    h.node.notify(sub, sent)
    const event = await h.queue.waitFor((e) => e.watchId === c.watch.id)
    t.equal(event.id, webhookId(c.watch.id, c.parts), `${c.type}: webhook-id from watch, slot and what changed`)
    const { record, body } = await h.webhookBody(event.id)
    t.equal(record.status, 'pending')
    t.equal(record.sequence, 1)
    t.equal(body.type, c.type)
    const expectedSlot = c.method === 'slotSubscribe' ? sent.slot : sent.context.slot
    const expectedValue = c.method === 'slotSubscribe' ? sent : sent.value
    t.same(body.data, { watchId: c.watch.id, chain: 'sol', sequence: 1, slot: expectedSlot, value: expectedValue },
      `${c.type}: data is {slot, value} as the node sent it`)
    t.ok(await h.queue.queues[0]!.getJob(event.id), `${c.type}: a job is queued under the webhook-id`)
  }
  t.equal(h.node.subscriptions('slotSubscribe').length, 1, 'the slot watch shares the leader\'s own head subscription')
  t.same((await h.metrics.chainHead.get()).values.map((v) => v.value), [76])
  t.match(await h.chainStatus(chain), { type: 'solana', connected: 'true', headNumber: '76', reconnects: '0' })
  const matched = (await h.metrics.eventsMatched.get()).values.reduce((n, v) => n + v.value, 0)
  t.equal(matched, 5)
})

t.test('two watches on one account share one node subscription; the last one to go unsubscribes', async (t) => {
  const h = await harness(t, { http: false })
  const first = await h.addWatch('solana.account', { account: ACCOUNT })
  const second = await h.addWatch('solana.account', { account: ACCOUNT, encoding: 'base64' })
  const finalized = await h.addWatch('solana.account', { account: ACCOUNT }, { commitment: 'finalized' })
  const chain = await h.startChain()

  const confirmedSub = await h.node.waitForSubscription('accountSubscribe', (p) => (p[1] as { commitment: string }).commitment === 'confirmed')
  await h.node.waitForSubscription('accountSubscribe', (p) => (p[1] as { commitment: string }).commitment === 'finalized')
  t.equal(h.node.requests.filter((r) => r.method === 'accountSubscribe').length, 2, 'one per distinct commitment')

  h.node.notify(confirmedSub, result('account-notification'))
  await h.queue.waitFor((e) => e.watchId === first.id)
  await h.queue.waitFor((e) => e.watchId === second.id)
  await chain.leader!.idle()
  t.notOk(h.queue.events.some((e) => e.watchId === finalized.id), 'the other commitment heard nothing')

  await h.store.delete(first as Watch)
  await h.changesApplied(chain)
  t.equal(h.node.requests.filter((r) => r.method === 'accountUnsubscribe').length, 0, 'still held by the second watch')
  await h.store.update(second.id, (w) => ({ ...w, status: 'paused' }))
  const unsubscribe = await h.node.waitForRequest('accountUnsubscribe')
  await h.changesApplied(chain)
  t.same(unsubscribe.params, [confirmedSub.id])
  t.equal(h.node.requests.filter((r) => r.method === 'accountUnsubscribe').length, 1)
  t.same(h.node.subscriptions('accountSubscribe').map((s) => (s.params[1] as { commitment: string }).commitment), ['finalized'])
  t.equal((await h.chainStatus(chain)).subscriptions, '2', 'the head and the finalized account subscription remain')
})

t.test('a cut connection renews every subscription and fills the logs and account gaps', async (t) => {
  const h = await harness(t)
  const tx = (i: number, slot: number, keys = [MENTIONED]): LedgerTransaction =>
    ({ signature: SIGS[i]!, slot, accountKeys: keys, logs: [`Program log: tx ${i}`], blockTime: 1_763_747_000 + i })
  h.node.addTransaction(tx(0, 100))
  h.node.setAccount(ACCOUNT, { slot: 100, value: { ...result('account-notification').value, lamports: 1 } })

  const logs = await h.addWatch('solana.logs', { mentions: [MENTIONED] })
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  await h.addWatch('solana.slot', {})
  const chain = await h.startChain()

  const logsSub = await h.node.waitForSubscription('logsSubscribe')
  t.same(logsSub.params, [{ mentions: [MENTIONED] }, { commitment: 'confirmed' }])
  // A first start begins at the head: the account's current state and newest signature are noted, not sent.
  await h.node.waitForHttpRequest('getAccountInfo')
  await chain.leader!.idle()
  t.equal(h.queue.events.length, 0)

  h.node.addTransaction(tx(1, 101))
  h.node.notify(logsSub, { context: { slot: 101 }, value: { signature: SIGS[1], err: null, logs: ['Program log: tx 1'] } })
  await h.queue.waitFor((e) => (e.data.value as { signature?: string }).signature === SIGS[1])
  await chain.leader!.idle()
  const subscriptionsBefore = h.node.subscriptions().map((s) => s.method).sort()

  h.node.dropConnections()
  // What happens while blockhook is away: two transactions mention the account, one does not, and the account changes.
  h.node.addTransaction(tx(2, 102))
  h.node.addTransaction(tx(3, 102, [PROGRAM]))
  h.node.addTransaction(tx(4, 103))
  const changed = { ...result('account-notification').value, lamports: 2 }
  h.node.setAccount(ACCOUNT, { slot: 103, value: changed })

  const renewed = await h.node.waitForSubscription('logsSubscribe')
  t.not(renewed.id, logsSub.id, 'subscribed again, under a new id')
  const gapEnd = await h.queue.waitFor((e) => (e.data.value as { signature?: string }).signature === SIGS[4])
  const accountEvent = await h.queue.waitFor((e) => e.watchId === account.id)
  await chain.leader!.idle()
  t.same(h.node.subscriptions().map((s) => s.method).sort(), subscriptionsBefore, 'every subscription renewed')

  const logsEvents = h.queue.events.filter((e) => e.watchId === logs.id)
  t.same(logsEvents.map((e) => (e.data.value as { signature: string }).signature), [SIGS[1], SIGS[2], SIGS[4]],
    'the gap is delivered oldest first, once, and only what mentions the account')
  const { body } = await h.webhookBody(gapEnd.id)
  t.same(body.data, {
    watchId: logs.id, chain: 'sol', sequence: 3, slot: 103,
    value: { signature: SIGS[4], err: null, logs: ['Program log: tx 4'] },
  }, 'a recovered transaction reads like its logsNotification')
  t.equal(gapEnd.id, webhookId(logs.id, ['sol', 'solana.logs', 103, SIGS[4]!]), 'with the id the notification would have had')

  t.same((await h.webhookBody(accountEvent.id)).body.data.value, changed, 'the account changed while away: its state is delivered')
  t.equal((await h.metrics.wsReconnects.get()).values[0]?.value, 1)
  const { updatedAt, ...status } = await h.chainStatus(chain)
  t.same(status, {
    type: 'solana', connected: 'true', endpoint: h.node.wsUrl, reconnects: '1', subscriptions: '3',
  }, '/admin/status: the slot watch shares the head subscription, no slot seen yet')
  t.match(updatedAt, /^[0-9]+$/, 'with the time of the report')

  // Another cut with nothing new: nothing is delivered again.
  const accountReads = h.node.httpRequests.filter((r) => r.method === 'getAccountInfo').length
  h.node.dropConnections()
  await h.node.waitForSubscription('logsSubscribe')
  await h.node.waitForHttpRequest('getAccountInfo', (_, index) => index >= 0 &&
    h.node.httpRequests.filter((r) => r.method === 'getAccountInfo').length > accountReads)
  await h.node.waitForHttpRequest('getSignaturesForAddress', (r) => (r.params?.[1] as { until?: string }).until === SIGS[4])
  await chain.leader!.idle()
  t.equal(h.queue.events.length, 4, 'an unchanged account and an empty gap deliver nothing')
})

t.test('a last signature the node no longer lists (a dropped fork) bounds the gap by its slot', async (t) => {
  const h = await harness(t)
  h.node.addTransaction({ signature: SIGS[0]!, slot: 100, accountKeys: [MENTIONED], logs: [] })
  await h.addWatch('solana.logs', { mentions: [MENTIONED] }, { commitment: 'processed' })
  const chain = await h.startChain()
  const logsSub = await h.node.waitForSubscription('logsSubscribe')
  await h.node.waitForHttpRequest('getSignaturesForAddress')
  h.node.addTransaction({ signature: SIGS[1]!, slot: 101, accountKeys: [MENTIONED], logs: [] })
  // Seen at `processed` on a fork that was then dropped: the ledger never has it.
  h.node.notify(logsSub, { context: { slot: 105 }, value: { signature: SIGS[2], err: null, logs: [] } })
  await h.queue.waitFor((e) => e.data.slot === 105)
  await chain.leader!.idle()

  h.node.dropConnections()
  h.node.addTransaction({ signature: SIGS[3]!, slot: 106, accountKeys: [MENTIONED], logs: ['Program log: after'] })
  await h.queue.waitFor((e) => e.data.slot === 106)
  await chain.leader!.idle()
  t.same(h.queue.events.map((e) => e.data.slot), [105, 106], 'nothing older than the last slot delivered is read back')
  t.same(h.node.httpRequests.filter((r) => r.method === 'getTransaction').map((r) => r.params?.[0]), [SIGS[3]])
  t.same(h.node.httpRequests.filter((r) => r.method === 'getSignaturesForAddress').map((r) => (r.params?.[1] as { commitment: string }).commitment),
    ['confirmed', 'confirmed'], 'the http methods get the nearest commitment they serve')
})

t.test('a standby taking the lease on an open connection reads each history once, after the node accepted the subscription', async (t) => {
  const h = await harness(t)
  h.node.addTransaction({ signature: SIGS[0]!, slot: 100, accountKeys: [MENTIONED], logs: [] })
  h.node.setAccount(ACCOUNT, { slot: 100, value: result('account-notification').value })
  await h.addWatch('solana.logs', { mentions: [MENTIONED] })
  await h.addWatch('solana.account', { account: ACCOUNT })
  const chain = await h.startChain({}, { connectedFirst: true })
  const logsSub = await h.node.waitForSubscription('logsSubscribe')
  await h.node.waitForHttpRequest('getSignaturesForAddress')
  await h.node.waitForHttpRequest('getAccountInfo')
  // Anything queued at the acceptance is ahead of this notification, so it has run once it is delivered.
  h.node.notify(logsSub, { context: { slot: 101 }, value: { signature: SIGS[1], err: null, logs: [] } })
  await h.queue.waitFor((e) => e.data.slot === 101)
  await chain.leader!.idle()
  const reads = (method: string) => h.node.httpRequests.filter((r) => r.method === method)
  t.same(reads('getSignaturesForAddress').map((r) => r.params?.[1]), [{ commitment: 'confirmed', limit: 1 }],
    'the logs history is started once, from the head')
  t.equal(reads('getAccountInfo').length, 1, 'the account state is noted once')
  t.same(h.queue.events.map((e) => e.data.slot), [101])
})

t.test('stopping cuts a gap recovery short instead of waiting on a hung http endpoint', async (t) => {
  const h = await harness(t)
  h.node.stalledHttpMethods.add('getSignaturesForAddress')
  await h.addWatch('solana.logs', { mentions: [MENTIONED] })
  // No timeout of its own to fall back on: only the stop can end the call.
  const chain = await h.startChain({ http: new SolanaHttpClient({ endpoints: [h.node.httpUrl], logger: pino({ level: 'silent' }), timeoutMs: 3_600_000 }) })
  await h.node.waitForHttpRequest('getSignaturesForAddress')
  await chain.close()
  t.equal(h.node.httpRequests.length, 1, 'no retry after the stop')
})

t.test('a restart fills the logs gap from the signature kept in Redis', async (t) => {
  const h = await harness(t)
  h.node.addTransaction({ signature: SIGS[0]!, slot: 10, accountKeys: [MENTIONED], logs: [] })
  const logs = await h.addWatch('solana.logs', { mentions: [MENTIONED] })
  const chain = await h.startChain()
  await h.node.waitForHttpRequest('getSignaturesForAddress')
  await chain.leader!.idle()
  await chain.close()

  h.node.addTransaction({ signature: SIGS[1]!, slot: 11, accountKeys: [MENTIONED], logs: ['Program log: while down'] })
  await h.startChain()
  const recovered = await h.queue.waitFor((e) => e.watchId === logs.id)
  t.same(recovered.data, { slot: 11, value: { signature: SIGS[1], err: null, logs: ['Program log: while down'] } })
  t.equal(h.queue.events.length, 1, 'what was seen before the restart is not sent again')
})

t.test('u64 values the node sends reach the webhook exact, as decimal strings', async (t) => {
  const h = await harness(t, { http: false })
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  await h.startChain()
  const sub = await h.node.waitForSubscription('accountSubscribe')
  // As a node sends a rent-exempt account: JSON.parse would turn its rentEpoch into 18446744073709552000.
  h.node.sendRaw(`{"jsonrpc":"2.0","method":"accountNotification","params":{"result":{"context":{"slot":9},"value":` +
    `{"data":["","base64"],"executable":false,"lamports":18446744073709551000,"owner":"${PROGRAM}",` +
    `"rentEpoch":18446744073709551615,"space":0}},"subscription":${sub.id}}}`)
  const event = await h.queue.waitFor((e) => e.watchId === account.id)
  const { body } = await h.webhookBody(event.id)
  t.match(body.data.value, { lamports: '18446744073709551000', rentEpoch: '18446744073709551615', space: 0 })
})

t.test('a subscription the node refuses with an error object leaves the others working', async (t) => {
  const h = await harness(t, { http: false })
  // The API takes memcmp bytes as any short string; the node wants base58, and says so.
  await h.addWatch('solana.program', { programId: PROGRAM, filters: [{ memcmp: { offset: 0, bytes: '0OIl' } }] })
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  await h.startChain()
  const sub = await h.node.waitForSubscription('accountSubscribe')
  await h.node.waitForRequest('programSubscribe')
  t.equal(h.node.subscriptions('programSubscribe').length, 0, 'refused')

  h.node.notify(sub, result('account-notification'))
  const event = await h.queue.waitFor((e) => e.watchId === account.id)
  t.equal(event.data.slot, 5199307)
  t.equal(h.node.connections, 1)
})

t.test('unknown subscription ids and malformed messages are skipped without a crash', async (t) => {
  const h = await harness(t, { http: false })
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  const chain = await h.startChain()
  const sub = await h.node.waitForSubscription('accountSubscribe')

  h.node.sendRaw('{"jsonrpc":"2.0","method":"accountNotification","params":')
  h.node.sendRaw(JSON.stringify({ ...solanaFixture('account-notification'), params: { ...solanaFixture('account-notification').params, subscription: 999_999 } }))
  h.node.sendRaw(JSON.stringify({ jsonrpc: '2.0', method: 'accountNotification', params: { result: { context: { slot: 'soon' } }, subscription: sub.id } }))
  h.node.sendRaw(JSON.stringify({ jsonrpc: '2.0', method: 'accountNotification', params: { result: 'nonsense', subscription: sub.id } }))
  h.node.sendRaw('[1, "two", null]')
  h.node.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 424242, result: 1 }))
  h.node.notify(sub, { context: { slot: 7 }, value: result('account-notification').value })

  const event = await h.queue.waitFor((e) => e.watchId === account.id)
  await chain.leader!.idle()
  t.equal(event.data.slot, 7, 'the next good notification is delivered')
  t.equal(h.queue.events.length, 1, 'nothing else was')
  t.equal(h.node.connections, 1, 'on the same connection')
  t.equal((await h.chainStatus(chain)).connected, 'true')
})

t.test('a signature watch fires once, completes, and its ended subscription is not unsubscribed or renewed', async (t) => {
  const h = await harness(t, { http: false })
  const signature = await h.addWatch('solana.signature', { signature: SIGNATURE })
  await h.addWatch('solana.account', { account: ACCOUNT })
  const chain = await h.startChain()
  const sub = await h.node.waitForSubscription('signatureSubscribe')
  t.same(sub.params, [SIGNATURE, { commitment: 'confirmed' }])

  h.node.notify(sub, result('signature-notification-received'))
  h.node.notify(sub, result('signature-notification'))
  const event = await h.queue.waitFor((e) => e.watchId === signature.id)
  await chain.leader!.idle()
  t.same(event.data, { slot: 5207624, value: { err: null } })
  t.equal(h.queue.events.length, 1, 'the receivedSignature notice is not an event')
  t.equal((await h.store.get(signature.id))?.status, 'completed')
  t.equal(h.node.subscriptions('signatureSubscribe').length, 0, 'the node ended it')
  t.equal(h.node.requests.filter((r) => r.method === 'signatureUnsubscribe').length, 0, 'and was not asked to')

  h.node.dropConnections()
  // Subscriptions are replayed in one batch, the head last: once it is back, the batch is done.
  await h.node.waitForSubscription('slotSubscribe')
  t.equal(h.node.subscriptions('accountSubscribe').length, 1)
  t.equal(h.node.requests.filter((r) => r.method === 'signatureSubscribe').length, 1, 'not renewed after a reconnect')
})

t.test('a signature confirmed while no connection listened is found with getSignatureStatuses', async (t) => {
  const h = await harness(t)
  h.node.addTransaction({ signature: SIGNATURE, slot: 48, accountKeys: [MENTIONED], logs: [], confirmationStatus: 'confirmed' })
  const confirmed = await h.addWatch('solana.signature', { signature: SIGNATURE })
  const finalized = await h.addWatch('solana.signature', { signature: SIGNATURE }, { commitment: 'finalized' })
  const chain = await h.startChain()

  const event = await h.queue.waitFor((e) => e.watchId === confirmed.id)
  t.equal(event.id, webhookId(confirmed.id, ['sol', 'solana.signature', 48, SIGNATURE]), 'the id its notification would have had')
  t.same(event.data, { slot: 48, value: { err: null } })
  const unsubscribe = await h.node.waitForRequest('signatureUnsubscribe')
  await chain.leader!.idle()
  t.equal((await h.store.get(confirmed.id))?.status, 'completed')
  t.equal((await h.store.get(finalized.id))?.status, 'active', 'not yet at its commitment: still waiting')
  t.same(h.node.subscriptions('signatureSubscribe').map((s) => s.id).includes(unsubscribe.params?.[0] as number), false,
    'the node, which had not ended it, was told to')
  t.same(h.node.subscriptions('signatureSubscribe').map((s) => s.params[1]), [{ commitment: 'finalized' }])
})

t.test('a leader sent hundreds of generated notifications, one field off or anything at all, keeps delivering; malformed ones are one log line', async (t) => {
  const h = await harness(t)
  const { lines, logger } = capturedLogger()
  const account = await h.addWatch('solana.account', { account: ACCOUNT })
  const logs = await h.addWatch('solana.logs', { all: true })
  await h.startChain({ logger })
  const accountSub = await h.node.waitForSubscription('accountSubscribe')
  const logsSub = await h.node.waitForSubscription('logsSubscribe')
  const sample = (fixture: string, seed: number) => fc.sample(corruptDeep(result(fixture)), { seed, numRuns: 150 })
  for (const r of sample('account-notification', 1)) h.node.notify(accountSub, r)
  for (const r of sample('logs-notification', 2)) h.node.notify(logsSub, r)
  h.node.notify(accountSub, { ...result('account-notification'), context: { slot: 99_999_999 } })
  h.node.notify(logsSub, { context: { slot: 99_999_999 }, value: { signature: SIGS[5], err: null, logs: [] } })
  await h.queue.waitFor((e) => e.watchId === account.id && (e.data as { slot: number }).slot === 99_999_999)
  await h.queue.waitFor((e) => e.watchId === logs.id && (e.data as { slot: number }).slot === 99_999_999)
  t.same(repeated(lines), [], 'no warning twice')
  t.match(lines.filter((l) => l.msg === 'malformed notification skipped'), [{ skipped: 1 }], 'the malformed ones were logged as skipped')
})
