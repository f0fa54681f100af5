import t from 'tap'
import { startRedis } from './helpers/processes.js'
import { ADMIN, buildTestApi, createTenant } from './helpers/api.js'
import type { WatchChange } from '../src/storage/watch-store.js'
import { createRedis } from '../src/storage/redis.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const WATCH = { type: 'evm.address_activity', chain: 'eth', filter: { addresses: ['0x5fbdb2315678afecb367f032d93f642f64180aa3'] }, url: 'https://hooks.example.com/a' }

t.test('tenants are created with a key shown once, listed, and validated', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const created = await app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: { name: 'acme' } })
  t.equal(created.statusCode, 201)
  const tenant = created.json()
  t.match(tenant, { id: /^ten_[a-z0-9]+$/, name: 'acme', apiKey: /^bhk_[A-Za-z0-9_-]+$/, createdAt: String })
  t.same(Object.keys(tenant).sort(), ['apiKey', 'createdAt', 'id', 'name'])

  const list = await app.inject({ method: 'GET', url: '/admin/tenants', headers: ADMIN })
  t.same(list.json(), { items: [{ id: tenant.id, name: 'acme', createdAt: tenant.createdAt, apiKeyPrefixes: [tenant.apiKey.slice(0, 12)] }] })
  t.notMatch(list.body, tenant.apiKey)

  t.match((await app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: {} })).json(),
    { statusCode: 400, message: "body must have required property 'name'" })
  t.match((await app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: { name: 'x', plan: 'gold' } })).json(),
    { statusCode: 400, message: 'body/plan is not a known field' })
  t.match((await app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: { name: '' } })).json(),
    { statusCode: 400, message: 'body/name must NOT have fewer than 1 characters' })
})

t.test('additional API keys work until revoked by their prefix', async (t) => {
  const { app } = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(app)
  const added = await app.inject({ method: 'POST', url: `/admin/tenants/${tenant.id}/api-keys`, headers: ADMIN })
  t.equal(added.statusCode, 201)
  const { apiKey } = added.json()
  t.match(apiKey, /^bhk_/)
  const second = { authorization: `Bearer ${apiKey}` }
  t.equal((await app.inject({ method: 'GET', url: '/watches', headers: second })).statusCode, 200)

  const revoked = await app.inject({ method: 'DELETE', url: `/admin/tenants/${tenant.id}/api-keys/${apiKey.slice(0, 12)}`, headers: ADMIN })
  t.equal(revoked.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/watches', headers: second })).statusCode, 401, 'the revoked key is refused')
  t.equal((await app.inject({ method: 'GET', url: '/watches', headers: tenant.headers })).statusCode, 200, 'the first key still works')

  const again = await app.inject({ method: 'DELETE', url: `/admin/tenants/${tenant.id}/api-keys/${apiKey.slice(0, 12)}`, headers: ADMIN })
  t.match(again.json(), { statusCode: 404, code: 'BH_API_KEY_NOT_FOUND' })
  const unknownTenant = await app.inject({ method: 'POST', url: '/admin/tenants/ten_nothere/api-keys', headers: ADMIN })
  t.match(unknownTenant.json(), { statusCode: 404, code: 'BH_TENANT_NOT_FOUND' })
  const badPrefix = await app.inject({ method: 'DELETE', url: `/admin/tenants/${tenant.id}/api-keys/bhk_`, headers: ADMIN })
  t.match(badPrefix.json(), { statusCode: 400, message: 'params/prefix must NOT have fewer than 12 characters' })
})

t.test('deleting a tenant revokes its keys and deletes its watches, announced on the change feed', async (t) => {
  const { app, deps } = await buildTestApi(t, redisServer.url)
  const doomed = await createTenant(app, 'doomed')
  const kept = await createTenant(app, 'kept')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    ids.push((await app.inject({ method: 'POST', url: '/watches', headers: doomed.headers, payload: WATCH })).json().id)
  }
  const keptWatch = (await app.inject({ method: 'POST', url: '/watches', headers: kept.headers, payload: WATCH })).json()
  const { position } = await deps.watches.loadChain('eth')

  const res = await app.inject({ method: 'DELETE', url: `/admin/tenants/${doomed.id}`, headers: ADMIN })
  t.equal(res.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/watches', headers: doomed.headers })).statusCode, 401)
  t.same(await deps.watches.getMany(ids), [])
  t.ok(await deps.watches.get(keptWatch.id), "the other tenant's watch stays")
  t.same((await app.inject({ method: 'GET', url: '/admin/tenants', headers: ADMIN })).json().items.map((x: { id: string }) => x.id), [kept.id])

  const reader = createRedis(redisServer.url, 'test-feed')
  t.teardown(() => reader.disconnect())
  const seen: WatchChange[] = []
  const abort = new AbortController()
  await deps.watches.followChanges(reader, position, abort.signal, async (changes) => {
    seen.push(...changes)
    if (seen.length >= 3) abort.abort()
  })
  t.same(seen.map((c) => [c.op, c.watchId]).sort(), ids.map((id) => ['delete', id]).sort())

  t.match((await app.inject({ method: 'DELETE', url: `/admin/tenants/${doomed.id}`, headers: ADMIN })).json(), { statusCode: 404 })
})

t.test('the watch-change feed delivers create, update and delete made through the API', async (t) => {
  const { app, deps } = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(app)
  const { position } = await deps.watches.loadChain('eth')
  const reader = createRedis(redisServer.url, 'test-feed')
  t.teardown(() => reader.disconnect())
  const seen: WatchChange[] = []
  const abort = new AbortController()
  const following = deps.watches.followChanges(reader, position, abort.signal, async (changes) => {
    seen.push(...changes)
    if (seen.length >= 3) abort.abort()
  })
  const watch = (await app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload: WATCH })).json()
  await app.inject({ method: 'PATCH', url: `/watches/${watch.id}`, headers: tenant.headers, payload: { status: 'paused' } })
  await app.inject({ method: 'DELETE', url: `/watches/${watch.id}`, headers: tenant.headers })
  await following
  t.same(seen.map((c) => [c.op, c.watchId, c.chain]), [['upsert', watch.id, 'eth'], ['upsert', watch.id, 'eth'], ['delete', watch.id, 'eth']])
})

t.test('a restarted API on the same Redis keeps tenants, keys and watches', async (t) => {
  const first = await buildTestApi(t, redisServer.url)
  const tenant = await createTenant(first.app)
  const watch = (await first.app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload: WATCH })).json()
  await first.app.close()

  const second = await buildTestApi(t, redisServer.url, { redisPrefix: first.config.redisPrefix })
  const read = await second.app.inject({ method: 'GET', url: `/watches/${watch.id}`, headers: tenant.headers })
  t.equal(read.statusCode, 200)
  t.match(read.json(), { id: watch.id, filter: WATCH.filter, url: WATCH.url, status: 'active' })
  t.same((await second.app.inject({ method: 'GET', url: `/watches/${watch.id}/secret`, headers: tenant.headers })).json(), { secret: watch.secret })
  t.same((await second.app.inject({ method: 'GET', url: '/admin/tenants', headers: ADMIN })).json().items.map((x: { id: string }) => x.id), [tenant.id])
})

t.test('no API key or webhook secret is stored in plain text', async (t) => {
  const { app, deps, config } = await buildTestApi(t, redisServer.url, { encryptionKey: Buffer.alloc(32, 9) })
  const tenant = await createTenant(app)
  const extraKey = (await app.inject({ method: 'POST', url: `/admin/tenants/${tenant.id}/api-keys`, headers: ADMIN })).json().apiKey as string
  const watch = (await app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload: WATCH })).json()
  const rotated = (await app.inject({ method: 'POST', url: `/watches/${watch.id}/secret/rotate`, headers: tenant.headers })).json().secret as string
  const plain = [tenant.apiKey, extraKey, watch.secret, rotated]
  // The secret's base64 body is what signs; search for it without the whsec_ prefix too.
  const needles = [...plain, ...[watch.secret, rotated].map((s: string) => s.slice('whsec_'.length))]

  const dump: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await deps.redis.scan(cursor, 'MATCH', `{${config.redisPrefix}}*`, 'COUNT', 500)
    cursor = next
    for (const key of keys) {
      dump.push(key)
      const type = await deps.redis.type(key)
      if (type === 'string') dump.push((await deps.redis.get(key)) ?? '')
      if (type === 'hash') dump.push(JSON.stringify(await deps.redis.hgetall(key)))
      if (type === 'set') dump.push(JSON.stringify(await deps.redis.smembers(key)))
      if (type === 'zset') dump.push(JSON.stringify(await deps.redis.zrange(key, '0', '-1')))
      if (type === 'stream') dump.push(JSON.stringify(await deps.redis.xrange(key, '-', '+')))
    }
  } while (cursor !== '0')
  t.ok(dump.length > 10, 'the scan found the stored keys')
  for (const needle of needles) t.notOk(dump.some((text) => text.includes(needle)), `${needle.slice(0, 10)}… is not in Redis`)
  t.ok(dump.some((text) => text.includes(tenant.apiKey.slice(0, 12))), 'only the 12-character prefix is kept')
})
