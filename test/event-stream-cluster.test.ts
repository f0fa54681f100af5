/**
 * The event stream's reads on a real three-master Redis Cluster (test/helpers/redis-cluster.ts)
 * with its 6 delivery shards: each shard's blocking reader is on the master of its slot and is
 * interrupted there, the live tail serves every shard, and a catch-up page merges the logs of
 * every master.
 */
import { once } from 'node:events'
import { Cluster } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import { CLUSTER_DELIVERY_SHARDS, redisKeys } from '../src/storage/keys.js'
import { EventLog } from '../src/stream/event-log.js'
import { LiveTail } from '../src/stream/live-tail.js'
import { clusterTailReaders } from '../src/stream/tail-reader.js'
import { startRedisCluster } from './helpers/redis-cluster.js'

const SHARDS = CLUSTER_DELIVERY_SHARDS
const logger = pino({ level: 'silent' })
const nodes = await startRedisCluster()
t.teardown(() => nodes.stop())
const { urls } = nodes
const [host, port] = new URL(urls[0]!).host.split(':')

const cluster = new Cluster([{ host: host!, port: Number(port) }], { redisOptions: { maxRetriesPerRequest: null } })
t.teardown(() => cluster.disconnect())
await once(cluster, 'ready')
const keys = redisKeys('stream-cluster', { cluster: true })
const shards = Array.from({ length: SHARDS }, (_, shard) => shard)
const log = new EventLog(cluster, keys)
const append = (tenantId: string, shard: number, id: string) =>
  cluster.xadd(keys.tenantEventLog(tenantId, shard), '*', 'id', id, 'watchId', 'wch_cluster', 'body', '{}')

t.test('the shards\' logs are spread over every master', async (t) => {
  const masters = new Set(await Promise.all(shards.map(async (shard) => {
    const slot = (await cluster.cluster('KEYSLOT', keys.tenantEventLog('ten_a', shard))) as number
    return cluster.slots[slot]![0]
  })))
  t.equal(masters.size, 3)
})

t.test('each shard\'s reader blocks on its master and is interrupted there', async (t) => {
  const open = clusterTailReaders(cluster, keys, logger)
  for (const shard of shards) {
    const reader = open(shard)
    const key = keys.tenantEventLog('ten_idle', shard)
    await append('ten_idle', shard, 'evt_first')
    const read = await reader.read([key], ['0-0'], 10, 0)
    const first = read![0]![1][0]![0]
    // BLOCK 0 waits for ever: only a CLIENT UNBLOCK that reached this reader's master ends it.
    const blocked = reader.read([key], [first], 10, 0)
    // The read is under way once the master counts a blocked client.
    const slot = (await cluster.cluster('KEYSLOT', key)) as number
    const master = cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === cluster.slots[slot]![0])!
    while (!/blocked_clients:[1-9]/.test(await master.info('clients'))) await new Promise((resolve) => setTimeout(resolve, 10))
    reader.interrupt()
    t.equal(await blocked, null, `shard ${shard}: interrupted`)
    reader.close()
  }
})

t.test('the live tail serves every shard, and a tenant joining while its readers block', async (t) => {
  const tail = new LiveTail(keys, clusterTailReaders(cluster, keys, logger), logger)
  tail.start()
  t.teardown(() => tail.close())
  const waiting = tail.next('ten_a', await log.lastPositions('ten_a'))
  for (const shard of shards) {
    const wait = tail.next('ten_b', await log.lastPositions('ten_b'))
    await append('ten_b', shard, `evt_b${shard}`)
    const result = await wait.result
    t.match(result, { shard, events: [{ id: `evt_b${shard}` }] }, `shard ${shard}`)
  }
  await append('ten_a', 4, 'evt_a4')
  t.match(await waiting.result, { shard: 4, events: [{ id: 'evt_a4' }] }, 'the first tenant\'s wait goes on meanwhile')
})

t.test('a catch-up page merges the logs of every master', async (t) => {
  const stored = [0, 1, 2].flatMap((n) => shards.map((shard) => `evt_c${n}_${shard}`))
  for (const [i, id] of stored.entries()) await append('ten_c', i % SHARDS, id)
  const page = await log.readAfter('ten_c', shards.map(() => '0-0'), 2)
  t.equal(page.caughtUp, false, 'every log had a full page')
  const rest = await log.readAfter('ten_c', page.positions, 10)
  t.equal(rest.caughtUp, true)
  const read = [...page.events, ...rest.events].map((e) => e.id)
  t.same([...read].sort(), [...stored].sort(), 'every entry of every log, once')
  for (const shard of shards) {
    t.same(read.filter((id) => id.endsWith(`_${shard}`)), [0, 1, 2].map((n) => `evt_c${n}_${shard}`), `shard ${shard}'s in its order`)
  }
})
