import t from 'tap'
import type { Test } from 'tap'
import { startAnvil, startRedis } from './helpers/processes.js'
import { harness, rpc, type Harness } from './helpers/subscriber-harness.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

/** Resolves once `condition` holds, checked after each turn of the event loop's timers. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20))
}

const delivered = async (h: Harness, watchId: string) =>
  (await h.records(watchId)).map((r) => [r.type, (r.data.block as { number: number; hash: string }).hash])

/** A subscriber on anvil A behind a proxy, caught up; then anvil restarted fresh (B, another genesis) behind the same URL. */
async function restartedNode(t: Test, dev: boolean) {
  const a = await startAnvil(['--no-mining'])
  const b = await startAnvil(['--no-mining', '--timestamp', '1700000000'])
  t.teardown(async () => { await a.stop(); await b.stop() })
  const proxy = await startTcpProxy(a.port)
  t.teardown(() => proxy.close())
  const h = harness(t, redisServer.url, { ws: [proxy.wsUrl], http: a.url }, {}, { dev })
  const watch = await h.createWatch({ type: 'evm.blocks', filter: {} })
  const sub = await h.startSubscriber()
  await h.mine()
  await h.caughtUp(sub, await h.mine())
  const before = await delivered(h, watch.id)
  for (let i = 0; i < 2; i++) await rpc(b.url, 'evm_mine')
  proxy.retarget(b.port)
  proxy.cut()
  return { h, b, sub, watch, before }
}

t.test('anvil restarted fresh behind the same URL: the chain stops, /readyz names it, nothing is retracted', async (t) => {
  const { h, b, sub, watch, before } = await restartedNode(t, false)
  await until(() => sub.notReadyReason() !== undefined)
  t.match(sub.notReadyReason(), /chain local/)
  await rpc(b.url, 'evm_mine')
  t.same(await delivered(h, watch.id), before, 'nothing from the new chain, no retraction of the old one')
  t.notOk(before.some(([type]) => type === 'evm.block.removed'))
})
