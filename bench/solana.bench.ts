/**
 * Solana subscriber benchmark (issue 5). A documented-protocol node (test/helpers/solana-node.ts)
 * floods one `logsSubscribe` shared by WATCHES watches with NOTIFICATIONS notifications, as a busy
 * `{"all": true}` subscription does on mainnet; a real redis-server takes the deliveries.
 *
 * 1. Notifications/s from the node's first frame to the last delivery record stored and queued,
 *    against a bare loop of DeliveryQueue.enqueue of the same events in batches of 1,000 (the
 *    most the delivery queue can take here). Target: ratio ≥ 0.5.
 * 2. The process's peak RSS.
 */
import { pino } from 'pino'
import { loadConfig, type Config } from '../src/config/config.js'
import { SolanaChain } from '../src/chains/solana/solana-chain.js'
import { matchedEvents } from '../src/chains/solana/notifications.js'
import type { SolanaWatch } from '../src/chains/solana/subscriptions.js'
import { startRedisServer } from '../src/dev/child-processes.js'
import { newWebhookSecret } from '../src/domain/ids.js'
import type { Watch } from '../src/domain/watch-types.js'
import type { RedisClient } from '../src/storage/redis.js'
import type { RedisKeys } from '../src/storage/keys.js'
import { wire } from '../src/wiring.js'
import { ChainLease } from '../src/subscriber/lease.js'
import { FakeSolanaNode, solanaFixture } from '../test/helpers/solana-node.js'

const NOTIFICATIONS = 10_000
const WATCHES = 10
const BASELINE_BATCH = 1_000
const TARGET_RATIO = 0.5

function benchConfig(redisUrl: string, redisPrefix: string, node: FakeSolanaNode): Config {
  const base = loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', REDIS_URL: redisUrl, LOG_LEVEL: 'silent' },
    { file: { chains: [{ id: 'sol', type: 'solana', ws: [node.wsUrl], commitment: 'confirmed' }] } },
  )
  return { ...base, redisPrefix }
}

function logsWatch(i: number): SolanaWatch {
  const now = new Date().toISOString()
  return {
    id: `wch_bench${i}`, tenantId: 'ten_bench', chain: 'sol', type: 'solana.logs', filter: { all: true },
    url: `https://example.com/hook/${i}`, status: 'active', createdAt: now, updatedAt: now,
  }
}

/** The n-th notification: the documentation's example at its own slot and signature. */
function notification(n: number) {
  const example = solanaFixture('logs-notification').params.result
  const signature = `${example.value.signature.slice(0, -8)}${n.toString(36).padStart(8, '1').replace(/[0lIO]/g, '1')}`
  return { context: { slot: 5_000_000 + n }, value: { ...example.value, signature } }
}

async function matchedCount(redis: RedisClient, keys: RedisKeys): Promise<number> {
  const counts = await Promise.all(Array.from({ length: WATCHES }, (_, i) => redis.hget(keys.watchStats(`wch_bench${i}`), 'matched')))
  return counts.reduce((sum, c) => sum + Number(c ?? 0), 0)
}

async function untilMatched(redis: RedisClient, keys: RedisKeys, target: number): Promise<void> {
  while ((await matchedCount(redis, keys)) < target) await new Promise((resolve) => setTimeout(resolve, 10))
}

async function main(): Promise<void> {
  const redisServer = await startRedisServer()
  const node = await FakeSolanaNode.start()
  let peakRss = 0
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 50)
  try {
    const watches = Array.from({ length: WATCHES }, (_, i) => logsWatch(i))
    const events = Array.from({ length: NOTIFICATIONS }, (_, n) => {
      const { context, value } = notification(n)
      return matchedEvents('solana.logs', { slot: context.slot, value }, watches, Date.now())
    })

    // Baseline: the delivery queue alone, fed in large batches.
    const logger = pino({ level: 'silent' })
    const baseline = wire(benchConfig(redisServer.url, 'bench-baseline', node), 'bench-baseline', logger)
    const baselineQueue = baseline.deliveryQueue
    const baselineStart = performance.now()
    for (let i = 0; i < NOTIFICATIONS; i += BASELINE_BATCH / WATCHES) {
      await baselineQueue.enqueue(events.slice(i, i + BASELINE_BATCH / WATCHES).flat())
    }
    const baselineSec = (performance.now() - baselineStart) / 1000
    await baseline.close()

    // The subscriber: node frames → SolanaChain → delivery records and jobs.
    const config = benchConfig(redisServer.url, 'bench-solana', node)
    const wiring = wire(config, 'bench-solana', logger)
    const { redis, keys, watches: store, deliveryQueue } = wiring
    for (const watch of watches) await store.create(watch as Watch, newWebhookSecret())
    const chain = new SolanaChain({
      chain: config.chains[0]!, redis, keys, store, watches: wiring.watchService, deliveryQueue, metrics: wiring.metrics, logger,
    })
    chain.start()
    const lease = new ChainLease(redis, keys.chainLease('sol'), 'bench', 60_000)
    await lease.acquire()
    await chain.lead(lease, () => { throw new Error('lease lost') })
    const sub = await node.waitForSubscription('logsSubscribe')
    const start = performance.now()
    for (let n = 0; n < NOTIFICATIONS; n++) node.notify(sub, notification(n))
    await untilMatched(redis, keys, NOTIFICATIONS * WATCHES)
    const subscriberSec = (performance.now() - start) / 1000
    await chain.close()
    await wiring.close()

    const perSecond = NOTIFICATIONS / subscriberSec
    const baselinePerSecond = NOTIFICATIONS / baselineSec
    const ratio = perSecond / baselinePerSecond
    console.log(`notifications: ${NOTIFICATIONS} on one logsSubscribe shared by ${WATCHES} watches (${NOTIFICATIONS * WATCHES} deliveries)`)
    console.log(`subscriber: ${perSecond.toFixed(0)} notifications/s (${(perSecond * WATCHES).toFixed(0)} deliveries/s queued)`)
    console.log(`baseline (DeliveryQueue.enqueue, batches of ${BASELINE_BATCH}): ${baselinePerSecond.toFixed(0)} notifications/s`)
    console.log(`ratio: ${ratio.toFixed(2)} (target ≥ ${TARGET_RATIO}) ${ratio >= TARGET_RATIO ? 'ok' : 'BELOW TARGET'}`)
    console.log(`peak RSS: ${(peakRss / 1024 / 1024).toFixed(0)} MiB`)
    if (ratio < TARGET_RATIO) process.exitCode = 1
  } finally {
    clearInterval(sampler)
    await node.stop()
    await redisServer.stop()
  }
}

await main()
