/**
 * GET /events/stream with the event logs split over 3 delivery shards, as on a Redis Cluster, on
 * one real redis-server (each shard's keys carry their own hash tag; one server holds them all):
 * watches on every shard, the live tail reading each shard, a client that leaves part-way and
 * resumes from any cursor it got, malformed and expired cursors, and the delivery store reading
 * a body back from the right shard's log.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { MatchedEvent } from '../src/delivery/delivery-record.js'
import { webhookId } from '../src/domain/ids.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { startRedis } from './helpers/processes.js'
import { StreamClient, type StreamMessage } from './helpers/stream-client.js'

const SHARDS = 3

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())
const { app, deps } = await buildTestApi(t, redisServer.url, {
  file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }] },
}, { deliveryShards: SHARDS })
const wsBase = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws')
const { keys } = deps
t.equal(keys.deliveryShards, SHARDS)

let blockNumber = 0
function event(watchId: string, tenantId: string): MatchedEvent {
  const hash = `0x${randomBytes(32).toString('hex')}`
  const n = ++blockNumber
  return {
    id: webhookId(watchId, ['eth', hash, 'evm.block', n]), watchId, tenantId, chain: 'eth', type: 'evm.block',
    timestamp: '2026-11-22T10:00:00.000Z',
    data: { confirmations: 0, eventKey: `eth:${hash}`, block: { number: n, hash, timestamp: 1_763_800_000 }, miner: `0x${randomBytes(20).toString('hex')}` },
    firstSeenAt: Date.now(),
  }
}

/** A tenant with a watch on every shard (created until each shard has one): `onShard[s]` is shard s's. */
async function setup(url: string | undefined = 'https://example.com/hook') {
  const tenant = await createTenant(app, `shards-${randomBytes(3).toString('hex')}`)
  const onShard: string[] = []
  while (onShard.filter(Boolean).length < SHARDS) {
    const res = await app.inject({
      method: 'POST', url: '/watches', headers: tenant.headers,
      payload: { chain: 'eth', type: 'evm.blocks', filter: {}, ...(url ? { url } : {}) },
    })
    if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${res.body}`)
    const { id } = res.json() as { id: string }
    onShard[keys.shardOf(id)] ??= id
  }
  return { tenant, onShard }
}

function connect(t: Test, headers: Record<string, string>, query = '') {
  const client = new StreamClient(`${wsBase}/events/stream${query}`, { headers })
  t.teardown(() => { client.ws.terminate() })
  return client
}

const idOf = (m: StreamMessage) => m.headers['webhook-id']!
const sequenceOf = (m: StreamMessage) => (JSON.parse(m.body) as { data: { sequence: number } }).data.sequence

/** Each watch's events arrive in its sequence order, one by one. */
function inWatchOrder(t: Test, messages: readonly StreamMessage[]): void {
  const last = new Map<string, number>()
  for (const m of messages) {
    const sequence = sequenceOf(m)
    if (last.has(m.watchId) && sequence !== last.get(m.watchId)! + 1) t.fail(`${m.watchId}: ${sequence} after ${last.get(m.watchId)}`)
    last.set(m.watchId, sequence)
  }
}

t.test('the live tail delivers from every shard, each event once', async (t) => {
  const { tenant, onShard } = await setup()
  t.equal(onShard.length, SHARDS)
  // A plain entry id is a time: every log's entries from then on.
  const client = connect(t, tenant.headers, `?after=${Date.now() - 1}-0`)
  await client.opened
  const sent: string[] = []
  for (const shard of [0, 1, 2, 2, 1, 0, 1]) {
    const e = event(onShard[shard]!, tenant.id)
    await deps.deliveryQueue.enqueue([e])
    sent.push(e.id)
    await client.received(sent.length)
  }
  t.same(client.messages.map(idOf), sent, 'each as it is stored, whichever shard it is on')
  t.same(client.messages.map((m) => m.watchId), [0, 1, 2, 2, 1, 0, 1].map((s) => onShard[s]))
  t.equal(new Set(client.messages.map((m) => m.cursor)).size, sent.length, 'a cursor of its own for every message')
  await client.close()
})

t.test('a client that leaves part-way resumes from its last cursor, or any cursor it got, with exactly the rest', async (t) => {
  const { tenant, onShard } = await setup()
  const since = `?after=${Date.now() - 1}-0`
  // More than a catch-up page per shard (500), unevenly: the logs are merged over several pages.
  const stored: MatchedEvent[] = []
  for (let i = 0; i < 1_500; i++) stored.push(event(onShard[i % 5 === 0 ? 0 : i % 5 < 3 ? 1 : 2]!, tenant.id))
  for (let from = 0; from < stored.length; from += 250) await deps.deliveryQueue.enqueue(stored.slice(from, from + 250))

  const all = connect(t, tenant.headers, since)
  await all.received(stored.length)
  t.same(new Set(all.messages.map(idOf)), new Set(stored.map((e) => e.id)), 'every event, from every shard')
  inWatchOrder(t, all.messages)

  const leaving = connect(t, tenant.headers, since)
  await leaving.received(600)
  await leaving.close()
  const seen = leaving.messages.length
  t.ok(seen >= 600 && seen <= stored.length)
  t.same(leaving.messages.map(idOf), all.messages.slice(0, seen).map(idOf), 'the same order for every client')

  // Stored while it is away, on every shard.
  const later = onShard.map((watchId) => event(watchId, tenant.id))
  await deps.deliveryQueue.enqueue(later)
  await all.received(stored.length + later.length)
  const everything = all.messages.map(idOf)

  const from = [seen - 1, 0, 499, 500, 1_001, stored.length - 1, everything.length - 2]
  const resumed = from.map((i) => connect(t, tenant.headers, `?after=${all.messages[i]!.cursor}`))
  await Promise.all(resumed.map((client, n) => client.received(everything.length - from[n]! - 1)))
  // Stored once every client has had the rest: a repeat would come before it.
  const last = event(onShard[1]!, tenant.id)
  await deps.deliveryQueue.enqueue([last])
  await Promise.all([all, ...resumed].map((client) => client.until(() => client.messages.some((m) => idOf(m) === last.id))))
  // Events of different shards stored together may come in another order live than caught up:
  // each watch's order is what holds.
  const sorted = (ids: readonly string[]) => [...ids].sort()
  resumed.forEach((client, n) => {
    const ids = client.messages.map(idOf)
    t.same(sorted(ids), sorted([...everything.slice(from[n]! + 1), last.id]), `resumed after message ${from[n]}: exactly the rest`)
    t.equal(ids.at(-1), last.id)
    inWatchOrder(t, client.messages)
  })
  const rejoined = [...leaving.messages, ...resumed[0]!.messages]
  t.same(sorted(rejoined.map(idOf)), sorted([...everything, last.id]), 'the client that left missed nothing and got nothing twice')
  inWatchOrder(t, rejoined)
})

t.test('a cursor of the wrong shape is refused with 400; an expired one closes with 4410', async (t) => {
  const { tenant } = await setup()
  for (const after of ['1-0.2-0', '1-0.2-0.3-0.4-0', '1-0..2-0', '1-0.2-0.x-1', '1-0.2-0.3-0.', 'yesterday']) {
    t.equal(await connect(t, tenant.headers, `?after=${after}`).refused, 400, after)
  }
  const expired = connect(t, tenant.headers, '?after=1000-0.1000-0.1000-0')
  t.equal((await expired.closed).code, 4410)
  const plainExpired = connect(t, tenant.headers, '?after=1000-0')
  t.equal((await plainExpired.closed).code, 4410, 'a plain id too')
})

t.test('the delivery store reads an event back from its own shard\'s log', async (t) => {
  const { tenant, onShard } = await setup()
  const { store } = deps.deliveryQueue
  const delivered = onShard.map((watchId) => event(watchId, tenant.id))
  await deps.deliveryQueue.enqueue(delivered)
  for (const e of delivered) {
    await store.recordAttempt(e, { at: new Date().toISOString(), statusCode: 200, durationMs: 3, error: null }, 'delivered', null, { ttlMs: 60_000, counts: true }, Date.now())
    t.equal(await deps.redis.exists(keys.deliveryPayload(e.id, keys.shardOf(e.watchId))), 0, 'delivered: the body is kept in the log only')
    const res = await app.inject({ method: 'GET', url: `/deliveries/${e.id}`, headers: tenant.headers })
    t.match(res.json(), { id: e.id, status: 'delivered', payloadExpired: false, payload: { data: { block: e.data.block } } }, `shard ${keys.shardOf(e.watchId)}: the payload, from that shard's log`)
  }

  // A watch without a url keeps only the log entry: a reorg reads it back from there to retract it.
  const streamOnly = await setup(undefined)
  const streamed = streamOnly.onShard.map((watchId) => ({ ...event(watchId, streamOnly.tenant.id), streamOnly: true as const }))
  await store.storeMatched(streamed, undefined, Date.now())
  const back = await store.storedEvents(streamed.map((e) => e.id))
  t.same(back.map((e) => [e.id, e.watchId, e.streamOnly]), streamed.map((e) => [e.id, e.watchId, true]), 'every shard\'s, for retraction')
})
