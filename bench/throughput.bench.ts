/**
 * Throughput, tip latency and CPU per delivery (issue 16), blockhook beside a naive relay
 * (bench/naive-relay.ts) and a bare got loop (bench/got-loop.ts), all in one run on one machine.
 *
 * Workload: a real anvil (automine), a TestToken, 10 `evm.logs` watches on its Transfer events
 * (confirmations 0), each with its own path on one loopback receiver answering 200 at once (this
 * file with `receiver`, a process of its own). A real redis-server, emptied before each blockhook run.
 *
 * Each round, peers alternating in order between rounds:
 * - `blockhook all` (bin/blockhook.js, dist/ built first if stale) and the naive relay (this file
 *   with `relay`): a warm-up block, then one block of 500 transfers (TestToken.spray, one
 *   transaction): 5,000 webhooks. Deliveries/s from sending the transaction to the receiver's last
 *   2xx; CPU of the process(es) and of Redis (INFO cpu, all threads) until every delivery is recorded.
 *   Then tip latency: single transfers, one at a time, from sending the transaction (anvil mines
 *   it at once) to each of its 10 webhooks' 2xx at the receiver.
 * - the subscriber and worker roles apart (this file with `subscriber` / `worker`), the same burst,
 *   for the worker process's own CPU per delivery;
 * - the bare got loop (this file with `got-loop`): the worker's got options and concurrency, bodies
 *   of the size blockhook's webhooks had in this round: CPU per POST.
 *
 * `npm run bench throughput -- --profile` also writes `--cpu-prof` profiles of the blockhook
 * processes and the got loop to a folder and prints where their self time went while the figures
 * were measured (bench/cpu-profile.ts reads them again, whole). Profiling slows
 * what it measures: take the figures from a run without it. THROUGHPUT_ROUNDS (3) and
 * THROUGHPUT_TIP_TRANSFERS (100) change the run's length.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import type { Address } from 'viem'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { loadConfig, type Config } from '../src/config/config.js'
import { stopChild } from '../src/dev/child-processes.js'
import { wire, type Wiring } from '../src/wiring.js'
import { anvilClients, deploy } from '../test/helpers/contracts.js'
import { freePort, startAnvil, startRedis } from '../test/helpers/processes.js'
import { monotonicUs, printSelfTimes, readProfiles, selfTimes, WINDOWS_FILE, type Window } from './cpu-profile.js'
import { runGotLoopChild, type GotLoopParameters, type GotLoopReport } from './got-loop.js'
import { startNaiveRelay, type NaiveRelayOptions } from './naive-relay.js'
import {
  countReceived, forkRole, nextMessage, now, percentile, processCpuMs, receive, redisCpuMs, runReceiverChild,
  runSubscriberRole, runWorkerRole, stopRole, type ReceiverReport,
} from './bench-processes.js'
import { BURST_LOGS, median, sprayTransfers, WARM_UP_LOGS, withTimeout } from './transfer-bursts.js'

const CHAIN = 'local'
const WATCHES = 10
const ROUNDS = Number(process.env.THROUGHPUT_ROUNDS ?? 3)
const TIP_TRANSFERS = Number(process.env.THROUGHPUT_TIP_TRANSFERS ?? 100)
/** Between two tip transfers, so each meets an idle pipeline as a block every few seconds would. */
const TIP_GAP_MS = 20
const GOT_LOOP_POSTS = 20_000
const GOT_LOOP_WARM_UP = 2_000
const WAIT_MS = 120_000
const TARGETS = { ratio: 1.0, tipP50Ms: 10, tipP99Ms: 30, workerToGot: 1.2 }
const TENANT = 'ten_bench'
const ROOT = fileURLToPath(new URL('..', import.meta.url))

// --- configuration shared by the bench, the CLI child and the role children ----------------------

function blockhookEnv(redisUrl: string): Record<string, string> {
  return { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', REDIS_URL: redisUrl, LOG_LEVEL: 'silent', BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true' }
}

function configFile(wsUrl: string) {
  return { chains: [{ id: CHAIN, type: 'evm', ws: [wsUrl], confirmations: 0 }] }
}

function benchConfig(redisUrl: string, wsUrl: string): Config {
  return loadConfig(blockhookEnv(redisUrl), { file: configFile(wsUrl) })
}

const childConfig = () => benchConfig(process.env.BENCH_REDIS_URL!, process.env.BENCH_WS_URL!)

async function runRelayChild(): Promise<void> {
  const relay = startNaiveRelay(JSON.parse(process.env.BENCH_RELAY!) as NaiveRelayOptions)
  process.once('message', () => { void relay.close().then(() => process.send!({ stopped: true }, () => process.exit(0))) })
  process.send!({ ready: true })
}

// --- helpers --------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** bin/blockhook.js runs dist/: build it when a source file is newer than the last build. */
function ensureBuilt(): void {
  const built = join(ROOT, 'dist', 'src', 'cli.js')
  const newest = Math.max(...['src', 'routes', 'workers'].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(ROOT, dir, f)).mtimeMs)))
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return
  console.log('dist/ is older than the sources: building it (tsc -p tsconfig.build.json)')
  const result = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' })
  if (result.status !== 0) throw new Error('tsc failed')
}

// --- the peers ------------------------------------------------------------------------------------

interface Context {
  anvil: { url: string; wsUrl: string }
  redisUrl: string
  wiring: Wiring
  token: Address
  receiver: ChildProcess
  receiverUrl: string
  profileDir: string | undefined
  /** When the figures were measured (the 5,000-webhook bursts and the got loops), for reading the profiles. */
  windows: Window[]
}

interface RunningPeer {
  /** The processes whose CPU is measured, by name. */
  pids: Record<string, number>
  /** Resolves once the peer has finished with every webhook the receiver has answered (blockhook: recorded them). */
  settled(): Promise<void>
  stop(): Promise<void>
}

interface Peer {
  name: string
  tip: boolean
  start(ctx: Context, round: number): Promise<RunningPeer>
}

const urls = (ctx: Context) => Array.from({ length: WATCHES }, (_, i) => `${ctx.receiverUrl}/hook/${i}`)

function profileArgs(ctx: Context, name: string): string[] {
  if (!ctx.profileDir) return []
  const dir = join(ctx.profileDir, name)
  mkdirSync(dir, { recursive: true })
  return ['--cpu-prof', '--cpu-prof-dir', dir]
}

/** An empty Redis holding the 10 watches; `settled` waits until none has a delivery pending. */
async function freshBlockhook(ctx: Context): Promise<() => Promise<void>> {
  const { redis, keys } = ctx.wiring
  await redis.flushall()
  const ids: string[] = []
  for (const url of urls(ctx)) {
    const { watch } = await ctx.wiring.watchService.create(TENANT, { chain: CHAIN, type: 'evm.logs', filter: { address: ctx.token, topics: [TRANSFER_TOPIC] }, url })
    ids.push(watch.id)
  }
  return async () => {
    const pending = async () => (await Promise.all(ids.map((id) => redis.hget(keys.watchStats(id), 'pending')))).reduce((sum, v) => sum + Number(v ?? 0), 0)
    while ((await pending()) > 0) await sleep(5)
  }
}

const blockhookAll: Peer = {
  name: 'blockhook all',
  tip: true,
  async start(ctx) {
    const settled = await freshBlockhook(ctx)
    const configPath = join(mkdtempSync(join(tmpdir(), 'blockhook-bench-')), 'blockhook.config.json')
    writeFileSync(configPath, JSON.stringify(configFile(ctx.anvil.wsUrl)))
    const port = await freePort()
    const child = spawn(process.execPath, [...profileArgs(ctx, 'all'), join(ROOT, 'bin', 'blockhook.js'), 'all'], {
      env: { ...process.env, ...blockhookEnv(ctx.redisUrl), LOG_LEVEL: 'error', BLOCKHOOK_CONFIG: configPath, HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    await withTimeout((async () => {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`blockhook all exited with ${child.exitCode}`)
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)
        if (ready) return
        await sleep(50)
      }
    })(), 'blockhook all /readyz', WAIT_MS)
    return { pids: { 'blockhook all': child.pid! }, settled, stop: () => stopChild(child) }
  },
}

const blockhookApart: Peer = {
  name: 'subscriber + worker apart',
  tip: false,
  async start(ctx) {
    const settled = await freshBlockhook(ctx)
    const env = { BENCH_REDIS_URL: ctx.redisUrl, BENCH_WS_URL: ctx.anvil.wsUrl }
    const subscriber = forkRole(import.meta.url, 'subscriber', env, profileArgs(ctx, 'subscriber'))
    const worker = forkRole(import.meta.url, 'worker', env, profileArgs(ctx, 'worker'))
    await Promise.all([nextMessage(subscriber), nextMessage(worker)])
    return {
      pids: { subscriber: subscriber.pid!, worker: worker.pid! },
      settled,
      stop: async () => { await Promise.all([subscriber, worker].map(stopRole)) },
    }
  },
}

const naiveRelay: Peer = {
  name: 'naive relay',
  tip: true,
  async start(ctx) {
    const options: NaiveRelayOptions = { wsUrl: ctx.anvil.wsUrl, address: ctx.token, urls: urls(ctx), concurrency: ctx.wiring.config.delivery.concurrency }
    const child = forkRole(import.meta.url, 'relay', { BENCH_RELAY: JSON.stringify(options) })
    await nextMessage(child)
    // viem says nothing when its subscriptions are live: single transfers until two in a row reach every watch.
    let inARow = 0
    for (let attempt = 0; inARow < 2; attempt++) {
      if (attempt === 100) throw new Error('the naive relay never delivered')
      const count = await countReceived(ctx.receiver, 300, () => sprayTransfers(ctx.anvil.url, ctx.token, 1))
      inARow = count === WATCHES ? inARow + 1 : 0
    }
    return { pids: { 'naive relay': child.pid! }, settled: async () => {}, stop: () => stopRole(child) }
  },
}

// --- what is measured -------------------------------------------------------------------------------

interface Burst {
  deliveries: number
  perSecond: number
  bodyBytes: number
  /** CPU ms per delivery of each measured process. */
  cpuPerDelivery: Record<string, number>
  redisCpuPerDelivery: number
}

async function burst(ctx: Context, peer: RunningPeer, logs: number): Promise<Burst> {
  const cpu = () => Object.fromEntries(Object.entries(peer.pids).map(([name, pid]) => [name, processCpuMs(pid)]))
  const cpu0 = cpu()
  const redis0 = await redisCpuMs(ctx.wiring.redis)
  const from = monotonicUs()
  let sentAt = 0
  const report = await withTimeout(receive(ctx.receiver, logs * WATCHES, false, async () => { sentAt = now(); await sprayTransfers(ctx.anvil.url, ctx.token, logs) }), `a burst of ${logs} logs`, WAIT_MS)
  await withTimeout(peer.settled(), 'deliveries recorded', WAIT_MS)
  const cpu1 = cpu()
  const redis1 = await redisCpuMs(ctx.wiring.redis)
  if (logs === BURST_LOGS) ctx.windows.push([from, monotonicUs()])
  return {
    deliveries: report.count,
    perSecond: report.count / ((report.lastAt - sentAt) / 1000),
    bodyBytes: report.bodyBytes / report.count,
    cpuPerDelivery: Object.fromEntries(Object.keys(cpu0).map((name) => [name, (cpu1[name]! - cpu0[name]!) / report.count])),
    redisCpuPerDelivery: (redis1 - redis0) / report.count,
  }
}

interface Tip { p50: number; p99: number; minedP50: number }

async function tipLatency(ctx: Context, peer: RunningPeer): Promise<Tip> {
  const latencies: number[] = []
  const mined: number[] = []
  for (let i = 0; i < TIP_TRANSFERS; i++) {
    let sentAt = 0
    const report: ReceiverReport = await withTimeout(receive(ctx.receiver, WATCHES, true, async () => {
      sentAt = now()
      await sprayTransfers(ctx.anvil.url, ctx.token, 1)
      mined.push(now() - sentAt)
    }), 'a tip transfer', WAIT_MS)
    for (const [, at] of report.answered) latencies.push(at - sentAt)
    await peer.settled()
    await sleep(TIP_GAP_MS)
  }
  latencies.sort((a, b) => a - b)
  mined.sort((a, b) => a - b)
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), minedP50: percentile(mined, 50) }
}

async function gotLoop(ctx: Context, bodyBytes: number): Promise<GotLoopReport> {
  const parameters: GotLoopParameters = {
    url: ctx.receiverUrl, urls: WATCHES, concurrency: ctx.wiring.config.delivery.concurrency, bodyBytes: Math.round(bodyBytes),
    warmUpPosts: GOT_LOOP_WARM_UP, posts: GOT_LOOP_POSTS, timeoutMs: ctx.wiring.config.delivery.timeoutMs,
  }
  let report: GotLoopReport | undefined
  await withTimeout(receive(ctx.receiver, GOT_LOOP_WARM_UP + GOT_LOOP_POSTS, false, async () => {
    const child = forkRole(import.meta.url, 'got-loop', { BENCH_GOT_LOOP: JSON.stringify(parameters) }, profileArgs(ctx, 'got-loop'))
    report = await nextMessage<GotLoopReport>(child)
  }), 'the got loop', WAIT_MS)
  ctx.windows.push(report!.window)
  return report!
}

interface Round {
  bursts: Record<string, Burst>
  tips: Record<string, Tip>
  got: GotLoopReport
}

async function runRound(ctx: Context, round: number): Promise<Round> {
  const bursts: Record<string, Burst> = {}
  const tips: Record<string, Tip> = {}
  const pair = round % 2 === 0 ? [blockhookAll, naiveRelay] : [naiveRelay, blockhookAll]
  for (const peer of [...pair, blockhookApart]) {
    const running = await peer.start(ctx, round)
    try {
      await burst(ctx, running, WARM_UP_LOGS)
      bursts[peer.name] = await burst(ctx, running, BURST_LOGS)
      if (peer.tip) tips[peer.name] = await tipLatency(ctx, running)
    } finally {
      await running.stop()
    }
  }
  const got = await gotLoop(ctx, bursts[blockhookAll.name]!.bodyBytes)
  return { bursts, tips, got }
}

// --- the report ------------------------------------------------------------------------------------

function report(rounds: Round[]): void {
  const row = (name: string, values: number[], digits: number, target = '') =>
    console.log(`${name.padEnd(52)} ${values.map((v) => v.toFixed(digits).padStart(8)).join(' ')} ${median(values).toFixed(digits).padStart(9)}   ${target}`)
  const all = blockhookAll.name
  const relay = naiveRelay.name
  const apart = blockhookApart.name
  const check = (ok: boolean) => (ok ? 'OK' : 'MISSED')
  console.log(`${'figure'.padEnd(52)} ${rounds.map((_, i) => `round ${i + 1}`.padStart(8)).join(' ')} ${'median'.padStart(9)}   target`)
  const pick = (f: (r: Round) => number) => rounds.map(f)

  const ratio = pick((r) => r.bursts[all]!.perSecond / r.bursts[relay]!.perSecond)
  row(`${all}, deliveries/s (send → last 2xx)`, pick((r) => r.bursts[all]!.perSecond), 0)
  row(`${relay}, deliveries/s`, pick((r) => r.bursts[relay]!.perSecond), 0)
  row(`  ratio ${all} / ${relay}`, ratio, 2, `≥ ${TARGETS.ratio} ${check(median(ratio) >= TARGETS.ratio)}`)
  row(`${apart}, deliveries/s`, pick((r) => r.bursts[apart]!.perSecond), 0)

  for (const name of [all, relay]) {
    const p50 = pick((r) => r.tips[name]!.p50)
    const p99 = pick((r) => r.tips[name]!.p99)
    row(`tip latency p50, ${name}, ms`, p50, 1, name === all ? `≤ ${TARGETS.tipP50Ms} ${check(median(p50) <= TARGETS.tipP50Ms)}` : '')
    row(`tip latency p99, ${name}, ms`, p99, 1, name === all ? `≤ ${TARGETS.tipP99Ms} ${check(median(p99) <= TARGETS.tipP99Ms)}` : '')
  }
  row('  of which anvil mining the transaction (p50), ms', pick((r) => r.tips[all]!.minedP50), 1)

  const gotPerPost = pick((r) => r.got.cpuMs / r.got.posts)
  row(`CPU per delivery, ${all} process, ms`, pick((r) => r.bursts[all]!.cpuPerDelivery[all]!), 3)
  row(`CPU per delivery, ${relay} process, ms`, pick((r) => r.bursts[relay]!.cpuPerDelivery[relay]!), 3)
  row('  ratio blockhook all / naive relay', pick((r) => r.bursts[all]!.cpuPerDelivery[all]! / r.bursts[relay]!.cpuPerDelivery[relay]!), 2)
  row(`Redis CPU per delivery, ${all}, ms`, pick((r) => r.bursts[all]!.redisCpuPerDelivery), 3)
  row(`CPU per delivery, ${apart}: subscriber, ms`, pick((r) => r.bursts[apart]!.cpuPerDelivery.subscriber!), 3)
  row(`CPU per delivery, ${apart}: worker, ms`, pick((r) => r.bursts[apart]!.cpuPerDelivery.worker!), 3)
  row(`Redis CPU per delivery, ${apart}, ms`, pick((r) => r.bursts[apart]!.redisCpuPerDelivery), 3)
  row('bare got loop CPU per POST, ms', gotPerPost, 3)
  row('bare got loop POSTs/s', pick((r) => r.got.posts / (r.got.elapsedMs / 1000)), 0)
  const workerToGot = pick((r) => r.bursts[apart]!.cpuPerDelivery.worker! / (r.got.cpuMs / r.got.posts))
  row('  ratio worker CPU per delivery / got CPU per POST', workerToGot, 2, `≤ ${TARGETS.workerToGot} ${check(median(workerToGot) <= TARGETS.workerToGot)}`)
  row('  ratio blockhook all CPU per delivery / got per POST', pick((r) => r.bursts[all]!.cpuPerDelivery[all]! / (r.got.cpuMs / r.got.posts)), 2)
  row(`body bytes per webhook, ${all}`, pick((r) => r.bursts[all]!.bodyBytes), 0)
  row(`body bytes per webhook, ${relay}`, pick((r) => r.bursts[relay]!.bodyBytes), 0)
}

async function main(): Promise<void> {
  const profile = process.argv.includes('--profile')
  const profileDir = profile ? mkdtempSync(join(tmpdir(), 'blockhook-profiles-')) : undefined
  ensureBuilt()
  const loadAtStart = loadavg()
  const redisServer = await startRedis()
  const anvil = await startAnvil()
  const receiver = forkRole(import.meta.url, 'receiver', {})
  const { url: receiverUrl } = await nextMessage<{ url: string }>(receiver)
  const wiring = wire(benchConfig(redisServer.url, anvil.wsUrl), 'bench', pino({ level: 'silent' }))
  try {
    const token = await deploy(anvilClients(anvil.url), 'TestToken', async () => {})
    const ctx: Context = { anvil, redisUrl: redisServer.url, wiring, token, receiver, receiverUrl, profileDir, windows: [] }
    const rounds: Round[] = []
    for (let round = 0; round < ROUNDS; round++) rounds.push(await runRound(ctx, round))
    const cpu = cpus()
    console.log(`${WATCHES} watches, ${BURST_LOGS} transfers in one block (${BURST_LOGS * WATCHES} webhooks); tip: ${TIP_TRANSFERS} single transfers × ${WATCHES} webhooks; ${ROUNDS} rounds`)
    console.log(`machine: ${cpu.length} × ${cpu[0]?.model}; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end${profile ? '; PROFILED (slower)' : ''}`)
    report(rounds)
    if (profileDir) {
      console.log(`\nCPU profiles (open in Chrome DevTools or speedscope): ${profileDir}`)
      console.log('self time during the 5,000-webhook bursts and the got loops only (no start-up, no tip latency), main threads:')
      writeFileSync(join(profileDir, WINDOWS_FILE), JSON.stringify(ctx.windows))
      const roles = readdirSync(profileDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
      for (const name of roles) printSelfTimes(`${name} (${ROUNDS} processes merged)`, selfTimes(readProfiles(join(profileDir, name)), ctx.windows))
    }
  } finally {
    await wiring.close()
    receiver.disconnect()
    await anvil.stop()
    await redisServer.stop()
  }
}

const role = process.argv[2]
if (role === 'receiver') await runReceiverChild()
else if (role === 'relay') await runRelayChild()
else if (role === 'subscriber') await runSubscriberRole(childConfig(), CHAIN)
else if (role === 'worker') await runWorkerRole(childConfig())
else if (role === 'got-loop') await runGotLoopChild()
else await main()
