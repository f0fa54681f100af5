import t from 'tap'
import { startRedis } from './helpers/processes.js'
import { ADMIN, buildTestApi, createTenant } from './helpers/api.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const WATCH = { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'https://hooks.example.com/a' }

t.test('a missing, malformed or wrong token gets 401 with the SPEC body', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(app)
  const attempts: Array<[string, string, Record<string, string>]> = [
    ['GET', '/watches', {}],
    ['GET', '/watches', { authorization: 'Bearer bhk_wrong' }],
    ['GET', '/watches', { authorization: tenant.apiKey }],
    ['GET', '/watches', { authorization: `Basic ${tenant.apiKey}` }],
    ['GET', '/watches', ADMIN],
    ['GET', '/admin/tenants', {}],
    ['GET', '/admin/tenants', tenant.headers],
    ['POST', '/admin/tenants', { authorization: 'Bearer not-the-admin-token-but-just-as-long' }],
    ['GET', '/admin/status', tenant.headers],
    ['GET', '/metrics', tenant.headers],
    ['GET', '/metrics', {}],
  ]
  for (const [method, url, headers] of attempts) {
    const res = await app.inject({ method: method as 'GET', url, headers })
    t.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`)
    t.same(res.json(), { statusCode: 401, error: 'Unauthorized', code: 'BH_UNAUTHORIZED', message: 'missing or invalid bearer token' })
  }
})

t.test('authentication comes before the body: an unauthenticated oversized body is still 401', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const res = await app.inject({
    method: 'POST', url: '/watches', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(2 * 1024 * 1024),
  })
  t.equal(res.statusCode, 401)
})

t.test("tenant B cannot read, change or delete tenant A's watch, and A's watch is unchanged", async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const a = await createTenant(app, 'a')
  const b = await createTenant(app, 'b')
  const created = await app.inject({ method: 'POST', url: '/watches', headers: a.headers, payload: WATCH })
  const watch = created.json()
  const base = `/watches/${watch.id}`
  const attempts: Array<[string, string, unknown?]> = [
    ['GET', base],
    ['PATCH', base, { url: 'https://evil.example.com/' }],
    ['PATCH', `${base}/addresses`, { add: [] }],
    ['GET', `${base}/secret`],
    ['POST', `${base}/secret/rotate`],
    ['DELETE', base],
  ]
  for (const [method, url, payload] of attempts) {
    const res = await app.inject({ method: method as 'GET', url, headers: b.headers, payload: payload as object })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.json(), { statusCode: 404, error: 'Not Found', code: 'BH_WATCH_NOT_FOUND' })
  }
  t.same((await app.inject({ method: 'GET', url: '/watches', headers: b.headers })).json().items, [], "B's list is empty")

  const after = await app.inject({ method: 'GET', url: base, headers: a.headers })
  t.equal(after.statusCode, 200)
  t.match(after.json(), { url: WATCH.url, status: 'active', updatedAt: watch.updatedAt })
  const secret = await app.inject({ method: 'GET', url: `${base}/secret`, headers: a.headers })
  t.same(secret.json(), { secret: watch.secret }, 'the secret was not rotated')
})

t.test('over the per-key limit: 429 with Retry-After, counted in Redis across api processes', async (t) => {
  const first = await buildTestApi(t, redisServer.url, { rateLimitPerSecond: 3 })
  // A second api process: same Redis, same key prefix.
  const second = await buildTestApi(t, redisServer.url, { rateLimitPerSecond: 3, redisPrefix: first.config.redisPrefix })
  const tenant = await createTenant(first.app)
  const other = await createTenant(first.app, 'other')
  const responses = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    (i % 2 ? first.app : second.app).inject({ method: 'GET', url: '/watches', headers: tenant.headers })))
  const limited = responses.filter((r) => r.statusCode === 429)
  // 12 requests, at most two one-second windows of 3: at least 6 are refused.
  t.ok(limited.length >= 6, `${limited.length} of 12 refused`)
  t.ok(responses.filter((r) => r.statusCode === 200).length >= 1)
  t.equal(limited[0]!.headers['retry-after'], '1')
  t.match(limited[0]!.json(), { statusCode: 429, error: 'Too Many Requests', code: 'BH_RATE_LIMITED', message: /3 requests per second/ })
  const otherKey = await first.app.inject({ method: 'GET', url: '/watches', headers: other.headers })
  t.equal(otherKey.statusCode, 200, "another tenant's key has its own budget")
})

t.test('unknown routes get 404 with the SPEC body', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const res = await app.inject({ method: 'GET', url: '/nowhere?x=1' })
  t.same(res.json(), { statusCode: 404, error: 'Not Found', code: 'BH_ROUTE_NOT_FOUND', message: 'route GET /nowhere not found' })
})
