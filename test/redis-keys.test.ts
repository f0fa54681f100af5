/**
 * The key layout (src/storage/keys.ts): on a single Redis the names blockhook always used; on a
 * cluster, the keys each script takes together in one slot, and the delivery shards spread over
 * the slot ranges a 3-master cluster gets from redis-cli.
 */
import t from 'tap'
import { webhookId } from '../src/domain/ids.js'
import { CLUSTER_SLOTS, keySlot } from '../src/storage/key-slot.js'
import { redisKeys, type RedisKeys } from '../src/storage/keys.js'

/** What Redis 7.0's own `CLUSTER KEYSLOT` answered for each key. */
const SLOTS_BY_REDIS: Record<string, number> = {
  '{blockhook}:tenants': 4855, plain: 7143, '{}:empty-tag': 15110, 'a{b}c{d}': 3300, '{blockhook:s3.7}:d:x': 13200, '{unclosed': 470, 'ü{ñ}': 13565,
}

t.test('the slot of a key is Redis Cluster\'s (checked against CLUSTER KEYSLOT)', async (t) => {
  for (const [key, slot] of Object.entries(SLOTS_BY_REDIS)) t.equal(keySlot(key), slot, key)
})

t.test('a single Redis keeps every name under {blockhook}, one shard', async (t) => {
  const k = redisKeys('blockhook')
  const id = webhookId('wch_1', [1])
  t.equal(k.deliveryShards, 1)
  t.equal(k.shardOf('wch_anything'), 0)
  t.equal(k.shardTag(0), '{blockhook}', 'the BullMQ prefix as before')
  t.equal(k.watchStats('wch_1'), '{blockhook}:watch:wch_1:stats')
  t.equal(k.oldestPending(0), '{blockhook}:oldest-pending')
  t.equal(k.tenantEventLog('ten_1', 0), '{blockhook}:tenant:ten_1:event-log')
  t.equal(k.chainCursor('1'), '{blockhook}:chain:1:cursor')
  t.equal(k.urlInFlight('ab'), '{blockhook}:url:ab:in-flight')
  t.match(k.delivery(id, 0), /^\{blockhook\}:d:/)
  t.equal(k.streamOnlyEvent(id, 0), `{blockhook}:stream-only:${id}`)
})

/** Every key set a script, transaction or BullMQ queue takes at once, for one watch. */
function keySetsOf(k: RedisKeys, watchId: string, tenantId: string, chain: string): Record<string, string[]> {
  const shard = k.shardOf(watchId)
  const id = webhookId(watchId, [1])
  const record = [k.delivery(id, shard), k.deliveryPayload(id, shard), k.watchPendingDeliveries(watchId), k.watchStats(watchId)]
  return {
    store: [k.oldestPending(shard), ...record, k.watchSequence(watchId), k.watchLogBucket(watchId, 0), k.watchLog(watchId),
      k.tenantEventLog(tenantId, shard), k.watchOrderedDeliveries(watchId), k.streamOnlyEvent(id, shard)],
    requeue: [...record, k.watchOrderedDeliveries(watchId), k.oldestPending(shard)],
    attempt: [...record, k.watchFailingSince(watchId), k.watchMinute(watchId, 1)],
    oldestPending: [k.oldestPending(shard), k.watchPendingDeliveries(watchId)],
    queue: [k.shardTag(shard) + ':deliveries:wait', k.shardTag(shard) + ':deliveries:meta', k.watchSequence(watchId)],
    // The worker reads the watches of the jobs that start together, and the records of one shard's, in one command.
    watchesToSend: [k.watch(watchId), k.watchSecrets(watchId), k.watch('wch_another'), k.watchSecrets('wch_another')],
    recordsToSend: [k.delivery(id, shard), k.deliveryPayload(id, shard), k.delivery(webhookId('wch_another', [2]), shard)],
    watchCompareAndSet: [k.watch(watchId), k.watchChanges],
    watchCreate: [k.watch(watchId), k.watchesByTenant(tenantId), k.watchesByChain(chain), k.watchSecrets(watchId), k.watchChanges],
    watchDeleteShard: [k.watchSequence(watchId), k.watchStats(watchId)],
    replay: [k.replay('rpl_1'), k.tenantReplayQuota(tenantId), k.tenantReplays(tenantId, chain), k.chainReplayTenants(chain)],
    cursor: [k.chainLease(chain), k.chainCursor(chain)],
    markers: [k.chainLease(chain), k.solanaGapMarkers(chain)],
  }
}

t.test('on a cluster, every script\'s keys share a slot, and the work spreads', async (t) => {
  const k = redisKeys('blockhook', { cluster: true })
  t.equal(k.deliveryShards, 6)
  for (let n = 0; n < 200; n++) {
    const sets = keySetsOf(k, `wch_${n.toString(36)}x`, `ten_${n % 7}`, String(n % 3))
    for (const [name, keys] of Object.entries(sets)) {
      const slots = new Set(keys.map(keySlot))
      if (slots.size !== 1) t.fail(`${name}: ${keys.join(' ')} span ${slots.size} slots`)
    }
  }
  t.pass('200 watches: each key set in one slot')

  const slots = Array.from({ length: 6 }, (_, shard) => keySlot(k.shardTag(shard)))
  t.same(slots.map((slot) => Math.floor((slot * 6) / CLUSTER_SLOTS)), [0, 1, 2, 3, 4, 5], `shard k's tag is in the k-th sixth of the slots (${slots.join(', ')})`)
  // redis-cli --cluster create gives 3 masters 0-5460, 5461-10922, 10923-16383.
  const master = (slot: number) => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2)
  t.same(slots.map(master), [0, 0, 1, 1, 2, 2], 'two shards per master of a 3-master cluster')
  t.not(keySlot(k.chainCursor('1')), keySlot(k.watchChanges), 'a chain\'s keys are apart from the control plane')

  const perShard = new Array<number>(6).fill(0)
  for (let n = 0; n < 6_000; n++) perShard[k.shardOf(`wch_${n.toString(36).padStart(20, '0')}`)]! += 1
  t.ok(perShard.every((count) => count > 800 && count < 1_200), `6,000 watch ids over the shards: ${perShard.join(', ')}`)
  t.equal(k.shardOf('wch_same'), redisKeys('blockhook', { cluster: true }).shardOf('wch_same'), 'the same shard in every process')
})
