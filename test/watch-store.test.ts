import t, { type Test } from 'tap'
import { createRedis } from '../src/storage/redis.js'
import { redisKeys } from '../src/storage/keys.js'
import { SecretBox } from '../src/storage/secret-box.js'
import { WatchStore, type WatchChange } from '../src/storage/watch-store.js'
import type { Watch } from '../src/domain/watch-types.js'
import { startRedis } from './helpers/processes.js'
import { testConfig } from './helpers/config.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

function setup(t: Test) {
  const config = testConfig({ redisUrl: redisServer.url })
  const redis = createRedis(config.redisUrl, 'test')
  const reader = createRedis(config.redisUrl, 'test-reader')
  t.teardown(() => { redis.disconnect(); reader.disconnect() })
  const store = new WatchStore(redis, redisKeys(config.redisPrefix), new SecretBox(randomKey()))
  return { store, redis, reader, config }
}

function randomKey() {
  return Buffer.alloc(32, 7)
}

function watch(id: string, chain = 'local'): Watch {
  const now = new Date().toISOString()
  return {
    id, tenantId: 'ten_a', chain, type: 'evm.blocks', filter: {}, url: 'https://example.com/hook',
    status: 'active', confirmations: 0, createdAt: now, updatedAt: now,
  }
}

t.test('the change feed delivers create, update and delete after the snapshot it starts from', async (t) => {
  const { store, reader } = setup(t)
  await store.create(watch('wch_before'), 'whsec_x')
  const snapshot = await store.loadChain('local')
  t.same(snapshot.watches.map((w) => w.id), ['wch_before'])

  const seen: WatchChange[] = []
  const abort = new AbortController()
  let resolveThree!: () => void
  const three = new Promise<void>((resolve) => { resolveThree = resolve })
  const following = store.followChanges(reader, snapshot.position, abort.signal, async (changes) => {
    seen.push(...changes)
    if (seen.length >= 3) resolveThree()
  })

  const created = watch('wch_after')
  await store.create(created, 'whsec_y')
  await store.update(created.id, (w) => ({ ...w, status: 'paused' }))
  await store.delete(created)
  await three
  abort.abort()
  await following

  t.same(seen.map((c) => [c.op, c.watchId]), [['upsert', 'wch_after'], ['upsert', 'wch_after'], ['delete', 'wch_after']])
})

t.test('secrets are stored sealed and rotation keeps the old one for the grace period', async (t) => {
  const { store, redis, config } = setup(t)
  const w = watch('wch_secret')
  await store.create(w, 'whsec_first')
  const stored = await redis.hgetall(redisKeys(config.redisPrefix).watchSecrets(w.id))
  t.notMatch(JSON.stringify(stored), /whsec_first/)
  await store.rotateSecret(w.id, 'whsec_second', 1000, 10_000)
  t.same(await store.signingSecrets(w.id, 10_500), ['whsec_second', 'whsec_first'])
  t.same(await store.signingSecrets(w.id, 11_001), ['whsec_second'])
})
