/**
 * On a Redis Cluster, what readiness, the memory warning and alert.redis_memory read of Redis
 * memory covers every master: a master that is out of memory refuses the writes of its slots even
 * when the control plane's master has room.
 */
import t from 'tap'
import { once } from 'node:events'
import { keySlot } from '../src/storage/key-slot.js'
import { redisKeys } from '../src/storage/keys.js'
import { readRedisMemory, writeRefusal } from '../src/storage/redis-memory.js'
import { createRedisCluster } from '../src/storage/redis.js'
import { startRedisCluster } from './helpers/redis-cluster.js'

const nodes = await startRedisCluster()
const cluster = createRedisCluster(nodes.urls, 'test')
t.teardown(async () => {
  cluster.disconnect()
  await nodes.stop()
})
await once(cluster, 'ready')
const keys = redisKeys('blockhook', { cluster: true })

/** The plain connection to the master serving `key`'s slot. */
async function masterOf(key: string) {
  const slot = keySlot(key)
  for (const master of nodes.masters) {
    const owned = await master.cluster('SLOTS')
    const port = master.options.port
    if (owned.some(([from, to, owner]) => slot >= from && slot <= to && owner?.[1] === port)) return master
  }
  throw new Error(`no master serves slot ${slot}`)
}

t.test('a full master other than the control plane\'s is what memory and the write probe report', async (t) => {
  const control = await masterOf(keys.controlTag)
  let full: Awaited<ReturnType<typeof masterOf>> | undefined
  for (let k = 0; k < keys.deliveryShards && !full; k++) {
    const master = await masterOf(keys.shardTag(k))
    if (master !== control) full = master
  }
  if (!full) throw new Error('every shard is on the control plane\'s master')
  t.equal(await writeRefusal(cluster, keys.writeProbes), undefined, 'every master takes writes at first')

  const used = Number(/^used_memory:(\d+)/m.exec(await full.info('memory'))![1])
  await full.config('SET', 'maxmemory-policy', 'noeviction')
  await full.config('SET', 'maxmemory', String(used - 1024))
  t.teardown(() => full.config('SET', 'maxmemory', '0'))

  const memory = await readRedisMemory(cluster)
  t.equal(memory.maxMemory, used - 1024, 'the figures are the full master\'s')
  t.ok(memory.usedMemory > memory.maxMemory, 'that master is over its limit')
  t.match(await writeRefusal(cluster, keys.writeProbes), /^Redis refuses writes: OOM/, 'the probe on that master\'s shard is refused')
})
