// Inputs found by probing the API from outside: each gets a 4xx with the error body, and a
// refused request leaves nothing behind.
import t from 'tap'
import { connect } from 'node:net'
import { pino } from 'pino'
import { RateLimiter } from '../src/api/rate-limit.js'
import { wire } from '../src/wiring.js'
import { startRedis } from './helpers/processes.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { testConfig } from './helpers/config.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const WATCH = { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'https://hooks.example.com/a' }

const nested = (depth: number): Record<string, unknown> => {
  let value: Record<string, unknown> = { leaf: true }
  for (let i = 1; i < depth; i++) value = { a: value }
  return value
}

t.test('metadata nested thousands of levels deep is refused with 400, and nothing is saved', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(app)
  for (const depth of [9, 4_100, 100_000]) {
    const res = await app.inject({
      method: 'POST', url: '/watches', headers: { ...tenant.headers, 'content-type': 'application/json' },
      payload: `${JSON.stringify(WATCH).slice(0, -1)},"metadata":${'{"a":'.repeat(depth - 1)}{"leaf":true}${'}'.repeat(depth - 1)}}`,
    })
    t.equal(res.statusCode, 400, `depth ${depth}`)
    t.same(res.json(), { statusCode: 400, error: 'Bad Request', code: 'BH_VALIDATION', message: 'body/metadata must not nest deeper than 8 levels' })
  }
  const list = await app.inject({ method: 'GET', url: '/watches', headers: tenant.headers })
  t.equal(list.statusCode, 200)
  t.same(list.json().items, [], 'no watch was left behind')

  const ok = await app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload: { ...WATCH, metadata: nested(8) } })
  t.equal(ok.statusCode, 201, '8 levels are fine')
  t.same(ok.json().metadata, nested(8))
  const patched = await app.inject({ method: 'PATCH', url: `/watches/${ok.json().id}`, headers: tenant.headers, payload: { metadata: nested(50) } })
  t.equal(patched.statusCode, 400, 'PATCH is bounded the same way')
})

/** Sends raw bytes to the listening api and reads the whole answer (the server closes). */
async function rawRequest(port: number, text: string): Promise<{ status: number; body: unknown }> {
  const socket = connect(port, '127.0.0.1')
  socket.end(text)
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  const answer = Buffer.concat(chunks).toString()
  const [head, body] = answer.split('\r\n\r\n', 2) as [string, string]
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) }
}

t.test('requests the HTTP parser refuses get the error body with a code too', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }

  const hugeHeader = await rawRequest(port, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`)
  t.equal(hugeHeader.status, 431)
  t.same(hugeHeader.body, { statusCode: 431, error: 'Request Header Fields Too Large', code: 'BH_HEADERS_TOO_LARGE', message: 'request line and headers are larger than 16 KiB' })

  const longQuery = await rawRequest(port, `GET /watches?x=${'b'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`)
  t.equal(longQuery.status, 431, 'a 20 KB query string')

  const nul = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: a\u0000b\r\n\r\n')
  t.equal(nul.status, 400)
  t.match(nul.body, { statusCode: 400, error: 'Bad Request', code: 'BH_BAD_REQUEST', message: /^malformed HTTP request/ })

  const badLength = await rawRequest(port, 'POST /watches HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n')
  t.equal(badLength.status, 400)
  t.match(badLength.body, { code: 'BH_BAD_REQUEST' })
})

t.test('the rate limit is a sliding window: a burst straddling a second boundary passes the limit once, not twice', async (t) => {
  const config = testConfig({ redisUrl: redisServer.url })
  const deps = wire(config, 'test-rate', pino({ level: 'silent' }))
  t.teardown(async () => { await deps.deliveryQueue.close(); deps.redis.disconnect() })
  const limiter = new RateLimiter(deps.redis, deps.keys, 3)
  const base = 1_000_000 * 1000
  for (let i = 0; i < 3; i++) await limiter.take('k', base + 990)
  await t.rejects(limiter.take('k', base + 1010), { code: 'BH_RATE_LIMITED', statusCode: 429 }, 'just past the boundary, the previous second still counts')
  await limiter.take('k', base + 2010)
  t.pass('a second later the budget is back')
})
