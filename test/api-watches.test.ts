import t, { type Test } from 'tap'
import { startRedis } from './helpers/processes.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { MAX_WATCH_ADDRESSES } from '../src/domain/watch-types.js'
import { webhookId } from '../src/domain/ids.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const ADDRESS = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const TOPIC = '0xDDF252AD1BE2C89B69C2B068FC378DAA952BA7F163C4A11628F55A4DF523B3EF'
const PUBKEY = 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA'
const SIGNATURE = '5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW'
const URL = 'https://hooks.example.com/blockhook'

/** A valid body for every watch type, on the chain of its type. */
const VALID: Record<string, Record<string, unknown>> = {
  'evm.logs': { chain: 'eth', filter: { address: ADDRESS, topics: [TOPIC, null, [TOPIC]], abi: ['event Transfer(address indexed from, address indexed to, uint256 value)'] } },
  'evm.transactions': { chain: 'eth', filter: { from: [ADDRESS], status: 'success', selector: ['0xA9059CBB'] } },
  'evm.address_activity': { chain: 'eth', filter: { addresses: [ADDRESS, ADDRESS.toLowerCase()] } },
  'evm.blocks': { chain: 'eth', filter: {} },
  'evm.pending_transactions': { chain: 'eth', filter: { to: [ADDRESS] } },
  'solana.account': { chain: 'sol', filter: { account: PUBKEY, encoding: 'jsonParsed' } },
  'solana.program': { chain: 'sol', filter: { programId: PUBKEY, filters: [{ dataSize: 165 }, { memcmp: { offset: 32, bytes: PUBKEY } }] } },
  'solana.logs': { chain: 'sol', filter: { mentions: [PUBKEY] } },
  'solana.signature': { chain: 'sol', filter: { signature: SIGNATURE } },
  'solana.slot': { chain: 'sol', filter: {} },
}

async function setup(t: Test) {
  const api = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(api.app)
  const post = (payload: unknown, url = '/watches') => api.app.inject({ method: 'POST', url, headers: tenant.headers, payload: payload as object })
  const create = async (type: string, extra: Record<string, unknown> = {}) => {
    const res = await post({ type, url: URL, ...VALID[type], ...extra })
    if (res.statusCode !== 201) throw new Error(`create ${type}: ${res.statusCode} ${res.body}`)
    return res.json() as Record<string, any>
  }
  return { ...api, tenant, post, create }
}

t.test('every watch type can be created, read back and listed without its secret', async (t) => {
  const { app, tenant, post } = await setup(t)
  for (const [type, body] of Object.entries(VALID)) {
    const res = await post({ type, url: URL, ...body })
    t.equal(res.statusCode, 201, `${type}: ${res.body}`)
    const watch = res.json()
    t.match(watch, { id: /^wch_/, status: 'active', type, chain: body.chain, url: URL, secret: /^whsec_/ })
    t.ok(watch.createdAt && watch.updatedAt)
    t.notOk('tenantId' in watch, 'the tenant id is not shown')
    const read = await app.inject({ method: 'GET', url: `/watches/${watch.id}`, headers: tenant.headers })
    t.equal(read.statusCode, 200)
    t.same(read.json().stats, { matched: 0, delivered: 0, failed: 0, pending: 0, lastDeliveredAt: null })
    t.notOk('secret' in read.json())
  }
  const list = await app.inject({ method: 'GET', url: '/watches', headers: tenant.headers })
  t.equal(list.statusCode, 200)
  t.equal(list.json().items.length, 10)
  t.notMatch(list.body, /whsec_/, 'no secret in a list')
})

t.test('stored filters are canonical: hex lowercase, address lists deduplicated, chain defaults filled', async (t) => {
  const { create } = await setup(t)
  const logs = await create('evm.logs')
  t.same(logs.filter.address, ADDRESS.toLowerCase())
  t.same(logs.filter.topics, [TOPIC.toLowerCase(), null, [TOPIC.toLowerCase()]])
  t.equal(logs.confirmations, 12, "the chain's default")
  t.notOk('commitment' in logs)
  const activity = await create('evm.address_activity')
  t.same(activity.filter.addresses, [ADDRESS.toLowerCase()])
  const tx = await create('evm.transactions', { confirmations: 0 })
  t.same(tx.filter.selector, ['0xa9059cbb'])
  t.equal(tx.confirmations, 0)
  const account = await create('solana.account')
  t.equal(account.commitment, 'finalized')
  t.equal(account.filter.account, PUBKEY, 'base58 keeps its case')
  t.notOk('confirmations' in account)
  const slot = await create('solana.slot', { commitment: 'processed', description: 'slots', metadata: { team: 'a' } })
  t.match(slot, { commitment: 'processed', description: 'slots', metadata: { team: 'a' } })
})

t.test('bad input is a 400 whose message names the field', async (t) => {
  const { post } = await setup(t)
  const cases: Array<[string, unknown, RegExp, string?]> = [
    ['unknown field', { type: 'evm.blocks', chain: 'eth', filter: {}, url: URL, colour: 'red' }, /^body\/colour is not a known field$/],
    ['unknown filter field', { type: 'evm.blocks', chain: 'eth', filter: { x: 1 }, url: URL }, /^body\/filter\/x is not a known field$/],
    ['wrong type', { type: 'evm.blocks', chain: 'eth', filter: {}, url: URL, confirmations: '12' }, /^body\/confirmations must be integer$/],
    ['missing field', { type: 'evm.blocks', chain: 'eth', url: 'https://example.com/hook' }, /^body must have required property 'filter'$/],
    ['bad EVM address', { type: 'evm.logs', chain: 'eth', filter: { address: '0x1234' }, url: URL }, /^body\/filter\/address must match pattern "\^0x\[0-9a-fA-F\]\{40\}\$"$/],
    ['bad address in a list', { type: 'evm.address_activity', chain: 'eth', filter: { addresses: [ADDRESS, 'nope'] }, url: URL }, /^body\/filter\/addresses\/1 must match pattern/],
    ['bad topic', { type: 'evm.logs', chain: 'eth', filter: { topics: [[TOPIC, '0xabc']] }, url: URL }, /^body\/filter\/topics\/0\/1 must match pattern/],
    ['bad Solana key', { type: 'solana.account', chain: 'sol', filter: { account: '0OIl' }, url: URL }, /^body\/filter\/account must match format "solana-pubkey"$/],
    ['bad Solana signature', { type: 'solana.signature', chain: 'sol', filter: { signature: PUBKEY }, url: URL }, /^body\/filter\/signature must match format "solana-signature"$/],
    ['transactions without from or to', { type: 'evm.transactions', chain: 'eth', filter: {}, url: URL }, /^body\/filter must have property 'from' or 'to'$/],
    ['unknown type', { type: 'evm.nope', chain: 'eth', filter: {}, url: URL }, /^body\/type must be one of "evm.logs"/],
    ['unknown chain', { type: 'evm.blocks', chain: 'x', filter: {}, url: URL }, /^unknown chain "x"$/, 'BH_UNKNOWN_CHAIN'],
    ['type that does not fit the chain', { type: 'solana.slot', chain: 'eth', filter: {}, url: URL }, /^body\/type "solana.slot" does not fit chain "eth", which is evm$/, 'BH_TYPE_CHAIN_MISMATCH'],
    ['confirmations on Solana', { type: 'solana.slot', chain: 'sol', filter: {}, url: URL, confirmations: 3 }, /^body\/confirmations applies to EVM watches only$/, 'BH_FIELD_NOT_FOR_CHAIN'],
    ['commitment on EVM', { type: 'evm.blocks', chain: 'eth', filter: {}, url: URL, commitment: 'finalized' }, /^body\/commitment applies to Solana watches only$/, 'BH_FIELD_NOT_FOR_CHAIN'],
    ['confirmations out of range', { type: 'evm.blocks', chain: 'eth', filter: {}, url: URL, confirmations: 1001 }, /^body\/confirmations must be <= 1000$/],
    ['invalid ABI', { type: 'evm.logs', chain: 'eth', filter: { abi: ['event Transfer(address indexed from,, uint256)'] }, url: URL }, /^body\/filter\/abi\/0 is not a valid event signature/, 'BH_INVALID_ABI'],
    ['not a URL', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'hooks' }, /^body\/url must match format "uri"$/],
    ['ftp URL', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'ftp://hooks.example.com/' }, /^body\/url must use http or https$/, 'BH_URL_SCHEME'],
    ['URL with credentials', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'https://user:pw@hooks.example.com/' }, /^body\/url must not contain credentials$/, 'BH_URL_CREDENTIALS'],
    ['private IPv4 literal', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'http://10.0.0.7/hook' }, /^body\/url points at a private or reserved address \(10\.0\.0\.7\)$/, 'BH_URL_PRIVATE'],
    ['cloud metadata', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'http://169.254.169.254/latest' }, /private or reserved/, 'BH_URL_PRIVATE'],
    ['IPv6 loopback', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'http://[::1]:8080/hook' }, /private or reserved address \(::1\)/, 'BH_URL_PRIVATE'],
    ['IPv4-mapped IPv6', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'http://[::ffff:127.0.0.1]/hook' }, /private or reserved/, 'BH_URL_PRIVATE'],
    ['a name resolving to loopback', { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'https://hooks.internal/x' }, /^body\/url host "hooks.internal" resolves to a private or reserved address \(127\.0\.0\.1\)$/, 'BH_URL_PRIVATE'],
  ]
  for (const [name, body, message, code] of cases) {
    const res = await post(body)
    t.equal(res.statusCode, 400, name)
    const error = res.json()
    t.same(Object.keys(error).sort(), ['code', 'error', 'message', 'statusCode'], `${name}: the body is SPEC's shape`)
    t.match(error, { statusCode: 400, error: 'Bad Request', code: code ?? 'BH_VALIDATION', message }, name)
  }
})

t.test('malformed JSON, a non-JSON body and an oversized body', async (t) => {
  const { app, tenant } = await setup(t)
  const malformed = await app.inject({
    method: 'POST', url: '/watches', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: '{"chain": ',
  })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'BH_INVALID_JSON')
  const text = await app.inject({
    method: 'POST', url: '/watches', headers: { ...tenant.headers, 'content-type': 'text/plain' }, payload: 'chain=eth',
  })
  t.equal(text.statusCode, 415)
  t.match(text.json(), { statusCode: 415, error: 'Unsupported Media Type', code: 'BH_UNSUPPORTED_MEDIA_TYPE' })
  const huge = await app.inject({
    method: 'POST', url: '/watches', headers: { ...tenant.headers, 'content-type': 'application/json' },
    payload: JSON.stringify({ type: 'evm.address_activity', chain: 'eth', url: URL, filter: { addresses: Array(30_000).fill(ADDRESS) } }),
  })
  t.equal(huge.statusCode, 413)
  t.match(huge.json(), { statusCode: 413, error: 'Payload Too Large', code: 'BH_BODY_TOO_LARGE' })
})

t.test('a name that does not resolve from here is accepted (delivery checks it when it connects)', async (t) => {
  const { post } = await setup(t)
  const res = await post({ type: 'evm.blocks', chain: 'eth', filter: {}, url: 'https://not-yet.invalid/hook' })
  t.equal(res.statusCode, 201, res.body)
})

t.test('private URLs are accepted when BLOCKHOOK_ALLOW_PRIVATE_URLS is set', async (t) => {
  const api = await buildTestApi(t, redisServer.url, { allowPrivateUrls: true })
  const tenant = await createTenant(api.app)
  const res = await api.app.inject({
    method: 'POST', url: '/watches', headers: tenant.headers,
    payload: { type: 'evm.blocks', chain: 'eth', filter: {}, url: 'http://127.0.0.1:9999/hook' },
  })
  t.equal(res.statusCode, 201, res.body)
})

t.test('PATCH changes fields, validates the filter against the watch type, and re-enables', async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const watch = await create('evm.logs')
  const patch = (payload: unknown) => app.inject({ method: 'PATCH', url: `/watches/${watch.id}`, headers: tenant.headers, payload: payload as object })

  const changed = await patch({ url: 'https://other.example.com/h', status: 'paused', confirmations: 3, description: 'd', filter: { address: [ADDRESS] } })
  t.equal(changed.statusCode, 200, changed.body)
  t.match(changed.json(), { url: 'https://other.example.com/h', status: 'paused', confirmations: 3, description: 'd', filter: { address: [ADDRESS.toLowerCase()] } })
  t.not(changed.json().updatedAt, watch.updatedAt)

  t.match((await patch({ filter: { addresses: [ADDRESS] } })).json(), { statusCode: 400, message: 'body/filter/addresses is not a known field' })
  t.match((await patch({ filter: { topics: ['0x1'] } })).json(), { statusCode: 400, message: /^body\/filter\/topics\/0 must match pattern/ })
  t.match((await patch({ url: 'http://192.168.1.1/' })).json(), { statusCode: 400, code: 'BH_URL_PRIVATE' })
  t.match((await patch({ commitment: 'finalized' })).json(), { statusCode: 400, message: 'body/commitment applies to Solana watches only' })
  t.match((await patch({ status: 'disabled' })).json(), { statusCode: 400, message: /^body\/status must be one of "active", "paused"$/ })
  t.match((await patch({ chain: 'sol' })).json(), { statusCode: 400, message: 'body/chain is not a known field' })
  t.match((await patch({})).json(), { statusCode: 400 })

  // blockhook disabled it (the worker's doing); the user turns it back on.
  await deps.watches.update(watch.id, (w) => ({ ...w, status: 'disabled', disabledReason: 'the URL answered 410' }))
  const reenabled = await patch({ status: 'active' })
  t.equal(reenabled.json().status, 'active')
  t.notOk('disabledReason' in reenabled.json())
  const stored = await deps.watches.get(watch.id)
  t.equal(stored?.status, 'active')
  t.equal(stored?.url, 'https://other.example.com/h')
})

t.test('DELETE removes the watch', async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const watch = await create('evm.blocks')
  const res = await app.inject({ method: 'DELETE', url: `/watches/${watch.id}`, headers: tenant.headers })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await deps.watches.get(watch.id), undefined)
  t.equal((await app.inject({ method: 'GET', url: `/watches/${watch.id}`, headers: tenant.headers })).statusCode, 404)
  // curl -X DELETE -H 'content-type: application/json' sends no body; that is not an error.
  const again = await app.inject({ method: 'DELETE', url: `/watches/${watch.id}`, headers: { ...tenant.headers, 'content-type': 'application/json' } })
  t.equal(again.statusCode, 404)
  t.equal(again.json().code, 'BH_WATCH_NOT_FOUND')
})

t.test("DELETE cancels the watch's queued deliveries", async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const watch = await create('evm.blocks')
  const event = {
    id: webhookId(watch.id, ['eth', '0xblock', 'evm.block']), watchId: watch.id, tenantId: tenant.id, chain: 'eth',
    type: 'evm.block' as const, timestamp: new Date().toISOString(), data: { header: { number: '0x1' } }, firstSeenAt: Date.now(),
  }
  t.equal(await deps.deliveryQueue.enqueue([event]), 1)
  t.ok(await deps.deliveryQueue.queues[0]!.getJob(event.id), 'queued')
  t.equal((await app.inject({ method: 'DELETE', url: `/watches/${watch.id}`, headers: tenant.headers })).statusCode, 204)
  t.equal((await deps.deliveryQueue.store.get(event.id))?.status, 'cancelled')
  t.notOk(await deps.deliveryQueue.queues[0]!.getJob(event.id), 'its job is gone from the queue')
})

t.test('the secret can be read and rotated; the old one keeps signing during the grace period', async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const watch = await create('evm.blocks')
  const read = await app.inject({ method: 'GET', url: `/watches/${watch.id}/secret`, headers: tenant.headers })
  t.same(read.json(), { secret: watch.secret })
  const rotated = await app.inject({ method: 'POST', url: `/watches/${watch.id}/secret/rotate`, headers: tenant.headers })
  t.equal(rotated.statusCode, 200)
  const { secret } = rotated.json()
  t.match(secret, /^whsec_/)
  t.not(secret, watch.secret)
  t.same((await app.inject({ method: 'GET', url: `/watches/${watch.id}/secret`, headers: tenant.headers })).json(), { secret })
  t.same(await deps.watches.signingSecrets(watch.id), [secret, watch.secret])
  t.same(await deps.watches.signingSecrets(watch.id, Date.now() + 24 * 3600_000 + 1000), [secret])
})

t.test('GET /watches/:id and the list show the stats the subscriber and worker keep', async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const watch = await create('evm.blocks')
  const quiet = await create('evm.blocks')
  await deps.redis.hset(deps.keys.watchStats(watch.id), { matched: '5', delivered: '3', failed: '1', pending: '1', lastDeliveredAt: '2026-11-22T10:00:00.000Z' })
  const res = await app.inject({ method: 'GET', url: `/watches/${watch.id}`, headers: tenant.headers })
  t.same(res.json().stats, { matched: 5, delivered: 3, failed: 1, pending: 1, lastDeliveredAt: '2026-11-22T10:00:00.000Z' })
  const list = await app.inject({ method: 'GET', url: '/watches', headers: tenant.headers })
  t.same(list.json().items.map((w: { id: string; stats: unknown }) => [w.id, w.stats]), [
    [watch.id, { matched: 5, delivered: 3, failed: 1, pending: 1, lastDeliveredAt: '2026-11-22T10:00:00.000Z' }],
    [quiet.id, { matched: 0, delivered: 0, failed: 0, pending: 0, lastDeliveredAt: null }],
  ], 'each list item carries its counts')
})

t.test('the list filters by chain, type and status and pages with a cursor', async (t) => {
  const { app, tenant, create } = await setup(t)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await create('evm.blocks')).id)
  const sol = await create('solana.slot')
  await app.inject({ method: 'PATCH', url: `/watches/${ids[0]}`, headers: tenant.headers, payload: { status: 'paused' } })
  const get = async (query: string) => {
    const res = await app.inject({ method: 'GET', url: `/watches?${query}`, headers: tenant.headers })
    t.equal(res.statusCode, 200, res.body)
    return res.json() as { items: Array<{ id: string }>; nextCursor: string | null }
  }
  t.same((await get('chain=sol')).items.map((w) => w.id), [sol.id])
  t.same((await get('type=solana.slot')).items.map((w) => w.id), [sol.id])
  t.same((await get('status=paused')).items.map((w) => w.id), [ids[0]])
  const seen: string[] = []
  let page = await get('chain=eth&limit=2')
  seen.push(...page.items.map((w) => w.id))
  while (page.nextCursor) {
    page = await get(`chain=eth&limit=2&cursor=${page.nextCursor}`)
    seen.push(...page.items.map((w) => w.id))
  }
  t.same(seen, ids, 'every watch once, in creation order')
  const bad = await app.inject({ method: 'GET', url: '/watches?limit=0', headers: tenant.headers })
  t.match(bad.json(), { statusCode: 400, message: 'querystring/limit must be >= 1' })
})

t.test('PATCH /watches/:id/addresses adds, removes, dedupes and bounds the address lists', async (t) => {
  const { app, tenant, create, deps } = await setup(t)
  const activity = await create('evm.address_activity')
  const patch = (id: string, payload: unknown) => app.inject({ method: 'PATCH', url: `/watches/${id}/addresses`, headers: tenant.headers, payload: payload as object })
  const a = (i: number) => `0x${i.toString(16).padStart(40, '0')}`

  const added = await patch(activity.id, { add: [a(1), a(2), a(2).toUpperCase().replace('0X', '0x'), ADDRESS] })
  t.same(added.json(), { count: 3 })
  t.same((await deps.watches.get(activity.id))?.filter, { addresses: [ADDRESS.toLowerCase(), a(1), a(2)] })
  t.same((await patch(activity.id, { remove: [ADDRESS] })).json(), { count: 2 })

  // Large lists arrive in several requests (each body ≤ 1 MiB) up to the limit, not past it.
  const chunk = 20_000
  let count = 2
  for (let start = 10; count < MAX_WATCH_ADDRESSES; start += chunk) {
    const res = await patch(activity.id, { add: Array.from({ length: Math.min(chunk, MAX_WATCH_ADDRESSES - count) }, (_, i) => a(start + i)) })
    t.equal(res.statusCode, 200, res.body)
    count = res.json().count
  }
  t.equal(count, MAX_WATCH_ADDRESSES)
  const tooMany = await patch(activity.id, { add: [a(10_000_000)] })
  t.match(tooMany.json(), { statusCode: 400, code: 'BH_TOO_MANY_ADDRESSES' })
  t.equal(addressesOf(await deps.watches.get(activity.id)).length, MAX_WATCH_ADDRESSES, 'unchanged by the refused request')

  const tx = await create('evm.transactions', { filter: { from: [a(1)], to: [a(2)] } })
  t.same((await patch(tx.id, { add: [a(3)], remove: [a(1)] })).json(), { count: 2 }, 'applied to from and to')
  t.same((await deps.watches.get(tx.id))?.filter, { from: [a(3)], to: [a(2), a(3)] })

  const logs = await create('evm.logs')
  t.match((await patch(logs.id, { add: [a(1)] })).json(), { statusCode: 400, code: 'BH_NO_ADDRESS_LIST' })
  t.match((await patch(activity.id, { add: ['0x12'] })).json(), { statusCode: 400, message: /^body\/add\/0 must match pattern/ })
})

function addressesOf(watch: unknown): string[] {
  return (watch as { filter: { addresses: string[] } }).filter.addresses
}

t.test('batch, url and fromBlock options: validated, stored, and in /openapi.json', async (t) => {
  const { app, post, create } = await setup(t)
  t.match(await create('evm.logs', { batch: 'block', ordered: true }), { batch: 'block', ordered: true })
  t.match(await create('solana.slot', { ordered: true }), { ordered: true }, 'ordered is for every chain type')
  const noUrl = await post({ type: 'evm.blocks', ...VALID['evm.blocks'] })
  t.equal(noUrl.statusCode, 201, 'url is optional')
  t.notOk('url' in noUrl.json())
  for (const [type, code] of [['solana.slot', 'BH_FIELD_NOT_FOR_TYPE'], ['evm.pending_transactions', 'BH_FIELD_NOT_FOR_TYPE']] as const) {
    const res = await post({ type, url: URL, ...VALID[type], batch: 'block' })
    t.match(res.json(), { statusCode: 400, code, message: /^body\/batch/ }, type)
  }
  t.match((await post({ type: 'evm.logs', url: URL, ...VALID['evm.logs'], batch: 'event' })).json(), { statusCode: 400, message: /body\/batch/ })
  t.match((await post({ type: 'evm.logs', url: URL, ...VALID['evm.logs'], fromBlock: 1 })).json(),
    { statusCode: 409, code: 'BH_CHAIN_HEAD_UNKNOWN' }, 'no subscriber has reported a head for this chain')
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as any
  const body = doc.paths['/watches'].post.requestBody.content['application/json'].schema
  t.same(body.required, ['chain', 'type', 'filter'])
  t.ok(body.properties.batch && body.properties.ordered && body.properties.fromBlock && body.properties.url)
  t.ok(doc.paths['/watches/{id}/addresses'].patch.requestBody.content['application/json'].schema.properties.fromBlock)
})
