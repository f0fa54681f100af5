/**
 * Replays through the API on a real anvil and Redis: tenants take turns (one tenant's many long
 * replays do not hold up another's short one), a tenant's unfinished replays are bounded (429,
 * nothing dropped), and GET /watches/:id/replays/:replayId shows how far each got.
 */
import t, { type Test } from 'tap'
import { MAX_PENDING_REPLAY_BLOCKS, MAX_PENDING_REPLAYS, MAX_REPLAY_BLOCKS, REPLAY_CHUNK_BLOCKS } from '../src/delivery/replay-requests.js'
import { buildTestApi, createTenant } from './helpers/api.js'
import { send } from './helpers/contracts.js'
import { CHAIN, harness, rpc, startTokenChain, type Harness } from './helpers/subscriber-harness.js'

const { redisServer, anvil, clients, token, transferWatch } = await startTokenChain(t, 1_000_000n)
const BOB = '0x00000000000000000000000000000000000000b0'

interface Progress {
  replayId: string; watchId: string; status: string; kind: string; fromBlock: number; toBlock: number
  blocksDone: number; eventsQueued: number; completedAt: string | null
}

async function setup(t: Test, h: Harness) {
  const api = await buildTestApi(t, redisServer.url, { redisPrefix: h.config.redisPrefix, chains: h.config.chains, rateLimitPerSecond: 100_000 })
  const tenant = async (name: string) => {
    const { headers } = await createTenant(api.app, name)
    const res = await api.app.inject({ method: 'POST', url: '/watches', headers, payload: { chain: CHAIN, ...transferWatch, url: 'https://example.com/hook' } })
    const watchId = (res.json() as { id: string }).id
    return {
      headers, watchId,
      replay: (fromBlock: number, toBlock: number) =>
        api.app.inject({ method: 'POST', url: `/watches/${watchId}/replay`, headers, payload: { fromBlock, toBlock } }),
      async progress(replayId: string): Promise<Progress> {
        const res = await api.app.inject({ method: 'GET', url: `/watches/${watchId}/replays/${replayId}`, headers })
        if (res.statusCode !== 200) throw new Error(`progress: ${res.statusCode} ${res.body}`)
        return res.json() as Progress
      },
    }
  }
  return { api, tenant }
}

t.test("one tenant's many long replays do not hold up another tenant's short one; each shows its progress", async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const { tenant } = await setup(t, h)
  const a = await tenant('a')
  const b = await tenant('b')
  const transfers: number[] = []
  for (let i = 0; i < 2; i++) {
    await send(clients, token, 'TestToken', 'transfer', [BOB, 1n])
    transfers.push(await h.mine())
  }
  await rpc(anvil.url, 'anvil_mine', ['0x190']) // 400 empty blocks after the transfers
  const head = await h.mine()
  let sub = await h.startSubscriber()
  await h.caughtUp(sub, head)
  await sub.close()

  // Queued while no subscriber leads, A's first: a queue served in arrival order would do B's last.
  const from = transfers[0]!
  const aIds: string[] = []
  for (let i = 0; i < 4; i++) {
    const res = await a.replay(from, from + 6 * REPLAY_CHUNK_BLOCKS - 1)
    t.equal(res.statusCode, 202)
    aIds.push((res.json() as { replayId: string }).replayId)
  }
  const bId = ((await b.replay(from, from + 4)).json() as { replayId: string }).replayId
  t.match(await b.progress(bId), { status: 'queued', kind: 'replay', fromBlock: from, toBlock: from + 4, blocksDone: 0, eventsQueued: 0, completedAt: null })

  sub = await h.startSubscriber()
  const replays = (await h.leader(sub)).replays!
  const completed: string[] = []
  await Promise.all([...aIds, bId].map((id) => replays.handled(id).then(() => completed.push(id))))
  t.equal(completed[0], bId, "B's 5 blocks are done first, after one chunk of A's")
  t.same(completed.slice(1), aIds, "A's in the order it asked")

  t.match(await b.progress(bId), { status: 'completed', blocksDone: 5, eventsQueued: 2, completedAt: String })
  for (const id of aIds) {
    t.match(await a.progress(id), { status: 'completed', blocksDone: 6 * REPLAY_CHUNK_BLOCKS, eventsQueued: 2 })
  }
  t.equal(await h.redis.llen(h.keys.chainReplayTenants(CHAIN)), 0, 'no tenant has work left')
  const quotaKeys = await h.redis.keys(h.keys.tenantReplayQuota('*'))
  for (const key of quotaKeys) t.same(await h.redis.hgetall(key), { blocks: '0', replays: '0' }, 'the quota is all given back')

  const other = await b.progress(aIds[0]!).catch((err: Error) => err.message)
  t.match(other, /404/, "another watch's replay is not found")
})

t.test("a tenant's unfinished replays are bounded: past the quota a replay gets 429, and every accepted one stays queued", async (t) => {
  const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
  const { api, tenant } = await setup(t, h)
  const big = await tenant('big')
  const many = await tenant('many')
  const bystander = await tenant('bystander')

  const accepted: string[] = []
  for (let blocks = 0; blocks + MAX_REPLAY_BLOCKS <= MAX_PENDING_REPLAY_BLOCKS; blocks += MAX_REPLAY_BLOCKS) {
    const res = await big.replay(blocks, blocks + MAX_REPLAY_BLOCKS - 1)
    t.equal(res.statusCode, 202)
    accepted.push((res.json() as { replayId: string }).replayId)
  }
  const refused = await big.replay(0, 0)
  t.equal(refused.statusCode, 429)
  t.match(refused.json(), { statusCode: 429, error: 'Too Many Requests', code: 'BH_REPLAY_QUOTA_EXCEEDED', message: /100000 blocks/ })

  for (let i = 0; i < MAX_PENDING_REPLAYS; i++) t.equal((await many.replay(i, i)).statusCode, 202)
  t.match((await many.replay(0, 0)).json(), { statusCode: 429, code: 'BH_REPLAY_QUOTA_EXCEEDED', message: /100 requests/ })

  t.equal((await bystander.replay(0, 9)).statusCode, 202, "another tenant's quota is its own")
  for (const id of accepted) t.match(await big.progress(id), { status: 'queued', blocksDone: 0 })
  t.equal(await h.redis.llen(h.keys.tenantReplays((await api.deps.watches.get(big.watchId))!.tenantId, CHAIN)), accepted.length, 'every accepted one is queued')
})
