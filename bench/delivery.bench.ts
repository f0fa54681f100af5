/**
 * Delivery benchmark (issue 4). A loopback receiver answering 200 at once (this file started with
 * `receiver`), a real redis-server, and one delivery worker in a process of its own (`worker`):
 *
 * 1. 20,000 queued deliveries through queue, signing and got: deliveries/s, against a bare loop
 *    of got POSTs (this file with `baseline`, also its own process) with the same concurrency,
 *    URLs and bodies in the same run. Target: ratio ≥ 0.5.
 * 2. Enqueue → the receiver's 2xx at an offered 1,000 deliveries/s: p50 and p99 (target p99 ≤ 50 ms);
 *    again at 200/s, below saturation, for the pipeline's own latency.
 * 3. The worker process's peak RSS.
 *
 * Deliveries go to 10 watches (10 URL paths on the receiver), as from several users; the default
 * delivery config holds (concurrency 100, maxConcurrencyPerUrl 10), so all 100 worker slots can
 * be busy without exceeding any URL's cap.
 */
import type { ChildProcess } from 'node:child_process'
import http from 'node:http'
import { pino } from 'pino'
import { got } from 'got'
import { loadConfig, type Config } from '../src/config/config.js'
import { renderWebhookBody } from '../src/delivery/delivery-record.js'
import { webhookHeaders } from '../src/delivery/signing.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import { startRedisServer } from '../src/dev/child-processes.js'
import type { Watch } from '../src/domain/watch-types.js'
import { wire } from '../src/wiring.js'
import { startWorker } from '../workers/delivery-worker.js'
import { benchEvent } from './bench-events.js'
import { forkRole, nextMessage, now, percentile, receive, runReceiverChild, type ReceiverReport } from './bench-processes.js'

const THROUGHPUT_DELIVERIES = 20_000
const URL_COUNT = 10
const OFFERED_PER_SECOND = 1_000
const LOW_OFFERED_PER_SECOND = 200
const LATENCY_SECONDS = 5
const LATENCY_TICK_MS = 5
const SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64')
const TARGET_RATIO = 0.5
const TARGET_P99_MS = 50

function benchConfig(redisUrl: string, redisPrefix: string): Config {
  const base = loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', REDIS_URL: redisUrl, LOG_LEVEL: 'silent', BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true' },
    { file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }] } },
  )
  return { ...base, redisPrefix }
}

function watchIdOf(i: number): string {
  return `wch_bench${i}`
}

// --- the worker process ---------------------------------------------------------------------

async function runWorkerChild(): Promise<void> {
  const config = benchConfig(process.env.BENCH_REDIS_URL!, process.env.BENCH_PREFIX!)
  const worker = await startWorker(config, pino({ level: 'silent' }))
  process.send!({ ready: true })
  process.once('message', async () => {
    await worker.close()
    const { maxRSS, userCPUTime, systemCPUTime } = process.resourceUsage()
    process.send!({ maxRssKb: maxRSS, cpuMs: (userCPUTime + systemCPUTime) / 1000 }, () => process.exit(0))
  })
}

// --- the bare got loop ----------------------------------------------------------------------

async function runBaselineChild(): Promise<void> {
  const receiverUrl = process.env.BENCH_RECEIVER!
  const concurrency = Number(process.env.BENCH_CONCURRENCY)
  const agent = { http: new http.Agent({ keepAlive: true }) }
  let next = 0
  const sequence = new Map<string, number>()
  async function lane(): Promise<void> {
    while (next < THROUGHPUT_DELIVERIES) {
      const n = next++
      const watchId = watchIdOf(n % URL_COUNT)
      const seq = (sequence.get(watchId) ?? 0) + 1
      sequence.set(watchId, seq)
      const event = benchEvent(watchId, n)
      const body = renderWebhookBody({ ...event, sequence: seq })
      await got.post(`${receiverUrl}/hook/${n % URL_COUNT}`, {
        body,
        headers: {
          'content-type': 'application/json', 'user-agent': USER_AGENT,
          ...webhookHeaders({ id: event.id, timestampSec: Math.floor(Date.now() / 1000), body, secrets: [SECRET] }),
        },
        timeout: { request: 10_000 }, retry: { limit: 0 }, followRedirect: false, throwHttpErrors: false, agent,
      })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const { userCPUTime, systemCPUTime } = process.resourceUsage()
  process.send!({ cpuMs: (userCPUTime + systemCPUTime) / 1000 }, () => process.exit(0))
}

function ratePerSecond(report: ReceiverReport): number {
  return (report.count - 1) / ((report.lastAt - report.firstAt) / 1000)
}

function forkSelf(role: string, env: Record<string, string>): ChildProcess {
  return forkRole(import.meta.url, role, env)
}

function print(name: string, value: string, ratio: string): void {
  console.log(`${name.padEnd(46)} ${value.padStart(14)}   ${ratio}`)
}

async function main(): Promise<void> {
  const redisServer = await startRedisServer()
  const receiver = forkSelf('receiver', {})
  const { url: receiverUrl } = await nextMessage<{ url: string }>(receiver)
  const config = benchConfig(redisServer.url, 'bench')
  const wiring = wire(config, 'bench', pino({ level: 'silent' }))
  const { watches, deliveryQueue } = wiring
  try {
    for (let i = 0; i < URL_COUNT; i++) {
      const at = new Date().toISOString()
      const watch: Watch = {
        id: watchIdOf(i), tenantId: 'ten_bench', chain: 'eth', type: 'evm.logs', filter: {}, url: `${receiverUrl}/hook/${i}`,
        status: 'active', confirmations: 0, createdAt: at, updatedAt: at,
      }
      await watches.create(watch, SECRET)
    }

    // 1a. The bare got loop: same concurrency, URLs and bodies.
    let baselineCpuMs = 0
    const baselineReport = await receive(receiver, THROUGHPUT_DELIVERIES, false, async () => {
      const baseline = forkSelf('baseline', { BENCH_RECEIVER: receiverUrl, BENCH_CONCURRENCY: String(config.delivery.concurrency) })
      baselineCpuMs = (await nextMessage<{ cpuMs: number }>(baseline)).cpuMs
    })

    // 1b. The same deliveries queued first, then one worker process drains them.
    for (let from = 0; from < THROUGHPUT_DELIVERIES; from += 1000) {
      const batch = Array.from({ length: 1000 }, (_, i) => benchEvent(watchIdOf((from + i) % URL_COUNT), from + i))
      await deliveryQueue.enqueue(batch)
    }
    let worker: ChildProcess | undefined
    const workerReport = await receive(receiver, THROUGHPUT_DELIVERIES, false, async () => {
      worker = forkSelf('worker', { BENCH_REDIS_URL: redisServer.url, BENCH_PREFIX: config.redisPrefix })
      await nextMessage(worker)
    })

    // 2. Latency at an offered 1,000/s (the figure), then at 200/s, where CPU is not the
    //    limit, to show the pipeline's own latency apart from saturation.
    let next = THROUGHPUT_DELIVERIES
    const measureLatency = async (perSecond: number) => {
      const enqueuedAt = new Map<string, number>()
      const perTick = Math.max(1, (perSecond * LATENCY_TICK_MS) / 1000)
      const tickMs = (perTick * 1000) / perSecond
      const ticks = Math.round((LATENCY_SECONDS * 1000) / tickMs)
      let offered = 0
      const report = await receive(receiver, ticks * perTick, true, async () => {
        const started = now()
        const enqueues: Promise<number>[] = []
        for (let tick = 0; tick < ticks; tick++) {
          const wait = started + tick * tickMs - now()
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
          const batch = Array.from({ length: perTick }, () => { const i = next++; return benchEvent(watchIdOf(i % URL_COUNT), i) })
          const at = now()
          for (const e of batch) enqueuedAt.set(e.id, at)
          enqueues.push(deliveryQueue.enqueue(batch))
        }
        offered = (ticks * perTick) / ((now() - started) / 1000)
        await Promise.all(enqueues)
      })
      const latencies = report.answered.map(([id, at]) => at - enqueuedAt.get(id)!).sort((a, b) => a - b)
      return { offered, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
    }
    const atTarget = await measureLatency(OFFERED_PER_SECOND)
    const atLow = await measureLatency(LOW_OFFERED_PER_SECOND)

    // 3. Peak RSS of the worker over all runs.
    worker!.send('stop')
    const { maxRssKb, cpuMs: workerCpuMs } = await nextMessage<{ maxRssKb: number; cpuMs: number }>(worker!)

    const baselineRate = ratePerSecond(baselineReport)
    const workerRate = ratePerSecond(workerReport)
    print('figure', 'value', "ratio to the issue's baseline")
    print(`bare got loop (concurrency ${config.delivery.concurrency}), deliveries/s`, baselineRate.toFixed(0), '')
    print('worker (queue+sign+got), deliveries/s', workerRate.toFixed(0), `${(workerRate / baselineRate).toFixed(2)} of the bare loop (target ≥ ${TARGET_RATIO}) ${workerRate / baselineRate >= TARGET_RATIO ? 'OK' : 'BELOW'}`)
    for (const { offered, p50, p99 } of [atTarget, atLow]) {
      print(`enqueue→2xx p50 at ${offered.toFixed(0)}/s offered, ms`, p50.toFixed(1), '')
      print(`enqueue→2xx p99 at ${offered.toFixed(0)}/s offered, ms`, p99.toFixed(1), `${(p99 / TARGET_P99_MS).toFixed(2)} of the ${TARGET_P99_MS} ms target ${p99 <= TARGET_P99_MS ? 'OK' : 'ABOVE'}`)
    }
    print('worker peak RSS, MiB', (maxRssKb / 1024).toFixed(0), '')
    // CPU per delivery depends far less on what else the machine runs than the rates do.
    const baselineCpuPer = baselineCpuMs / THROUGHPUT_DELIVERIES
    const workerCpuPer = workerCpuMs / next
    print('bare got loop CPU per delivery, ms', baselineCpuPer.toFixed(3), '')
    print('worker CPU per delivery (all runs), ms', workerCpuPer.toFixed(3), `${(baselineCpuPer / workerCpuPer).toFixed(2)} cost ratio (bare loop / worker)`)
  } finally {
    await wiring.close()
    receiver.disconnect()
    await redisServer.stop()
  }
}

const role = process.argv[2]
if (role === 'worker') await runWorkerChild()
else if (role === 'baseline') await runBaselineChild()
else if (role === 'receiver') await runReceiverChild()
else await main()
