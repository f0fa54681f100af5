/**
 * The delivery record's layout (src/delivery/delivery-record.ts) against a real redis-server: what
 * is stored compactly comes back exactly, and a delivered body is kept once.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { compactText, expandText, renderWebhookBody, type MatchedEvent } from '../src/delivery/delivery-record.js'
import { webhookId } from '../src/domain/ids.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { startRedis } from './helpers/processes.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

async function setup(t: Test, file: Record<string, unknown> = {}) {
  const api = await buildTestApi(t, redisServer.url, { file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }], ...file } })
  const tenant = await createTenant(api.app)
  const res = await api.app.inject({
    method: 'POST', url: '/watches', headers: tenant.headers,
    payload: { chain: 'eth', type: 'evm.blocks', filter: {}, url: 'https://example.com/hook' },
  })
  const watch = res.json() as { id: string }
  const get = async (id: string) => (await api.app.inject({ method: 'GET', url: `/deliveries/${id}`, headers: tenant.headers })).json()
  return { ...api, tenant, watch, get }
}

function event(watchId: string, tenantId: string, n: number, data: Record<string, unknown> = {}): MatchedEvent {
  const hash = `0x${randomBytes(32).toString('hex')}`
  return {
    id: webhookId(watchId, ['eth', hash, 'evm.block', n]), watchId, tenantId, chain: 'eth', type: 'evm.block',
    timestamp: '2026-11-22T10:00:00.000Z',
    data: { confirmations: 0, eventKey: `eth:${hash}`, block: { number: n, hash, timestamp: 1_763_800_000 }, miner: `0x${randomBytes(20).toString('hex')}`, ...data },
    firstSeenAt: Date.now(),
  }
}

t.test('stored text comes back exactly, whatever it holds', async (t) => {
  const hex = (bytes: number) => `0x${randomBytes(bytes).toString('hex')}`
  const pieces = [() => '~', () => '~.', () => '~~', () => '.', () => hex(32), () => hex(20), () => hex(21), () => hex(19), () => hex(64),
    () => hex(32).toUpperCase(), () => randomBytes(5).toString('base64url'), () => '0x', () => '\u2028é', () => '"\\']
  for (let i = 0; i < 500; i++) {
    const text = Array.from({ length: 12 }, () => pieces[Math.floor(Math.random() * pieces.length)]!()).join('')
    if (expandText(compactText(text)) !== text) t.fail(`changed: ${JSON.stringify(text)}`)
  }
  const address = hex(20)
  t.equal(compactText(`"${address}"`).length, 31, 'an address takes 29 characters instead of 42')
  t.equal(compactText(`"${hex(32)}"`).length, 46, 'a 32-byte hash 44 instead of 66')
})

t.test('a record keeps awkward values exactly: attempts with control characters, an eventKey without its chain, a hash that is not hex', async (t) => {
  const api = await setup(t)
  const e = event(api.watch.id, api.tenant.id, 7, { eventKey: 'elsewhere:~x\u001f', block: { number: 7, hash: 'not a hash ~~' } })
  await api.deps.deliveryQueue.enqueue([e])
  const { store } = api.deps.deliveryQueue
  const attempts = [
    { at: new Date().toISOString(), statusCode: 500, durationMs: 12, error: 'BH_DELIVERY_HTTP_ERROR: a\u001fb ~ 0x' + 'ab'.repeat(32), response: 'no\u001f ~. thanks' },
    { at: new Date().toISOString(), statusCode: null, durationMs: 10_000, error: 'BH_DELIVERY_TIMEOUT: no answer' },
  ]
  await store.recordAttempt(e, attempts[0]!, 'retrying', new Date(Date.now() + 5_000).toISOString(), { ttlMs: 60_000, counts: true }, Date.now())
  await store.recordAttempt(e, attempts[1]!, 'failed', null, { ttlMs: 60_000, counts: true }, Date.now())

  const shown = await api.get(e.id)
  t.match(shown, { id: e.id, watchId: api.watch.id, type: 'evm.block', status: 'failed', nextAttemptAt: null, eventKey: 'elsewhere:~x\u001f' })
  t.same(shown.block, { number: 7, hash: 'not a hash ~~' })
  t.same(shown.attempts, attempts, 'every attempt as recorded')
  t.same(shown.payload, JSON.parse(renderWebhookBody({ ...e, sequence: 1 })), 'the body as rendered when stored')
  t.equal(shown.payloadExpired, false, 'a failed record keeps its payload')
})

t.test('a delivered body is kept once: read from the event log while it holds it, in its own key when delivered later than that', async (t) => {
  // The log keeps an entry for payloadRetention (2 s) plus as much again, the stream needing less.
  const api = await setup(t, { delivery: { payloadRetention: '2s' }, stream: { retention: '1ms' } })
  const { redis, keys, deliveryQueue: { store } } = api.deps
  const delivered = (id: string) => store.recordAttempt({ id, watchId: api.watch.id }, { at: new Date().toISOString(), statusCode: 200, durationMs: 3, error: null }, 'delivered', null, { ttlMs: 60_000, counts: true }, Date.now())
  const [soon, late] = [event(api.watch.id, api.tenant.id, 1), event(api.watch.id, api.tenant.id, 2)]
  const storedAt = Date.now()
  await api.deps.deliveryQueue.enqueue([soon!, late!])
  t.equal(await redis.exists(keys.deliveryPayload(soon!.id, 0)), 1, 'a pending record has its body in its own key')

  await delivered(soon!.id)
  t.equal(await redis.exists(keys.deliveryPayload(soon!.id, 0)), 0, 'delivered at once: its key goes')
  const logged = await redis.xrange(keys.tenantEventLog(api.tenant.id, 0), '-', '+')
  t.equal(logged.filter(([, fields]) => fields.includes(soon!.id)).length, 1, 'the event log holds it')
  const soonShown = await api.get(soon!.id)
  t.same(soonShown.payload, JSON.parse(renderWebhookBody({ ...soon!, sequence: 1 })), 'and the API reads it from there')
  t.equal(soonShown.payloadExpired, false)

  // Past the margin the log's copy may go before payloadRetention has passed since the delivery.
  await new Promise((resolve) => setTimeout(resolve, storedAt + 2_200 - Date.now()))
  await delivered(late!.id)
  const ttl = await redis.pttl(keys.deliveryPayload(late!.id, 0))
  t.ok(ttl > 0 && ttl <= 2_000, `delivered later: its key stays for payloadRetention (${ttl} ms left)`)
  t.same((await api.get(late!.id)).payload, JSON.parse(renderWebhookBody({ ...late!, sequence: 2 })))
  t.match(await api.get(soon!.id), { payload: null, payloadExpired: true }, 'payloadRetention after its delivery, the first one is shown expired')
})
