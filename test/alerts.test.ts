// Operator alerts: signed Standard Webhooks POSTs, one per change of state, sent by one process,
// retried under the same id when the receiver fails.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import { alertsForChanges, BACKLOG_AFTER_MS, backlogConditions, currentConditions } from '../src/alerts/alert-rules.js'
import { AlertMonitor } from '../src/alerts/alert-monitor.js'
import { WebhookHttpClient } from '../src/delivery/http-client.js'
import { wire, type Wiring } from '../src/wiring.js'
import { startRedis } from './helpers/processes.js'
import { testConfig } from './helpers/config.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const logger = pino({ level: 'silent' })

t.test('the rules: an alert on each change of state, none while it holds', async (t) => {
  const chain = (lastHeadAtMs: number | null) => [{ id: 'eth', lastHeadAtMs, stallAfterMs: 36_000 }]
  const stalled = currentConditions(100_000, chain(50_000), undefined)
  t.match(alertsForChanges({}, stalled), [{ type: 'alert.chain_stalled', data: { chain: 'eth', silentSec: 50 } }])
  t.same(alertsForChanges({ 'chain:eth': true }, stalled), [], 'still stalled: nothing')
  t.match(alertsForChanges({ 'chain:eth': true }, currentConditions(100_000, chain(99_000), undefined)), [{ type: 'alert.chain_recovered' }])
  t.same(alertsForChanges({}, currentConditions(100_000, chain(null), undefined)), [], 'a chain never seen moving has not stalled')
  const memory = (usedBytes: number) => currentConditions(0, [], { usedBytes, maxBytes: 1000, refusedWrite: undefined })
  t.match(alertsForChanges({}, memory(801)), [{ type: 'alert.redis_memory', data: { state: 'over', usedMemory: 801, maxMemory: 1000 } }])
  t.same(alertsForChanges({}, memory(800)), [])
  t.match(alertsForChanges({ redis_memory: true }, memory(10)), [{ type: 'alert.redis_memory', data: { state: 'ok' } }])
  t.same(alertsForChanges({}, currentConditions(0, [], { usedBytes: 5, maxBytes: 0, refusedWrite: undefined })), [], 'no maxmemory, no ratio')
})

t.test('the backlog rule: a URL over 10 minutes behind alerts once, and once more when it has caught up', async (t) => {
  const url = 'https://hooks.example.com/a'
  const watches = [{ id: 'wch_1', tenantId: 'ten_1' }, { id: 'wch_2', tenantId: 'ten_1' }]
  const seen = (pendingForMs: number, complete = true) =>
    ({ urls: [{ url, oldestPendingAtMs: 1_000_000 - pendingForMs, watches }], complete })
  const now = 1_000_000
  t.same(alertsForChanges({}, backlogConditions(now, seen(BACKLOG_AFTER_MS), {})), [], 'exactly 10 minutes: not yet')
  const over = backlogConditions(now, seen(BACKLOG_AFTER_MS + 1_000), {})
  t.same(alertsForChanges({}, over), [{
    type: 'alert.backlog',
    data: { state: 'over', url, oldestPendingAt: new Date(now - BACKLOG_AFTER_MS - 1_000).toISOString(), pendingSec: 601, watches: 2, watchIds: ['wch_1', 'wch_2'], tenantIds: ['ten_1'] },
  }])
  const held = { [`backlog:${url}`]: true }
  t.same(alertsForChanges(held, backlogConditions(now, seen(BACKLOG_AFTER_MS + 60_000), held)), [], 'still behind: nothing')
  t.same(alertsForChanges(held, backlogConditions(now, { urls: [], complete: false }, held)), [], 'a cut-short read proves nothing')
  const cleared = backlogConditions(now, { urls: [], complete: true }, held)
  t.same(alertsForChanges(held, cleared), [{ type: 'alert.backlog', data: { state: 'ok', url } }])
  t.same(backlogConditions(now, { urls: [], complete: true }, { [`backlog:${url}`]: false, 'chain:eth': true }), {}, 'only held backlogs clear')
})

interface Received { id: string; type: string; data: Record<string, unknown> }

/** A receiver that verifies each alert as a user would, and answers what `answer` says. */
async function receiver(t: Test) {
  const verifier = new Webhook(SECRET)
  const received: Received[] = []
  const state = { answer: 200, waiters: [] as Array<() => void> }
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const payload = verifier.verify(body, req.headers as Record<string, string>) as Omit<Received, 'id'>
      if (state.answer === 200) received.push({ id: String(req.headers['webhook-id']), ...payload })
      res.writeHead(state.answer).end()
      for (const w of state.waiters.splice(0)) w()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/alerts`, received, state }
}

function monitor(setup: { wiring: Wiring; rx: { url: string }; monitors: AlertMonitor[] }, owner: string, nowMs: () => number) {
  const { wiring, rx } = setup
  const m = new AlertMonitor({
    alerts: { url: rx.url, secret: SECRET }, chains: wiring.config.chains, redis: wiring.redis, keys: wiring.keys, logger, owner, now: nowMs,
    deliveries: wiring.deliveryQueue.store, watches: wiring.watches,
    httpClient: new WebhookHttpClient({ timeoutMs: 5_000, userAgent: 'test', allowPrivateUrls: true }),
  })
  setup.monitors.push(m)
  return m
}

async function setup(t: Test) {
  const rx = await receiver(t)
  const config = testConfig({
    redisUrl: redisServer.url,
    file: { chains: [{ id: 'eth', type: 'evm', ws: ['wss://eth.example'], blockTimeMs: 12_000 }], alerts: { url: rx.url, secret: SECRET } },
  })
  const wiring = wire(config, 'test-alerts', logger)
  const monitors: AlertMonitor[] = []
  t.teardown(async () => {
    await Promise.all(monitors.map((m) => m.close()))
    await wiring.close()
  })
  return { rx, wiring, config, monitors }
}

t.test('a stalled chain alerts once, its recovery once, from one process of two; a failed send is retried under the same id', async (t) => {
  const s = await setup(t)
  const { rx, wiring } = s
  let now = Date.now()
  const first = monitor(s, 'a', () => now)
  const second = monitor(s, 'b', () => now)
  const status = wiring.keys.chainStatus('eth')
  await wiring.redis.hset(status, { lastHeadAt: new Date(now).toISOString() })
  await first.check()
  await second.check()
  t.same(rx.received, [], 'moving: nothing to say')

  now += 40_000
  rx.state.answer = 500
  await first.check()
  await second.check()
  t.same(rx.received, [], 'the receiver refused it')
  rx.state.answer = 200
  await first.check()
  await second.check()
  await first.check()
  t.match(rx.received, [{ type: 'alert.chain_stalled', data: { chain: 'eth', silentSec: 40 } }], 'sent once, by one process')
  t.match(rx.received[0]!.id, /^alr_/)

  await wiring.redis.hset(status, { lastHeadAt: new Date(now).toISOString() })
  await second.check()
  await first.check()
  await first.check()
  t.match(rx.received, [{ type: 'alert.chain_stalled' }, { type: 'alert.chain_recovered', data: { chain: 'eth' } }])
  t.equal(rx.received.length, 2)
})

t.test('the retried alert keeps its webhook-id', async (t) => {
  const s = await setup(t)
  const { rx, wiring } = s
  const ids: string[] = []
  const now = Date.now()
  const m = monitor(s, 'a', () => now)
  await wiring.redis.hset(wiring.keys.chainStatus('eth'), { lastHeadAt: new Date(now - 60_000).toISOString() })
  rx.state.answer = 503
  const seen = new Promise<void>((resolve) => rx.state.waiters.push(resolve))
  await m.check()
  await seen
  const [queued] = await wiring.redis.lrange(wiring.keys.alertsOutbox, 0, 0)
  ids.push(JSON.parse(queued!).id)
  rx.state.answer = 200
  await m.check()
  t.same(rx.received.map((r) => r.id), ids)
  t.equal(await wiring.redis.llen(wiring.keys.alertsOutbox), 0, 'nothing left to send')
})

t.test('a watch blockhook disables alerts the operator', async (t) => {
  const s = await setup(t)
  const { rx, wiring } = s
  const m = monitor(s, 'a', () => Date.now())
  const { watch } = await wiring.watchService.create('ten_1', { chain: 'eth', type: 'evm.blocks', filter: {}, url: 'https://hooks.example.com/x' })
  t.equal(await wiring.watchService.disable(watch.id, 'the URL answered 410 Gone'), true)
  await m.check()
  t.match(rx.received, [{ type: 'alert.watch_disabled', data: { watchId: watch.id, tenantId: 'ten_1', reason: 'the URL answered 410 Gone' } }])
})

t.test('Redis over 80 % of maxmemory alerts once, and once more when it is back under', async (t) => {
  const s = await setup(t)
  const { rx, wiring } = s
  const m = monitor(s, 'a', () => Date.now())
  const used = Number(/used_memory:(\d+)/.exec(await wiring.redis.info('memory'))![1])
  t.teardown(() => wiring.redis.config('SET', 'maxmemory', '0'))
  await wiring.redis.config('SET', 'maxmemory', String(Math.round(used / 0.9)))
  await m.check()
  await m.check()
  t.match(rx.received, [{ type: 'alert.redis_memory', data: { state: 'over' } }])
  await wiring.redis.config('SET', 'maxmemory', '0')
  await m.check()
  t.match(rx.received, [{ type: 'alert.redis_memory', data: { state: 'over' } }, { type: 'alert.redis_memory', data: { state: 'ok' } }])
})

t.test('a URL whose oldest pending delivery is over 10 minutes old alerts once; once it is delivered, one alert says it caught up', async (t) => {
  const s = await setup(t)
  const { rx, wiring } = s
  const m = monitor(s, 'a', () => Date.now())
  const url = 'https://hooks.example.com/backlog'
  const create = (input: { url: string }) => wiring.watchService.create('ten_1', { chain: 'eth', type: 'evm.blocks', filter: {}, ...input })
  const { watch } = await create({ url })
  const { watch: paused } = await create({ url: 'https://hooks.example.com/paused' })
  await wiring.watchService.update('ten_1', paused.id, { status: 'paused' })
  const event = (w: { id: string; tenantId: string }, n: number) => ({
    id: `evt_${w.id.slice(4)}${n}`, watchId: w.id, tenantId: w.tenantId, chain: 'eth', type: 'evm.block' as const,
    timestamp: new Date().toISOString(), data: { block: { number: n, hash: `0x${n}` } }, firstSeenAt: Date.now(),
  })
  const elevenMinutesAgo = Date.now() - 11 * 60_000
  await wiring.deliveryQueue.enqueue([event(watch, 1), event(paused, 1)], {}, elevenMinutesAgo)
  await wiring.deliveryQueue.enqueue([event(watch, 2)], {}, Date.now())
  await m.check()
  await m.check()
  t.match(rx.received, [{ type: 'alert.backlog', data: { state: 'over', url, watches: 1, watchIds: [watch.id], tenantIds: ['ten_1'] } }], 'once, and not for the paused watch')
  t.ok((rx.received[0]!.data.pendingSec as number) >= 660)

  // The old one is delivered; the young one left pending is not a backlog.
  const record = (await wiring.deliveryQueue.store.get(event(watch, 1).id))!
  const attempt = { at: new Date().toISOString(), statusCode: 200, durationMs: 5, error: null }
  await wiring.deliveryQueue.store.recordAttempt(record, attempt, 'delivered', null, { ttlMs: 60_000, counts: true }, Date.now())
  await m.check()
  await m.check()
  t.match(rx.received, [{ type: 'alert.backlog', data: { state: 'over' } }, { type: 'alert.backlog', data: { state: 'ok', url } }])
  t.equal(rx.received.length, 2)
  t.same(await wiring.redis.hgetall(wiring.keys.alertsConditions), {}, 'a cleared backlog leaves no condition behind')
  t.same(await wiring.redis.zrange(wiring.keys.oldestPending(0), '0', '-1'), [paused.id, watch.id], 'each watch by its oldest pending')
  await wiring.watchService.delete(watch)
  t.same(await wiring.redis.zrange(wiring.keys.oldestPending(0), '0', '-1'), [paused.id], 'a deleted watch leaves the index with its cancelled deliveries')
})
