/**
 * Batches per block (issue 12): one block of 500 ERC-20 Transfer logs (TestToken.spray, one
 * transaction) matched by 10 watches, first with per-event watches (5,000 webhooks a block), then
 * with `"batch": "block"` watches (one evm.batch, in parts if over 256 KiB, per watch), in one run.
 * For each: webhooks received, Redis bytes per block (used_memory after minus before, and the bytes
 * clients wrote to Redis), CPU per block of the subscriber and worker processes and of Redis's
 * main thread, and the time from the block being mined to the receiver's last 2xx.
 *
 * The subscriber and the delivery worker are the real roles (workers/subscriber.ts,
 * workers/delivery-worker.ts) with the default config, each in a process of its own (this file
 * with `subscriber` or `worker`); anvil (--no-mining) and redis-server are real; the receiver, in
 * this process, answers 200 at once and verifies nothing. Each mode starts from an empty Redis with
 * its watches created through the watch service, delivers one unmeasured block (warm-up), then
 * BATCH_BENCH_BLOCKS blocks (default 3), one at a time: a block is delivered in full, its records
 * marked delivered, before the next is mined.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { encodeFunctionData, type Address } from 'viem'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { loadConfig, type Config } from '../src/config/config.js'
import { wire, type Wiring } from '../src/wiring.js'
import { ACCOUNTS, anvilClients, compiledTokens, deploy } from '../test/helpers/contracts.js'
import { startAnvil, startRedis } from '../test/helpers/processes.js'
import { rpc } from '../test/helpers/subscriber-harness.js'
import { forkRole, nextMessage, now, processCpuMs, redisMainThreadCpuMs, runSubscriberRole, runWorkerRole, stopRole, subscriberReached } from './bench-processes.js'

const LOGS_PER_BLOCK = 500
const WATCHES = 10
const BLOCKS = Number(process.env.BATCH_BENCH_BLOCKS ?? 3)
const CHAIN = 'local'
const PREFIX = 'bench'
const TENANT = 'ten_bench'
const BOB = '0x00000000000000000000000000000000000000b0' as Address

function benchConfig(redisUrl: string, wsUrl: string): Config {
  const base = loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', REDIS_URL: redisUrl, LOG_LEVEL: 'silent', BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true' },
    { file: { chains: [{ id: CHAIN, type: 'evm', ws: [wsUrl], confirmations: 0 }] } },
  )
  return { ...base, redisPrefix: PREFIX }
}

const childConfig = () => benchConfig(process.env.BENCH_REDIS_URL!, process.env.BENCH_WS_URL!)

// --- the receiver -------------------------------------------------------------------------------

/** Answers 200 at once; counts requests, their body bytes and distinct webhook-ids, and when it last answered. */
async function startBenchReceiver() {
  let waiter: { count: number; resolve: () => void } | undefined
  const state = { count: 0, bodyBytes: 0, ids: new Set<string>(), lastAt: 0 }
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => { state.bodyBytes += chunk.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-length': '0' })
      res.end()
      state.lastAt = now()
      state.count++
      state.ids.add(String(req.headers['webhook-id']))
      if (waiter && state.count >= waiter.count) waiter.resolve()
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    reset() { Object.assign(state, { count: 0, bodyBytes: 0, ids: new Set<string>(), lastAt: 0 }) },
    async waitForCount(count: number): Promise<void> {
      if (state.count < count) await new Promise<void>((resolve) => { waiter = { count, resolve } })
      waiter = undefined
    },
    close: () => { server.closeAllConnections(); server.close() },
  }
}
type BenchReceiver = Awaited<ReturnType<typeof startBenchReceiver>>

// --- one mode -----------------------------------------------------------------------------------

interface BlockFigures {
  deliveries: number
  bodyBytes: number
  usedMemoryBytes: number
  bytesWrittenToRedis: number
  subscriberCpuMs: number
  workerCpuMs: number
  redisCpuMs: number
  queuedMs: number
  lastAnsweredMs: number
}

async function redisInfo(wiring: Wiring): Promise<{ usedMemory: number; netInput: number }> {
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)![1])
  const [memory, stats] = await Promise.all([wiring.redis.info('memory'), wiring.redis.info('stats')])
  return { usedMemory: field(memory, 'used_memory'), netInput: field(stats, 'total_net_input_bytes') }
}

async function runMode(batch: 'none' | 'block', wiring: Wiring, anvil: { url: string; wsUrl: string }, redisUrl: string, token: Address, receiver: BenchReceiver): Promise<BlockFigures[]> {
  const { redis, keys } = wiring
  await redis.flushall()
  await rpc(anvil.url, 'evm_mine') // a fresh subscriber starts at the head: an empty one
  const watchIds: string[] = []
  for (let i = 0; i < WATCHES; i++) {
    const { watch } = await wiring.watchService.create(TENANT, {
      chain: CHAIN, type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, url: `${receiver.url}/hook/${i}`, batch,
    })
    watchIds.push(watch.id)
  }
  const env = { BENCH_REDIS_URL: redisUrl, BENCH_WS_URL: anvil.wsUrl }
  const subscriber = forkRole(import.meta.url, 'subscriber', env)
  const worker = forkRole(import.meta.url, 'worker', env)
  await Promise.all([nextMessage(subscriber), nextMessage(worker)])
  const reached = (block: number) => subscriberReached(subscriber, block)
  await reached(Number(await rpc<string>(anvil.url, 'eth_blockNumber')))

  // Deliveries queued so far: the watches' sequences count every webhook they were given.
  const queued = async () => (await redis.mget(watchIds.map((id) => keys.watchSequence(id)))).reduce((sum, v) => sum + Number(v ?? 0), 0)
  const pending = async () => (await Promise.all(watchIds.map((id) => redis.hget(keys.watchStats(id), 'pending')))).reduce((sum, v) => sum + Number(v ?? 0), 0)
  const spray = encodeFunctionData({ abi: compiledTokens().TestToken.abi, functionName: 'spray', args: [BOB, BigInt(LOGS_PER_BLOCK)] })

  const figures: BlockFigures[] = []
  try {
    for (let round = 0; round <= BLOCKS; round++) {
      const queued0 = await queued()
      const redis0 = await redisInfo(wiring)
      const cpu0 = { subscriber: processCpuMs(subscriber.pid!), worker: processCpuMs(worker.pid!), redis: await redisMainThreadCpuMs(redis) }
      receiver.reset()
      const tx = await rpc<string>(anvil.url, 'eth_sendTransaction', [{ from: ACCOUNTS[0], to: token, data: spray, gas: '0x989680' }])
      const minedAt = now()
      await rpc(anvil.url, 'evm_mine')
      const block = Number(await rpc<string>(anvil.url, 'eth_blockNumber'))
      await reached(block)
      const queuedAt = now()
      const deliveries = (await queued()) - queued0
      await receiver.waitForCount(deliveries)
      const lastAnsweredAt = receiver.state.lastAt
      // The worker records each attempt after its 2xx; the block is done when none is pending.
      while ((await pending()) > 0) await new Promise((resolve) => setTimeout(resolve, 5))
      const cpu1 = { subscriber: processCpuMs(subscriber.pid!), worker: processCpuMs(worker.pid!), redis: await redisMainThreadCpuMs(redis) }
      const redis1 = await redisInfo(wiring)

      const receipt = await rpc<{ logs: unknown[]; blockNumber: string }>(anvil.url, 'eth_getTransactionReceipt', [tx])
      if (receipt.logs.length !== LOGS_PER_BLOCK || Number(receipt.blockNumber) !== block) throw new Error(`block ${block}: the spray emitted ${receipt.logs.length} logs`)
      if (batch === 'none' && deliveries !== LOGS_PER_BLOCK * WATCHES) throw new Error(`block ${block}: ${deliveries} deliveries queued`)
      if (receiver.state.count !== deliveries || receiver.state.ids.size !== deliveries) {
        throw new Error(`block ${block}: ${deliveries} queued, ${receiver.state.count} received, ${receiver.state.ids.size} distinct ids`)
      }
      if (round === 0) continue // warm-up
      figures.push({
        deliveries,
        bodyBytes: receiver.state.bodyBytes,
        usedMemoryBytes: redis1.usedMemory - redis0.usedMemory,
        bytesWrittenToRedis: redis1.netInput - redis0.netInput,
        subscriberCpuMs: cpu1.subscriber - cpu0.subscriber,
        workerCpuMs: cpu1.worker - cpu0.worker,
        redisCpuMs: cpu1.redis - cpu0.redis,
        queuedMs: queuedAt - minedAt,
        lastAnsweredMs: lastAnsweredAt - minedAt,
      })
    }
  } finally {
    await Promise.all([subscriber, worker].map(stopRole))
  }
  return figures
}

// --- the report ---------------------------------------------------------------------------------

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length

function report(perEvent: BlockFigures[], batched: BlockFigures[]): void {
  const rows: [string, (f: BlockFigures) => number, (v: number) => string][] = [
    ['webhooks received per block', (f) => f.deliveries, (v) => v.toFixed(0)],
    ['webhook body bytes per block, KiB', (f) => f.bodyBytes / 1024, (v) => v.toFixed(0)],
    ['Redis used_memory delta per block, KiB', (f) => f.usedMemoryBytes / 1024, (v) => v.toFixed(0)],
    ['bytes written to Redis per block, KiB', (f) => f.bytesWrittenToRedis / 1024, (v) => v.toFixed(0)],
    ['subscriber CPU per block, ms', (f) => f.subscriberCpuMs, (v) => v.toFixed(0)],
    ['worker CPU per block, ms', (f) => f.workerCpuMs, (v) => v.toFixed(0)],
    ['Redis main-thread CPU per block, ms', (f) => f.redisCpuMs, (v) => v.toFixed(0)],
    ['all three, CPU per block, ms', (f) => f.subscriberCpuMs + f.workerCpuMs + f.redisCpuMs, (v) => v.toFixed(0)],
    ['mined → queued (subscriber), ms', (f) => f.queuedMs, (v) => v.toFixed(0)],
    ['mined → last 2xx, ms', (f) => f.lastAnsweredMs, (v) => v.toFixed(0)],
  ]
  const line = (a: string, b: string, c: string, d: string) => console.log(`${a.padEnd(42)} ${b.padStart(12)} ${c.padStart(12)} ${d.padStart(16)}`)
  console.log(`${LOGS_PER_BLOCK} Transfer logs in one block, ${WATCHES} watches; mean of ${BLOCKS} blocks after one warm-up block`)
  line('figure', 'per-event', 'batched', 'batched/per-event')
  for (const [name, pick, format] of rows) {
    const a = mean(perEvent.map(pick))
    const b = mean(batched.map(pick))
    line(name, format(a), format(b), (b / a).toFixed(3))
  }
  const range = (figures: BlockFigures[]) => `${Math.min(...figures.map((f) => f.lastAnsweredMs)).toFixed(0)}–${Math.max(...figures.map((f) => f.lastAnsweredMs)).toFixed(0)}`
  console.log(`mined → last 2xx per block, min–max ms: per-event ${range(perEvent)}, batched ${range(batched)}`)
}

async function main(): Promise<void> {
  const redisServer = await startRedis()
  const anvil = await startAnvil(['--no-mining'])
  const receiver = await startBenchReceiver()
  const config = benchConfig(redisServer.url, anvil.wsUrl)
  const wiring = wire(config, 'bench', pino({ level: 'silent' }))
  try {
    const token = await deploy(anvilClients(anvil.url), 'TestToken', async () => { await rpc(anvil.url, 'evm_mine') })
    const perEvent = await runMode('none', wiring, anvil, redisServer.url, token, receiver)
    const batched = await runMode('block', wiring, anvil, redisServer.url, token, receiver)
    report(perEvent, batched)
  } finally {
    await wiring.close()
    receiver.close()
    await anvil.stop()
    await redisServer.stop()
  }
}

const role = process.argv[2]
if (role === 'subscriber') await runSubscriberRole(childConfig(), CHAIN)
else if (role === 'worker') await runWorkerRole(childConfig())
else await main()
