import t from 'tap'
import { startRedis } from './helpers/processes.js'
import { ADMIN, buildTestApi, createTenant } from './helpers/api.js'
import { createRedis } from '../src/storage/redis.js'
import { once } from 'node:events'
import { pino } from 'pino'
import { ChainStatusPublisher, HEARTBEAT_MS } from '../src/subscriber/chain-status.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

t.test('/healthz answers while the process runs; /readyz reports Redis and extra checks', async (t) => {
  let subscriberReason: string | undefined = 'chain eth has no live connection'
  const { app } = await buildTestApi(t, redisServer.url, {}, { readinessChecks: [() => subscriberReason] })
  t.same((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' })
  const notReady = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(notReady.statusCode, 503)
  t.same(notReady.json(), { statusCode: 503, error: 'Service Unavailable', code: 'BH_NOT_READY', message: 'chain eth has no live connection' })
  subscriberReason = undefined
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('/readyz is 503 when Redis is gone, and /healthz still 200', async (t) => {
  const ownRedis = await startRedis()
  t.teardown(() => ownRedis.stop())
  const { app } = await buildTestApi(t, ownRedis.url)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  await ownRedis.stop()
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'BH_NOT_READY', message: /^redis / })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('/admin/status renders what the subscriber reports, queue counts and watches by status', async (t) => {
  const { app, deps } = await buildTestApi(t, redisServer.url)
  await deps.redis.hset(deps.keys.chainStatus('eth'), {
    type: 'evm', connected: 'true', endpoint: 'wss://eth.example/secret-token?api-key=abc',
    headNumber: '19000000', headHash: '0xabc', lastHeadAt: '1763800000000', reconnects: '2', subscriptions: '1',
    updatedAt: String(Date.now()),
  })
  await deps.redis.hset(deps.keys.chainCursor('eth'), { number: '18999990', hash: '0xdef' })
  const tenant = await createTenant(app)
  const watch = (body: object) => app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload: { chain: 'eth', url: 'https://hooks.example.com/', ...body } })
  const paused = (await watch({ type: 'evm.blocks', filter: {} })).json()
  await watch({ type: 'evm.blocks', filter: {} })
  await watch({ type: 'solana.slot', chain: 'sol', filter: {} })
  await app.inject({ method: 'PATCH', url: `/watches/${paused.id}`, headers: tenant.headers, payload: { status: 'paused' } })
  await deps.deliveryQueue.queues[0]!.add('deliver', { deliveryId: 'evt_a' }, { delay: 60_000 })
  await deps.deliveryQueue.queues[0]!.add('deliver', { deliveryId: 'evt_b' })

  const res = await app.inject({ method: 'GET', url: '/admin/status', headers: ADMIN })
  t.equal(res.statusCode, 200)
  const { redis, ...rest } = res.json()
  t.ok(redis.usedMemory > 0 && redis.maxMemory === 0, 'Redis memory (this test Redis has no maxmemory)')
  t.same(rest, {
    chains: [
      {
        id: 'eth', type: 'evm', connected: true, endpoint: 'wss://eth.example',
        head: { number: 19000000, hash: '0xabc' }, lastHeadAt: new Date(1763800000000).toISOString(), reconnects: 2, subscriptions: 1,
        cursor: { number: 18999990, hash: '0xdef' }, updatedAt: res.json().chains[0].updatedAt,
      },
      {
        id: 'sol', type: 'solana', connected: false, endpoint: null,
        head: { number: null, hash: null }, lastHeadAt: null, reconnects: 0, subscriptions: 0, cursor: null, updatedAt: null,
      },
    ],
    queues: { waiting: 1, active: 0, delayed: 1, failed: 0 },
    watches: { active: 2, paused: 1, disabled: 0, completed: 0 },
  })
  t.notMatch(res.body, /secret-token|api-key/, 'node URLs show scheme and host only')
})

t.test('a subscriber that stopped reporting (killed) is shown as not connected after 15 s, in /admin/status and /metrics', async (t) => {
  const { app, deps } = await buildTestApi(t, redisServer.url)
  await deps.redis.hset(deps.keys.chainStatus('eth'), {
    type: 'evm', connected: 'true', endpoint: 'wss://eth.example', reconnects: '0', subscriptions: '1',
    updatedAt: String(Date.now() - 16_000),
  })
  await deps.redis.hset(deps.keys.chainCursor('eth'), { number: '41', hash: '0x41' })
  const status = (await app.inject({ method: 'GET', url: '/admin/status', headers: ADMIN })).json()
  t.match(status.chains[0], { id: 'eth', connected: false, cursor: { number: 41, hash: '0x41' } })
  t.equal(Date.parse(status.chains[0].updatedAt) < Date.now() - 15_000, true, 'updatedAt says when it last reported')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })).body
  t.match(metrics, /^blockhook_chain_connected\{chain="eth"\} 0$/m)
  t.match(metrics, /^blockhook_chain_connected\{chain="sol"\} 0$/m)
  t.match(metrics, /^blockhook_chain_cursor\{chain="eth"\} 41$/m)

  await deps.redis.hset(deps.keys.chainStatus('eth'), { updatedAt: String(Date.now()) })
  t.match((await app.inject({ method: 'GET', url: '/admin/status', headers: ADMIN })).json().chains[0], { connected: true }, 'a fresh report is connected')
  t.match((await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })).body, /^blockhook_chain_connected\{chain="eth"\} 1$/m)
})

t.test('a connected chain status is rewritten as a heartbeat while nothing changes; a disconnected one is not', async (t) => {
  const { deps } = await buildTestApi(t, redisServer.url)
  const key = deps.keys.chainStatus('hb')
  const publisher = new ChainStatusPublisher(deps.redis, key, { type: 'evm', connected: true, endpoint: 'wss://x', reconnects: 0, subscriptions: 1 }, pino({ level: 'silent' }))
  // Keyspace notifications: the heartbeat's write is an event to await, not a time to sleep.
  await deps.redis.config('SET', 'notify-keyspace-events', 'Kh')
  const listener = createRedis(redisServer.url, 'test-keyspace')
  t.teardown(() => listener.disconnect())
  await listener.subscribe(`__keyspace@0__:${key}`)
  await publisher.flush()
  const first = Number(await deps.redis.hget(key, 'updatedAt'))
  await once(listener, 'message')
  const next = Number(await deps.redis.hget(key, 'updatedAt'))
  t.ok(next - first >= HEARTBEAT_MS - 100, `rewritten after the heartbeat interval (${next - first} ms)`)
  publisher.update({ connected: false })
  await publisher.flush()
  t.equal(await deps.redis.hget(key, 'connected'), 'false')
})

t.test('/metrics serves the Prometheus text summed over every process publishing to this Redis', async (t) => {
  const { app, deps } = await buildTestApi(t, redisServer.url)
  deps.metrics.eventsMatched.inc({ chain: 'eth', type: 'evm.log' }, 2)
  // Another process (a worker) published its own snapshot under the same prefix.
  const { createMetrics, MetricsPublisher } = await import('../src/metrics.js')
  const workerMetrics = createMetrics()
  workerMetrics.eventsMatched.inc({ chain: 'eth', type: 'evm.log' }, 3)
  workerMetrics.deliveries.inc({ outcome: 'delivered' }, 4)
  const workerRedis = createRedis(redisServer.url, 'test-worker')
  t.teardown(() => workerRedis.disconnect())
  await new MetricsPublisher(workerRedis, deps.keys.controlTag, workerMetrics).publish()

  const res = await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  t.match(res.body, /blockhook_events_matched_total\{chain="eth",type="evm.log"\} 5/)
  t.match(res.body, /blockhook_deliveries_total\{outcome="delivered"\} 4/)
  for (const name of ['blockhook_delivery_duration_seconds', 'blockhook_event_to_delivery_seconds', 'blockhook_chain_head', 'blockhook_ws_reconnects_total']) {
    t.match(res.body, new RegExp(`# TYPE ${name} `), name)
  }
})

t.test('/openapi.json documents every route with its schemas; /docs renders it', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
  for (const route of [
    'POST /admin/tenants', 'GET /admin/tenants', 'DELETE /admin/tenants/{id}', 'POST /admin/tenants/{id}/api-keys',
    'DELETE /admin/tenants/{id}/api-keys/{prefix}', 'POST /watches', 'GET /watches', 'GET /watches/{id}', 'PATCH /watches/{id}',
    'DELETE /watches/{id}', 'GET /watches/{id}/secret', 'POST /watches/{id}/secret/rotate', 'PATCH /watches/{id}/addresses',
    'GET /watches/{id}/stats/minutes',
    'GET /healthz', 'GET /readyz', 'GET /admin/status', 'GET /metrics',
  ]) t.ok(routes.includes(route), route)
  const createBody = JSON.stringify(doc.paths['/watches'].post.requestBody)
  t.match(createBody, /solana-pubkey/, 'the filter shapes are in the document')
  t.match(createBody, /"evm.address_activity"/)
  t.notOk(JSON.stringify(doc.paths['/watches'].get.responses).includes('"secret"'), 'the list response has no secret')

  const docs = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
})
