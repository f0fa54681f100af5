import t, { type Test } from 'tap'
import { Webhook } from 'standardwebhooks'
import type { MatchedEvent } from '../src/delivery/delivery-record.js'
import { MAX_REPLAY_BLOCKS, ReplayQueue } from '../src/delivery/replay-requests.js'
import { webhookId } from '../src/domain/ids.js'
import { buildTestApi, createTenant, type TestApi } from './helpers/api.js'
import { startApiWorker, startReceiver } from './helpers/delivery.js'
import { startRedis } from './helpers/processes.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

async function setup(t: Test, delivery: Record<string, unknown> = {}) {
  const api = await buildTestApi(t, redisServer.url, {
    allowPrivateUrls: true,
    file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }, { id: 'sol', type: 'solana', ws: ['ws://127.0.0.1:1'] }], delivery },
  })
  const tenant = await createTenant(api.app)
  return { ...api, tenant, startWorker: () => startApiWorker(t, api) }
}


async function createWatch(api: TestApi, headers: Record<string, string>, url: string, chain = 'eth', type = 'evm.blocks') {
  const res = await api.app.inject({ method: 'POST', url: '/watches', headers, payload: { chain, type, filter: {}, url } })
  if (res.statusCode !== 201) throw new Error(`creating a watch failed: ${res.statusCode} ${res.body}`)
  return res.json() as { id: string; secret: string; tenantId?: string; chain: string }
}

function events(watchId: string, tenantId: string, count: number, from = 1): MatchedEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    id: webhookId(watchId, ['eth', `0xhash${from + i}`, 'evm.block']),
    watchId, tenantId, chain: 'eth', type: 'evm.block' as const,
    timestamp: new Date().toISOString(),
    data: { block: { number: from + i, hash: `0xhash${from + i}` } },
    firstSeenAt: Date.now(),
  }))
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read()
    if (done(value)) return value
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('GET /deliveries/:id shows status, attempts and the payload as sent; other tenants get 404', async (t) => {
  const api = await setup(t)
  const receiver = await startReceiver(t, () => ({ status: 200, body: 'thanks' }))
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const [e] = events(watch.id, api.tenant.id, 1)
  await api.deps.deliveryQueue.enqueue([e!])
  api.startWorker()
  const [sent] = await receiver.waitForCount(1)

  const res = await until(
    () => api.app.inject({ method: 'GET', url: `/deliveries/${e!.id}`, headers: api.tenant.headers }),
    (r) => r.json().status === 'delivered',
  )
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { id: e!.id, watchId: watch.id, type: 'evm.block', status: 'delivered', nextAttemptAt: null })
  t.match(body.attempts, [{ statusCode: 200, error: null, response: 'thanks' }])
  t.same(body.payload, JSON.parse(sent!.body), 'payload is the body the receiver got')
  t.notOk('tenantId' in body, 'no internal fields')

  const other = await createTenant(api.app, 'other')
  t.equal((await api.app.inject({ method: 'GET', url: `/deliveries/${e!.id}`, headers: other.headers })).statusCode, 404)
  t.equal((await api.app.inject({ method: 'GET', url: `/deliveries/${e!.id}` })).statusCode, 401)
  const missing = await api.app.inject({ method: 'GET', url: '/deliveries/evt_nothere', headers: api.tenant.headers })
  t.match(missing.json(), { statusCode: 404, code: 'BH_DELIVERY_NOT_FOUND' })

  const watchRes = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}`, headers: api.tenant.headers })
  t.match(watchRes.json().stats, { matched: 1, delivered: 1, failed: 0, pending: 0 })
  t.type(watchRes.json().stats.lastDeliveredAt, 'string')
})

t.test('GET /watches/:id/deliveries pages newest first and filters by status', async (t) => {
  const api = await setup(t)
  const watch = await createWatch(api, api.tenant.headers, 'http://127.0.0.1:9/hook')
  const queued = events(watch.id, api.tenant.id, 5)
  // One event per enqueue: several share a millisecond and the cursor must still not skip or repeat.
  for (const e of queued) await api.deps.deliveryQueue.enqueue([e], {}, 1_000 + (queued.indexOf(e) < 3 ? 0 : 1))

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query: string = `limit=2${cursor ? `&cursor=${cursor}` : ''}`
    const res = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/deliveries?${query}`, headers: api.tenant.headers })
    t.equal(res.statusCode, 200)
    const page = res.json() as { items: { id: string; status: string; attempts: unknown[] }[]; nextCursor: string | null }
    t.ok(page.items.length <= 2)
    for (const item of page.items) t.match(item, { status: 'pending', attempts: [] })
    seen.push(...page.items.map((i) => i.id))
    cursor = page.nextCursor
    pages++
  } while (cursor && pages < 10)
  t.same([...seen].sort(), queued.map((e) => e.id).sort(), 'every delivery exactly once')
  t.same(seen.slice(0, 2).sort(), queued.slice(3).map((e) => e.id).sort(), 'newest first')

  await api.deps.deliveryQueue.cancelWatch(watch.id)
  const cancelled = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/deliveries?status=cancelled&limit=100`, headers: api.tenant.headers })
  t.equal(cancelled.json().items.length, 5)
  const pending = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/deliveries?status=pending`, headers: api.tenant.headers })
  t.same(pending.json(), { items: [], nextCursor: null })
  const bad = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/deliveries?status=lost`, headers: api.tenant.headers })
  t.equal(bad.statusCode, 400)
})

t.test('POST /deliveries/:id/retry queues a failed delivery again; any other state is 409', async (t) => {
  const api = await setup(t, { retrySchedule: [] })
  let healthy = false
  const receiver = await startReceiver(t, () => ({ status: healthy ? 200 : 500 }))
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const [e] = events(watch.id, api.tenant.id, 1)
  await api.deps.deliveryQueue.enqueue([e!])
  api.startWorker()
  const get = () => api.app.inject({ method: 'GET', url: `/deliveries/${e!.id}`, headers: api.tenant.headers })
  await until(get, (r) => r.json().status === 'failed')

  healthy = true
  const retry = await api.app.inject({ method: 'POST', url: `/deliveries/${e!.id}/retry`, headers: api.tenant.headers })
  t.equal(retry.statusCode, 202)
  t.match(retry.json(), { id: e!.id, status: 'pending' })
  const done = await until(get, (r) => r.json().status === 'delivered')
  t.match(done.json().attempts, [{ statusCode: 500 }, { statusCode: 200 }])
  t.same(receiver.received.map((r) => r.headers['webhook-id']), [e!.id, e!.id], 'the same webhook-id again')

  const again = await api.app.inject({ method: 'POST', url: `/deliveries/${e!.id}/retry`, headers: api.tenant.headers })
  t.match(again.json(), { statusCode: 409, code: 'BH_DELIVERY_NOT_FAILED' })
})

t.test('GET /watches/:id/stats/minutes counts attempts per minute and the latency of first-time deliveries', async (t) => {
  const api = await setup(t, { retrySchedule: [] })
  let healed = false
  // The first block's delivery fails (once, no retries), the others are delivered.
  const receiver = await startReceiver(t, (request) =>
    ({ status: !healed && (JSON.parse(request.body) as { data: { block: { number: number } } }).data.block.number === 1 ? 500 : 200 }))
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const seenAgoMs = 2_000
  const queued = events(watch.id, api.tenant.id, 3).map((e) => ({ ...e, firstSeenAt: Date.now() - seenAgoMs }))
  await api.deps.deliveryQueue.enqueue(queued)
  api.startWorker()
  const minutes = () => api.app.inject({ method: 'GET', url: `/watches/${watch.id}/stats/minutes?minutes=5`, headers: api.tenant.headers })
  type Minute = { minute: string; delivered: number; failed: number; latency: { count: number; meanMs: number; p50Ms: number; p95Ms: number } | null }
  const total = (items: Minute[]) => ({
    delivered: items.reduce((n, m) => n + m.delivered, 0),
    failed: items.reduce((n, m) => n + m.failed, 0),
    measured: items.reduce((n, m) => n + (m.latency?.count ?? 0), 0),
  })
  const first = await until(minutes, (r) => { const s = total(r.json().items); return s.delivered + s.failed === 3 })
  t.equal(first.statusCode, 200)
  const items = first.json().items as Minute[]
  t.equal(items.length, 5, 'every minute of the window, zeros included')
  t.ok(Date.parse(items.at(-1)!.minute) <= Date.now() && Date.now() - Date.parse(items.at(-1)!.minute) < 120_000, 'the last is the current minute')
  t.ok(items.every((m, i) => i === 0 || Date.parse(m.minute) - Date.parse(items[i - 1]!.minute) === 60_000), 'oldest first, a minute apart')
  t.same(total(items), { delivered: 2, failed: 1, measured: 2 })
  for (const m of items.filter((m) => m.latency)) {
    t.ok(m.latency!.meanMs >= seenAgoMs, 'latency runs from the first sight of the event')
    t.ok(m.latency!.p50Ms >= 1_000 && m.latency!.p50Ms <= m.latency!.p95Ms, 'percentiles from the histogram, in order')
  }

  // A manual retry re-sends an old event: one more delivered attempt, no latency sample.
  healed = true
  const retry = await api.app.inject({ method: 'POST', url: `/deliveries/${queued[0]!.id}/retry`, headers: api.tenant.headers })
  t.equal(retry.statusCode, 202)
  const after = await until(minutes, (r) => total(r.json().items).delivered === 3)
  t.same(total(after.json().items), { delivered: 3, failed: 1, measured: 2 })

  const other = await createTenant(api.app, 'other')
  t.equal((await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/stats/minutes`, headers: other.headers })).statusCode, 404, "another tenant's watch")
  const byDefault = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/stats/minutes`, headers: api.tenant.headers })
  t.equal(byDefault.json().items.length, 60, 'an hour by default')
  for (const bad of ['0', '361', 'ten']) {
    const res = await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/stats/minutes?minutes=${bad}`, headers: api.tenant.headers })
    t.match(res.json(), { statusCode: 400, code: 'BH_VALIDATION', message: /minutes/ }, `minutes=${bad}`)
  }
})

t.test('POST /watches/:id/test sends a signed webhook.test now and reports the receiver’s status code', async (t) => {
  const api = await setup(t)
  let status = 200
  const receiver = await startReceiver(t, () => ({ status }))
  const watch = await createWatch(api, api.tenant.headers, receiver.url)

  const ok = await api.app.inject({ method: 'POST', url: `/watches/${watch.id}/test`, headers: api.tenant.headers })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { delivered: true, statusCode: 200 })
  t.type(ok.json().durationMs, 'number')
  const [sent] = receiver.received
  const payload = new Webhook(watch.secret).verify(sent!.body, sent!.headers as Record<string, string>)
  t.match(payload, { type: 'webhook.test', data: { watchId: watch.id, chain: 'eth' } })
  t.same(Object.keys((payload as { data: object }).data).sort(), ['chain', 'watchId'], 'webhook.test carries only watchId and chain')

  status = 418
  const teapot = await api.app.inject({ method: 'POST', url: `/watches/${watch.id}/test`, headers: api.tenant.headers })
  t.match(teapot.json(), { delivered: false, statusCode: 418 })
  const other = await createTenant(api.app, 'other')
  t.equal((await api.app.inject({ method: 'POST', url: `/watches/${watch.id}/test`, headers: other.headers })).statusCode, 404)
})

t.test('POST /watches/:id/replay queues a bounded EVM re-scan whose matches go out under their original ids', async (t) => {
  const api = await setup(t)
  const receiver = await startReceiver(t)
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const matched = events(watch.id, api.tenant.id, 2)
  await api.deps.deliveryQueue.enqueue(matched)
  api.startWorker()
  const first = [...(await receiver.waitForCount(2))]

  const replay = (payload: Record<string, unknown>, id = watch.id) =>
    api.app.inject({ method: 'POST', url: `/watches/${id}/replay`, headers: api.tenant.headers, payload })
  const res = await replay({ fromBlock: 1, toBlock: 2 })
  t.equal(res.statusCode, 202)
  const { replayId } = res.json() as { replayId: string }
  t.match(replayId, /^rpl_/)

  // What the EVM subscriber does with the request: take it from the queue, rescan, enqueue with the replay id.
  const replays = new ReplayQueue(api.deps.redis, api.deps.keys)
  t.same(await api.deps.redis.lrange(api.deps.keys.tenantReplays(api.tenant.id, 'eth'), 0, -1), [replayId])
  const request = await replays.get(replayId)
  t.match(request, { replayId, watchId: watch.id, tenantId: api.tenant.id, chain: 'eth', fromBlock: 1, toBlock: 2, status: 'queued' })
  await api.deps.deliveryQueue.enqueue(matched, { replayId: request!.replayId })
  const all = await receiver.waitForCount(4)
  t.same(all.slice(2).map((r) => r.headers['webhook-id']).sort(), first.map((r) => r.headers['webhook-id']).sort())
  t.same(all.slice(2).map((r) => r.body).sort(), first.map((r) => r.body).sort())

  t.match((await replay({ fromBlock: 10, toBlock: 10 + MAX_REPLAY_BLOCKS })).json(), { statusCode: 400, message: /toBlock/ })
  t.match((await replay({ fromBlock: 5, toBlock: 4 })).json(), { statusCode: 400, message: /toBlock/ })
  t.equal((await replay({ fromBlock: 1 })).statusCode, 400)
  t.equal((await replay({ fromBlock: 1, toBlock: 2, extra: true })).statusCode, 400)
  const solana = await createWatch(api, api.tenant.headers, receiver.url, 'sol', 'solana.slot')
  t.match((await replay({ fromBlock: 1, toBlock: 2 }, solana.id)).json(), { statusCode: 400, code: 'BH_REPLAY_UNSUPPORTED' })
  t.equal(await api.deps.redis.llen(api.deps.keys.tenantReplays(api.tenant.id, 'eth')), 1, 'refused requests queue nothing')
})

t.test('DELETE /watches/:id cancels its queued deliveries', async (t) => {
  const api = await setup(t)
  const receiver = await startReceiver(t)
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const queued = events(watch.id, api.tenant.id, 3)
  await api.deps.deliveryQueue.enqueue(queued)

  const res = await api.app.inject({ method: 'DELETE', url: `/watches/${watch.id}`, headers: api.tenant.headers })
  t.equal(res.statusCode, 204)
  for (const e of queued) t.equal((await api.deps.deliveryQueue.store.get(e.id))?.status, 'cancelled')
  t.same(await api.deps.deliveryQueue.queues[0]!.getJobCounts('waiting', 'delayed'), { waiting: 0, delayed: 0 })
  api.startWorker()
  const check = events(watch.id, api.tenant.id, 1, 100)
  // A job for the deleted watch that slipped in afterwards is cancelled by the worker, not sent.
  await api.deps.deliveryQueue.enqueue(check)
  await until(() => api.deps.deliveryQueue.store.get(check[0]!.id), (r) => r?.status === 'cancelled')
  t.equal(receiver.received.length, 0)
})
