/**
 * Where a watch starts (after the head at its creation), `fromBlock` backfills on create and on
 * PATCH /watches/:id/addresses, and watches without a url: through the API, on a real anvil and
 * Redis, with the subscriber's delivery records and queue read back from Redis.
 */
import t, { type Test } from 'tap'
import type { Address } from 'viem'
import { backfillRange } from '../src/api/watch-input.js'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import type { Watch } from '../src/domain/watch-types.js'
import type { RunningSubscriber } from '../workers/subscriber.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { send } from './helpers/contracts.js'
import { CHAIN, harness, startTokenChain, type Harness } from './helpers/subscriber-harness.js'

const { redisServer, anvil, clients, token } = await startTokenChain(t, 1_000_000n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const CAROL = '0x00000000000000000000000000000000000000c0' as Address
const transferFilter = { address: token, topics: [TRANSFER_TOPIC] }
const URL = 'https://example.com/hook'

type Answer = Watch & { secret: string; count: number; replayId: string; message: string; code: string; kind: string; fromBlock: number; eventsQueued: number }

async function setup(t: Test) {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const api = await buildTestApi(t, redisServer.url, { redisPrefix: h.config.redisPrefix, chains: h.config.chains })
  const tenant = await createTenant(api.app)
  let sub = await h.startSubscriber()
  await h.caughtUp(sub, await h.mine())
  const inject = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => {
    const res = await api.app.inject({ method, url, headers: tenant.headers, ...(payload && { payload }) })
    return { statusCode: res.statusCode, body: res.json() as Answer }
  }
  return {
    h, tenant,
    get sub() { return sub },
    set sub(next: RunningSubscriber) { sub = next },
    inject,
    createWatch: (payload: object) => inject('POST', '/watches', { chain: CHAIN, confirmations: 0, ...payload }),
    /** One transfer per block; returns the blocks and transaction hashes once the subscriber queued them. */
    async transfers(to: Address, count: number) {
      const sent: { block: number; tx: string }[] = []
      for (let i = 0; i < count; i++) {
        const tx = await send(clients, token, 'TestToken', 'transfer', [to, BigInt(i + 1)])
        sent.push({ block: await h.mine(), tx })
      }
      await h.caughtUp(sub, sent[sent.length - 1]!.block)
      return sent
    },
    /** Awaits the watch change reaching the leader's index. */
    async applied() {
      await (await h.leader(sub)).watchSet!.whenApplied(await h.feedPosition())
    },
    async handled(replayId: string) {
      await (await h.leader(sub)).replays!.handled(replayId)
    },
  }
}

const txHashes = async (h: Harness, watchId: string) =>
  (await h.records(watchId)).map((r) => (r.data.log as { transactionHash: string }).transactionHash)

t.test('a watch created after four transfers gets none of them, even when their block is matched again', async (t) => {
  const s = await setup(t)
  const { h } = s
  const before = await s.transfers(BOB, 4)
  const head = before[3]!.block
  const created = await s.createWatch({ type: 'evm.logs', filter: transferFilter, url: URL })
  t.equal(created.statusCode, 201)
  t.equal(created.body.startBlock, head + 1, 'starts after the head at its creation')
  await s.applied()

  // A subscriber starting afresh begins at the head: the last of the four blocks is matched again.
  await s.sub.close()
  await h.redis.del(h.keys.chainCursor(CHAIN), h.keys.chainRecentBlocks(CHAIN))
  s.sub = await h.startSubscriber()
  await h.caughtUp(s.sub, head)
  t.same(await h.records(created.body.id), [], 'no block older than the watch')

  const [after] = await s.transfers(CAROL, 1)
  t.same(await txHashes(h, created.body.id), [after!.tx], 'blocks after its creation are matched')
})

t.test('a watch without url is matched but queues nothing; one with a url on the same events gets them', async (t) => {
  const s = await setup(t)
  const { h } = s
  const streamOnly = await s.createWatch({ type: 'evm.logs', filter: transferFilter })
  t.equal(streamOnly.statusCode, 201)
  t.notOk('url' in streamOnly.body)
  const withUrl = await s.createWatch({ type: 'evm.logs', filter: transferFilter, url: URL })
  await s.applied()
  const jobsBefore = await h.redis.keys(`${h.keys.shardTag(0)}:*`)
  const [sent] = await s.transfers(BOB, 1)

  t.same(await txHashes(h, withUrl.body.id), [sent!.tx])
  t.same(await h.records(streamOnly.body.id), [], 'no delivery record')
  const stats = await h.redis.hgetall(h.keys.watchStats(streamOnly.body.id))
  t.same(stats, {}, 'nothing pending, nothing matched as a delivery')
  const [record] = await h.records(withUrl.body.id)
  const jobsAfter = (await h.redis.keys(`${h.keys.shardTag(0)}:*`)).filter((k) => !jobsBefore.includes(k))
  // The url watch's record has a payload key beside its job (same prefix); the url-less one has neither.
  t.same(jobsAfter.filter((k) => !k.includes(record!.id) && /:evt_/.test(k) && !k.includes(':stream-only:')), [], 'the only new job is the url watch\'s')
  const logged = await h.redis.xrange(h.keys.tenantEventLog(s.tenant.id, 0), '-', '+')
  const loggedIds = logged.map(([, fields]) => fields[fields.indexOf('watchId') + 1])
  t.equal(loggedIds.filter((id) => id === streamOnly.body.id).length, 1, "the url-less watch's event is in the event stream's log, once")
  t.equal(loggedIds.filter((id) => id === withUrl.body.id).length, 1)

  const test = await s.inject('POST', `/watches/${streamOnly.body.id}/test`, {})
  t.equal(test.statusCode, 400)
  t.equal(test.body.code, 'BH_WATCH_HAS_NO_URL')
  const patched = await s.inject('PATCH', `/watches/${streamOnly.body.id}`, { url: URL })
  t.equal(patched.body.url, URL, 'a url can be added later')
})

t.test('fromBlock on create delivers the matches from that block on, under the ids a replay gives them', async (t) => {
  const s = await setup(t)
  const { h } = s
  const sent = await s.transfers(BOB, 4)
  const created = await s.createWatch({ type: 'evm.logs', filter: transferFilter, url: URL, fromBlock: sent[1]!.block })
  t.equal(created.statusCode, 201)
  t.match(created.body.replayId, /^rpl_/)
  await s.handled(created.body.replayId)
  const [live] = await s.transfers(CAROL, 1)
  t.same(await txHashes(h, created.body.id), [sent[1]!.tx, sent[2]!.tx, sent[3]!.tx, live!.tx], 'the backfill, then live')
  const backfilled = await h.records(created.body.id)

  const replay = await s.inject('POST', `/watches/${created.body.id}/replay`, { fromBlock: sent[0]!.block, toBlock: live!.block })
  t.equal(replay.statusCode, 202)
  await s.handled(replay.body.replayId)
  const replayed = await h.records(created.body.id)
  t.same(replayed.map((r) => r.id).filter((id) => backfilled.some((b) => b.id === id)), backfilled.map((r) => r.id), 'same webhook-ids')
  t.equal(replayed.length, 5, 'the explicit replay range also covers the block before fromBlock')

  const pending = await s.createWatch({ type: 'evm.pending_transactions', filter: {}, url: URL, fromBlock: 1 })
  t.equal(pending.statusCode, 400)
})

t.test('a backfill reaches at most 10,000 blocks behind the head, and needs a known head', async (t) => {
  t.same(backfillRange('evm.logs', 10_000, 20_000), { fromBlock: 10_000, toBlock: 20_000 })
  t.throws(() => backfillRange('evm.logs', 9_999, 20_000), { statusCode: 400, message: 'body/fromBlock must be at most 10000 blocks behind the head (20000)' })
  t.equal(backfillRange('evm.logs', 20_001, 20_000), undefined, 'a block after the head: matched live')
  t.throws(() => backfillRange('evm.logs', 1, undefined), { statusCode: 409, code: 'BH_CHAIN_HEAD_UNKNOWN' })
  t.throws(() => backfillRange('solana.slot', 1, 5), { statusCode: 400, code: 'BH_FIELD_NOT_FOR_TYPE' })
})

t.test('fromBlock on PATCH /watches/:id/addresses delivers only the added addresses\' matches', async (t) => {
  const s = await setup(t)
  const { h } = s
  const watch = await s.createWatch({ type: 'evm.address_activity', filter: { addresses: [BOB] }, url: URL })
  await s.applied()
  const toBob = await s.transfers(BOB, 2)
  const toCarol = await s.transfers(CAROL, 2)
  t.equal((await h.records(watch.body.id)).length, 2, 'the two token transfers to bob')

  const patched = await s.inject('PATCH', `/watches/${watch.body.id}/addresses`, { add: [CAROL], fromBlock: toBob[0]!.block })
  t.equal(patched.statusCode, 200)
  t.equal(patched.body.count, 2)
  await s.handled(patched.body.replayId)
  const progress = await s.inject('GET', `/watches/${watch.body.id}/replays/${patched.body.replayId}`)
  t.match(progress.body, { status: 'completed', kind: 'backfill', fromBlock: toBob[0]!.block, eventsQueued: 2 }, 'its progress, through the API')
  const records = await h.records(watch.body.id)
  const activity = records.map((r) => (r.data.activity as { to: string; transactionHash: string }))
  t.same(activity.slice(2).map((a) => [a.to, a.transactionHash]), toCarol.map((c) => [CAROL, c.tx]), 'carol\'s two, once each')
  t.equal(records.length, 4, 'bob\'s are not sent again')
})
