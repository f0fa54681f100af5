/**
 * Bounded memory (issue 11) against a real redis-server: payloads expire before records, records
 * and their index entries go after recordRetention, and a full Redis is reported (readyz, 503s)
 * without losing or repeating an event once memory is raised.
 */
import t, { type Test } from 'tap'
import type { MatchedEvent } from '../src/delivery/delivery-record.js'
import { webhookId, webhookIdFromCompact } from '../src/domain/ids.js'
import { isOutOfMemory } from '../src/storage/redis-memory.js'
import { ADMIN, buildTestApi, createTenant, type TestApi } from './helpers/api.js'
import { startApiWorker, startReceiver } from './helpers/delivery.js'
import { startRedis } from './helpers/processes.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

async function setup(t: Test, delivery: Record<string, unknown> = {}) {
  const api = await buildTestApi(t, redisServer.url, {
    allowPrivateUrls: true,
    file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }], delivery },
  })
  const tenant = await createTenant(api.app)
  return { ...api, tenant }
}


async function createWatch(api: TestApi, headers: Record<string, string>, url: string) {
  const res = await api.app.inject({ method: 'POST', url: '/watches', headers, payload: { chain: 'eth', type: 'evm.blocks', filter: {}, url } })
  if (res.statusCode !== 201) throw new Error(`creating a watch failed: ${res.statusCode} ${res.body}`)
  return res.json() as { id: string }
}

function events(watchId: string, tenantId: string, count: number, from = 1): MatchedEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i
    const hash = `0x${n.toString(16).padStart(64, '0')}`
    return {
      id: webhookId(watchId, ['eth', hash, 'evm.block']), watchId, tenantId, chain: 'eth', type: 'evm.block' as const,
      timestamp: new Date(1_763_800_000_000 + n * 12_000).toISOString(),
      data: { confirmations: 0, eventKey: `eth:${hash}`, block: { number: n, hash, timestamp: 1_763_800_000 + n * 12 }, header: { number: `0x${n.toString(16)}`, extraData: 'x'.repeat(400) } },
      firstSeenAt: Date.now(),
    }
  })
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 20))

/** Polls Redis until `key` is gone (its TTL ran out); tap's timeout fails a test that never gets there. */
async function waitUntilGone(api: TestApi, key: string): Promise<void> {
  while ((await api.deps.redis.exists(key)) === 1) await pause()
}

/** Every id in a watch's delivery log, oldest first: its time buckets as Redis holds them. */
async function loggedIds(api: TestApi, watchId: string): Promise<string[]> {
  const { redis, keys } = api.deps
  const ids: string[] = []
  for (const bucket of await redis.zrange(keys.watchLog(watchId), '0', '-1')) {
    ids.push(...(await redis.lrange(keys.watchLogBucket(watchId, bucket), '0', '-1')).map(webhookIdFromCompact))
  }
  return ids
}

t.test('a delivered record keeps its payload for payloadRetention, then answers payload null; a replay sends it again', async (t) => {
  const api = await setup(t, { payloadRetention: '300ms' })
  const receiver = await startReceiver(t)
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const [event] = events(watch.id, api.tenant.id, 1)
  await api.deps.deliveryQueue.enqueue([event!])
  startApiWorker(t, api)
  const [first] = await receiver.waitForCount(1)

  const kept = (await api.app.inject({ method: 'GET', url: `/deliveries/${event!.id}`, headers: api.tenant.headers })).json()
  t.equal(kept.status, 'delivered')
  t.equal(kept.payloadExpired, false)
  t.same(kept.block, { number: 1, hash: (event!.data.block as { hash: string }).hash })
  t.equal(kept.eventKey, event!.data.eventKey)

  // Whichever copy of the body Redis still holds, the payload is shown for payloadRetention after the delivery.
  const get = () => api.app.inject({ method: 'GET', url: `/deliveries/${event!.id}`, headers: api.tenant.headers })
  let res = await get()
  while (res.json().payloadExpired === false) {
    await pause()
    res = await get()
  }
  t.equal(res.statusCode, 200)
  const expired = res.json()
  t.equal(expired.payload, null, 'the payload is gone')
  t.equal(expired.payloadExpired, true)
  t.equal(expired.status, 'delivered', 'the record is kept')
  t.equal(expired.attempts.length, 1, 'with its attempts')
  t.equal(expired.eventKey, event!.data.eventKey, 'and where the event was')
  t.ok((await api.deps.redis.pttl(api.deps.keys.delivery(event!.id, 0))) > 6 * 86_400_000, 'the record itself lives recordRetention (7d)')

  // What a replay of the block does: the same event matched again.
  await api.deps.deliveryQueue.enqueue([event!], { replayId: 'rpl_test' })
  const [, again] = await receiver.waitForCount(2)
  t.equal(again!.headers['webhook-id'], first!.headers['webhook-id'], 'under the same webhook-id')
  t.equal(again!.body, first!.body, 'with the same body')
})

t.test('records and their log entries are gone after recordRetention; a failed one keeps its payload', async (t) => {
  const api = await setup(t, { payloadRetention: '100ms', recordRetention: '1s', failedRetention: '1s', retrySchedule: [] })
  let failNext = false
  const receiver = await startReceiver(t, () => (failNext ? { status: 500 } : { status: 200 }))
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const [old, failing, recent] = events(watch.id, api.tenant.id, 3)
  startApiWorker(t, api)
  await api.deps.deliveryQueue.enqueue([old!])
  await receiver.waitForCount(1)
  failNext = true
  await api.deps.deliveryQueue.enqueue([failing!])
  await receiver.waitForCount(2)
  for (;;) {
    const record = await api.deps.deliveryQueue.store.get(failing!.id)
    if (record?.status === 'failed') break
    await pause()
  }
  t.equal(await api.deps.redis.exists(api.deps.keys.deliveryPayload(failing!.id, 0)), 1, 'a failed record keeps its payload')

  await waitUntilGone(api, api.deps.keys.delivery(old!.id, 0))
  await waitUntilGone(api, api.deps.keys.delivery(failing!.id, 0))
  t.equal(await api.deps.redis.exists(api.deps.keys.deliveryPayload(old!.id, 0)), 0)
  failNext = false
  await api.deps.deliveryQueue.enqueue([recent!])
  await receiver.waitForCount(3)
  for (;;) {
    const record = await api.deps.deliveryQueue.store.get(recent!.id)
    if (record?.status === 'delivered') break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  // The log's time buckets expire whole, a bucket's width (1/16 of the retention here) after their newest record may.
  while ((await loggedIds(api, watch.id)).some((id) => id === old!.id || id === failing!.id)) await pause()
  t.same(await loggedIds(api, watch.id), [recent!.id], 'the log lost them by itself, without a scan')
  t.same(await api.deps.redis.zrange(api.deps.keys.watchPendingDeliveries(watch.id), '0', '-1'), [], 'nothing pending left')
  const list = (await api.app.inject({ method: 'GET', url: `/watches/${watch.id}/deliveries`, headers: api.tenant.headers })).json()
  t.same(list.items.map((d: { id: string }) => d.id), [recent!.id])
  const gone = await api.app.inject({ method: 'GET', url: `/deliveries/${old!.id}`, headers: api.tenant.headers })
  t.equal(gone.statusCode, 404)
})

t.test('Redis out of memory: readyz and API writes say so, nothing is lost, every event goes out once when memory is raised', async (t) => {
  const api = await setup(t)
  const receiver = await startReceiver(t)
  const watch = await createWatch(api, api.tenant.headers, receiver.url)
  const { redis } = api.deps
  t.teardown(() => redis.config('SET', 'maxmemory', '0'))
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
  await redis.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024))

  // A burst, queued chunk by chunk as the subscriber does; a refused chunk is kept to be queued again (its cursor holds).
  const accepted: MatchedEvent[] = []
  const refused: MatchedEvent[][] = []
  for (let chunk = 0; refused.length < 3; chunk++) {
    const batch = events(watch.id, api.tenant.id, 200, 1 + chunk * 200)
    try {
      await api.deps.deliveryQueue.enqueue(batch)
      accepted.push(...batch)
    } catch (err) {
      t.ok(isOutOfMemory(err), `refused: ${(err as Error).message}`)
      refused.push(batch)
    }
  }
  t.ok(accepted.length > 0, `${accepted.length} events stored before Redis filled up`)
  // Part of what filled Redis was the burst's own request buffers, freed once it was read; hold
  // maxmemory just under what Redis uses now, so it stays full while the test looks.
  const full = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
  await redis.config('SET', 'maxmemory', String(Math.min(used + 2 * 1024 * 1024, full - 256 * 1024)))

  const ready = await api.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().message, /^Redis refuses writes: OOM /, 'the reason names memory')

  const write = await api.app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: { name: 'late' } })
  t.equal(write.statusCode, 503, 'an API write Redis refuses is a 503, not a 500')
  t.match(write.json(), { statusCode: 503, error: 'Service Unavailable', code: 'BH_REDIS_OUT_OF_MEMORY', message: /^Redis refuses writes: OOM / })

  const status = (await api.app.inject({ method: 'GET', url: '/admin/status', headers: ADMIN })).json()
  t.ok(status.redis.usedMemory > 0 && status.redis.maxMemory > used, 'admin status shows Redis memory')
  const metrics = await api.app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })
  t.match(metrics.body, /blockhook_redis_used_memory_bytes \d+/)

  await redis.config('SET', 'maxmemory', '0')
  for (const batch of refused) await api.deps.deliveryQueue.enqueue(batch)
  startApiWorker(t, api)
  const all = [...accepted, ...refused.flat()]
  const received = await receiver.waitForCount(all.length)
  const counts = new Map<string, number>()
  for (const r of received) counts.set(String(r.headers['webhook-id']), (counts.get(String(r.headers['webhook-id'])) ?? 0) + 1)
  t.equal(counts.size, all.length, 'every event delivered')
  t.ok(all.every((e) => counts.get(e.id) === 1), 'each exactly once by webhook-id')
  t.equal((await api.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again by itself')
})
