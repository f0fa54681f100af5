/**
 * Redis Cluster (issue 16): Redis CPU per delivery on each of 3 masters beside one single Redis,
 * and deliveries/s of both, in one run on one machine.
 *
 * Workload (the throughput bench's, with more watches so the 6 delivery shards get comparable
 * work): a real anvil (automine), a TestToken, WATCHES `evm.logs` watches on its Transfer events
 * (confirmations 0), each with its own path on one loopback receiver (a process of its own,
 * answering 200 at once). The roles apart: one subscriber and two delivery workers, each a process
 * of its own; this process creates the watches through the watch service the API's routes call.
 * A watch's shard is a hash of its random id: the bench deletes and creates watches until every
 * shard holds WATCHES / 6 of them, so the figures are the layout's, not one draw of ids.
 *
 * Two setups, alternating in order between rounds: one redis-server, and a 3-master cluster
 * (three `redis-server --cluster-enabled yes`, no replicas; REDIS_CLUSTER=true), each emptied
 * before its run. Per run: a warm-up block of 50 transfers, then one block of 500: deliveries/s
 * from sending the transaction to the receiver's last 2xx; CPU of each role process (/proc) and of
 * each Redis (INFO cpu used_cpu_user + used_cpu_sys, all threads) and INFO commandstats, from
 * before the transaction until every delivery is recorded.
 *
 * After the rounds, one more cluster burst with MONITOR on every master (it slows Redis, so it is
 * not measured): which commands reached which master, on which kind of key, per delivery.
 * CLUSTER_ROUNDS (3) and CLUSTER_WATCHES (18, a multiple of 6) change the run.
 */
import type { ChildProcess } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { pino } from 'pino'
import type { Address } from 'viem'
import { Redis } from 'ioredis'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { loadConfig, type Config } from '../src/config/config.js'
import { CLUSTER_DELIVERY_SHARDS, urlKeyHash } from '../src/storage/keys.js'
import { keySlot } from '../src/storage/key-slot.js'
import { wire, type Wiring } from '../src/wiring.js'
import { anvilClients, deploy } from '../test/helpers/contracts.js'
import { startAnvil, startRedis } from '../test/helpers/processes.js'
import { commandStats, startRedisCluster } from '../test/helpers/redis-cluster.js'
import {
  forkRole, nextMessage, now, processCpuMs, receive, redisCpuMs, runReceiverChild, runSubscriberRole, runWorkerRole, stopRole,
} from './bench-processes.js'
import { BURST_LOGS, median, sprayTransfers, WARM_UP_LOGS, withTimeout } from './transfer-bursts.js'

const CHAIN = 'local'
const WATCHES = Number(process.env.CLUSTER_WATCHES ?? 18)
const ROUNDS = Number(process.env.CLUSTER_ROUNDS ?? 3)
const WORKERS = 2
const WAIT_MS = 180_000
const TARGET_BUSIEST_TO_SINGLE = 0.5
const TENANT = 'ten_bench'

if (WATCHES % CLUSTER_DELIVERY_SHARDS !== 0) throw new Error(`CLUSTER_WATCHES must be a multiple of ${CLUSTER_DELIVERY_SHARDS}`)

// --- configuration shared by the bench and its role children --------------------------------------

function benchConfig(redisUrl: string, cluster: boolean, wsUrl: string): Config {
  return loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', REDIS_URL: redisUrl, REDIS_CLUSTER: String(cluster), LOG_LEVEL: 'silent', BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true' },
    { file: { chains: [{ id: CHAIN, type: 'evm', ws: [wsUrl], confirmations: 0 }] } },
  )
}

const childConfig = () => benchConfig(process.env.BENCH_REDIS_URL!, process.env.BENCH_REDIS_CLUSTER === 'true', process.env.BENCH_WS_URL!)

// --- helpers --------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const sum = (values: Iterable<number>) => { let total = 0; for (const v of values) total += v; return total }

// --- the two setups ---------------------------------------------------------------------------------

interface Server { name: string; port: number; redis: Redis }

interface Setup {
  name: string
  cluster: boolean
  redisUrl: string
  /** Every server holding keys: the one Redis, or each master. */
  servers: Server[]
  wiring: Wiring
}

interface Context {
  anvil: { url: string; wsUrl: string }
  token: Address
  receiver: ChildProcess
  receiverUrl: string
}

/** An empty Redis (every master emptied) holding WATCHES watches, as many on each shard; their ids and URLs. */
async function freshWatches(ctx: Context, setup: Setup): Promise<{ id: string; url: string }[]> {
  const { watchService, keys } = setup.wiring
  for (const { redis } of setup.servers) await redis.flushall()
  const perShard = WATCHES / keys.deliveryShards
  const byShard = new Map<number, { id: string; url: string }[]>()
  for (let i = 0; byShard.size < keys.deliveryShards || [...byShard.values()].some((ids) => ids.length < perShard); i++) {
    const url = `${ctx.receiverUrl}/hook/${i}`
    const { watch } = await watchService.create(TENANT, { chain: CHAIN, type: 'evm.logs', filter: { address: ctx.token, topics: [TRANSFER_TOPIC] }, url })
    const shard = keys.shardOf(watch.id)
    const ids = byShard.get(shard) ?? []
    if (ids.length < perShard) byShard.set(shard, [...ids, { id: watch.id, url }])
    else await watchService.delete(watch)
  }
  return [...byShard.values()].flat()
}

async function pendingDeliveries(setup: Setup, watchIds: string[]): Promise<number> {
  const { redis, keys } = setup.wiring
  return sum(await Promise.all(watchIds.map(async (id) => Number((await redis.hget(keys.watchStats(id), 'pending')) ?? 0))))
}

interface Running {
  subscriber: ChildProcess
  workers: ChildProcess[]
  watchIds: string[]
  urls: string[]
  stop(): Promise<void>
}

async function startRoles(ctx: Context, setup: Setup): Promise<Running> {
  const watches = await freshWatches(ctx, setup)
  const watchIds = watches.map((w) => w.id)
  const env = { BENCH_REDIS_URL: setup.redisUrl, BENCH_REDIS_CLUSTER: String(setup.cluster), BENCH_WS_URL: ctx.anvil.wsUrl }
  const subscriber = forkRole(import.meta.url, 'subscriber', env)
  const workers = Array.from({ length: WORKERS }, () => forkRole(import.meta.url, 'worker', env))
  await Promise.all([subscriber, ...workers].map((child) => nextMessage(child)))
  return { subscriber, workers, watchIds, urls: watches.map((w) => w.url), stop: async () => { await Promise.all([subscriber, ...workers].map(stopRole)) } }
}

// --- one burst ---------------------------------------------------------------------------------------

type Commands = Map<string, { calls: number; usec: number }>

interface Burst {
  /** The URLs of the run's watches. */
  urls: string[]
  deliveries: number
  perSecond: number
  subscriberCpuMs: number
  workersCpuMs: number
  /** Per server, in the order of setup.servers. */
  redisCpuMs: number[]
  commands: Commands[]
}

function commandsDelta(before: Commands, after: Commands): Commands {
  const delta: Commands = new Map()
  for (const [name, { calls, usec }] of after) {
    const was = before.get(name) ?? { calls: 0, usec: 0 }
    if (calls > was.calls) delta.set(name, { calls: calls - was.calls, usec: usec - was.usec })
  }
  return delta
}

async function burst(ctx: Context, setup: Setup, running: Running, logs: number): Promise<Burst> {
  const roleCpu = () => ({ subscriber: processCpuMs(running.subscriber.pid!), workers: sum(running.workers.map((w) => processCpuMs(w.pid!))) })
  const serverState = () => Promise.all(setup.servers.map(async ({ redis }) => ({ cpu: await redisCpuMs(redis), commands: await commandStats(redis) })))
  const cpu0 = roleCpu()
  const servers0 = await serverState()
  let sentAt = 0
  const report = await withTimeout(receive(ctx.receiver, logs * WATCHES, false, async () => { sentAt = now(); await sprayTransfers(ctx.anvil.url, ctx.token, logs) }), `a burst of ${logs} logs`, WAIT_MS)
  await withTimeout((async () => { while ((await pendingDeliveries(setup, running.watchIds)) > 0) await sleep(20) })(), 'deliveries recorded', WAIT_MS)
  const cpu1 = roleCpu()
  const servers1 = await serverState()
  return {
    urls: running.urls,
    deliveries: report.count,
    perSecond: report.count / ((report.lastAt - sentAt) / 1000),
    subscriberCpuMs: cpu1.subscriber - cpu0.subscriber,
    workersCpuMs: cpu1.workers - cpu0.workers,
    redisCpuMs: servers1.map((s, i) => s.cpu - servers0[i]!.cpu),
    commands: servers1.map((s, i) => commandsDelta(servers0[i]!.commands, s.commands)),
  }
}

async function run(ctx: Context, setup: Setup): Promise<Burst> {
  const running = await startRoles(ctx, setup)
  try {
    await burst(ctx, setup, running, WARM_UP_LOGS)
    return await burst(ctx, setup, running, BURST_LOGS)
  } finally {
    await running.stop()
  }
}

// --- where each master's commands come from (MONITOR, not measured) -------------------------------

/** A key's kind: its hash tag's class, the rest with ids and numbers as `*`. */
function keyKind(key: string): string {
  return key
    .replace(/^\{blockhook\}/, '{ctl}')
    .replace(/^\{blockhook:chain:[^}]+\}/, '{chain}')
    .replace(/^\{blockhook:url:[^}]+\}/, '{url}')
    .replace(/^\{blockhook:s\d+(\.\d+)?\}/, '{shard}')
    .replace(/(wch|wat|ten|evt|msg|del|dlv|rpl)_[A-Za-z0-9]+/g, '*')
    .replace(/:[0-9a-f]{16,}/g, ':*')
    .replace(/:\d+/g, ':*')
}

/** The first key of a command as MONITOR shows it (after EVALSHA's sha and key count), or '' for none. */
function firstKey(args: string[]): string {
  const name = args[0]!.toLowerCase()
  if (name === 'evalsha' || name === 'eval' || name === 'fcall') return Number(args[2]) > 0 ? args[3]! : ''
  if (['info', 'ping', 'client', 'cluster', 'select', 'script', 'multi', 'exec', 'hello', 'command', 'readonly', 'monitor'].includes(name)) return ''
  if (name === 'xread' || name === 'xreadgroup') return args[args.findIndex((a) => a.toLowerCase() === 'streams') + 1] ?? ''
  return args[1] ?? ''
}

async function monitorBurst(ctx: Context, setup: Setup): Promise<Map<string, number>[]> {
  const running = await startRoles(ctx, setup)
  const tallies = setup.servers.map(() => new Map<string, number>())
  const monitors: Redis[] = []
  try {
    await burst(ctx, setup, running, WARM_UP_LOGS)
    for (const [i, server] of setup.servers.entries()) {
      // monitor() opens a connection of its own, closed below; this one is only its template.
      const template = new Redis(server.port, '127.0.0.1', { lazyConnect: true })
      const monitor = await template.monitor()
      template.disconnect()
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        // Commands a script runs show with source `lua`: kept apart from those sent.
        const key = firstKey(args)
        const what = `${source === 'lua' ? '(in a script) ' : ''}${args[0]!.toLowerCase()} ${key ? keyKind(key) : ''}`.trim()
        tallies[i]!.set(what, (tallies[i]!.get(what) ?? 0) + 1)
      })
      monitors.push(monitor)
    }
    await burst(ctx, setup, running, BURST_LOGS)
  } finally {
    for (const monitor of monitors) monitor.disconnect()
    await running.stop()
  }
  return tallies
}

// --- the report ----------------------------------------------------------------------------------------

function slotOwners(slots: [number, number, ...[string, number, ...unknown[]][]][], port: number): (slot: number) => boolean {
  const mine = slots.filter(([, , master]) => master?.[1] === port)
  return (slot) => mine.some(([from, to]) => slot >= from && slot <= to)
}

async function describeMasters(setup: Setup, urls: string[]): Promise<string[]> {
  const slots = await setup.servers[0]!.redis.cluster('SLOTS')
  const { keys } = setup.wiring
  return setup.servers.map(({ port }) => {
    const owns = slotOwners(slots, port)
    const shards = Array.from({ length: keys.deliveryShards }, (_, k) => k).filter((k) => owns(keySlot(keys.shardTag(k))))
    const urlCount = urls.filter((url) => owns(keySlot(keys.urlInFlight(urlKeyHash(url))))).length
    return [
      owns(keySlot(keys.controlTag)) ? 'control plane' : '',
      owns(keySlot(keys.chainCursor(CHAIN))) ? `chain ${CHAIN}` : '',
      `shards ${shards.join(',') || '-'}`,
      `${urlCount} of ${urls.length} URL tags`,
    ].filter(Boolean).join(', ')
  })
}

function report(single: Burst[], cluster: Burst[], masters: string[], masterNames: string[]): void {
  const row = (name: string, values: number[], digits: number, note = '') =>
    console.log(`${name.padEnd(58)} ${values.map((v) => v.toFixed(digits).padStart(8)).join(' ')} ${median(values).toFixed(digits).padStart(9)}   ${note}`)
  console.log(`${'figure'.padEnd(58)} ${single.map((_, i) => `round ${i + 1}`.padStart(8)).join(' ')} ${'median'.padStart(9)}`)
  const perDelivery = (b: Burst, ms: number) => ms / b.deliveries
  row('1 Redis + 2 workers, deliveries/s', single.map((b) => b.perSecond), 0)
  row('3 masters + 2 workers, deliveries/s', cluster.map((b) => b.perSecond), 0)
  row('  ratio 3 masters / 1 Redis', cluster.map((b, r) => b.perSecond / single[r]!.perSecond), 2)
  row('Redis CPU per delivery, 1 Redis, ms', single.map((b) => perDelivery(b, b.redisCpuMs[0]!)), 4)
  masterNames.forEach((name, m) => row(`Redis CPU per delivery, ${name}, ms`, cluster.map((b) => perDelivery(b, b.redisCpuMs[m]!)), 4, masters[m]))
  row('Redis CPU per delivery, 3 masters together, ms', cluster.map((b) => perDelivery(b, sum(b.redisCpuMs))), 4)
  const busiest = cluster.map((b, r) => Math.max(...b.redisCpuMs) / b.deliveries / (single[r]!.redisCpuMs[0]! / single[r]!.deliveries))
  row('  ratio busiest master / 1 Redis', busiest, 2, `target ≤ ${TARGET_BUSIEST_TO_SINGLE} ${median(busiest) <= TARGET_BUSIEST_TO_SINGLE ? 'OK' : 'MISSED'}`)
  const calls = (c: Commands) => sum([...c.values()].map((s) => s.calls))
  row('commands per delivery, 1 Redis', single.map((b) => calls(b.commands[0]!) / b.deliveries), 2)
  row('commands per delivery, 3 masters together', cluster.map((b) => sum(b.commands.map(calls)) / b.deliveries), 2)
  masterNames.forEach((name, m) => row(`  share of commands, ${name}, %`, cluster.map((b) => (100 * calls(b.commands[m]!)) / sum(b.commands.map(calls))), 1))
  row('worker CPU per delivery (2 workers), 1 Redis, ms', single.map((b) => perDelivery(b, b.workersCpuMs)), 3)
  row('worker CPU per delivery (2 workers), 3 masters, ms', cluster.map((b) => perDelivery(b, b.workersCpuMs)), 3)
  row('  ratio cluster / single', cluster.map((b, r) => perDelivery(b, b.workersCpuMs) / perDelivery(single[r]!, single[r]!.workersCpuMs)), 2)
  row('subscriber CPU per delivery, 1 Redis, ms', single.map((b) => perDelivery(b, b.subscriberCpuMs)), 3)
  row('subscriber CPU per delivery, 3 masters, ms', cluster.map((b) => perDelivery(b, b.subscriberCpuMs)), 3)

  const top = (label: string, burstsOf: Commands[]) => {
    const merged: Commands = new Map()
    for (const c of burstsOf) for (const [name, s] of c) merged.set(name, { calls: (merged.get(name)?.calls ?? 0) + s.calls, usec: (merged.get(name)?.usec ?? 0) + s.usec })
    const deliveries = single.length * BURST_LOGS * WATCHES
    const totalUsec = sum([...merged.values()].map((s) => s.usec))
    const lines = [...merged].sort((a, b) => b[1].usec - a[1].usec).slice(0, 10)
      .map(([name, s]) => `${name} ${(s.calls / deliveries).toFixed(2)}/delivery ${Math.round((100 * s.usec) / totalUsec)} %`)
    console.log(`  ${label} (commandstats, all rounds; calls per delivery, share of command µs): ${lines.join('; ')}`)
  }
  console.log('\ncommands by time spent in them:')
  top('1 Redis', single.map((b) => b.commands[0]!))
  masterNames.forEach((name, m) => top(`${name} [${masters[m]}]`, cluster.map((b) => b.commands[m]!)))
}

// --- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadAtStart = loadavg()
  const startedAt = new Date()
  const redisServer = await startRedis()
  const cluster = await startRedisCluster()
  const anvil = await startAnvil()
  const receiver = forkRole(import.meta.url, 'receiver', {})
  const { url: receiverUrl } = await nextMessage<{ url: string }>(receiver)
  const log = pino({ level: 'silent' })
  const singleUrl = redisServer.url
  const clusterUrl = cluster.urls.join(',')
  const singleServer = new Redis(singleUrl)
  const setups: Setup[] = [
    { name: '1 Redis', cluster: false, redisUrl: singleUrl, servers: [{ name: 'redis', port: redisServer.port, redis: singleServer }], wiring: wire(benchConfig(singleUrl, false, anvil.wsUrl), 'bench', log) },
    {
      name: '3 masters', cluster: true, redisUrl: clusterUrl,
      servers: cluster.masters.map((redis, i) => ({ name: `master ${'ABC'[i]}`, port: Number(new URL(cluster.urls[i]!).port), redis })),
      wiring: wire(benchConfig(clusterUrl, true, anvil.wsUrl), 'bench', log),
    },
  ]
  try {
    const token = await deploy(anvilClients(anvil.url), 'TestToken', async () => {})
    const ctx: Context = { anvil, token, receiver, receiverUrl }
    const single: Burst[] = []
    const onCluster: Burst[] = []
    for (let round = 0; round < ROUNDS; round++) {
      for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) {
        const result = await run(ctx, setup)
        ;(setup.cluster ? onCluster : single).push(result)
        console.log(`round ${round + 1}, ${setup.name}: ${Math.round(result.perSecond)} deliveries/s`)
      }
    }
    const clusterSetup = setups[1]!
    const masters = await describeMasters(clusterSetup, onCluster.at(-1)!.urls)
    const cpu = cpus()
    console.log(`\n${WATCHES} watches (${WATCHES / CLUSTER_DELIVERY_SHARDS} on each of the cluster's ${CLUSTER_DELIVERY_SHARDS} shards), ${BURST_LOGS} transfers in one block: ${BURST_LOGS * WATCHES} webhooks per burst; subscriber + ${WORKERS} workers apart; ${ROUNDS} rounds, setups alternating`)
    console.log(`machine: ${cpu.length} × ${cpu[0]?.model}; ${startedAt.toISOString()}; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end\n`)
    report(single, onCluster, masters, clusterSetup.servers.map((s) => s.name))

    const tallies = await monitorBurst(ctx, clusterSetup)
    const deliveries = BURST_LOGS * WATCHES
    console.log(`\nMONITOR, one more burst on the cluster (not measured): commands per delivery by master, command and key kind`)
    console.log('({ctl} = {blockhook} control plane, {chain} = the chain\'s tag, {url} = a URL\'s tag, {shard} = a delivery shard; ids as *)')
    clusterSetup.servers.forEach((server, m) => {
      const entries = [...tallies[m]!].sort((a, b) => b[1] - a[1])
      const total = sum(entries.map(([, n]) => n))
      const classes = ['{ctl}', '{chain}', '{url}', '{shard}'].map((tag) => {
        const mine = entries.filter(([what]) => what.includes(tag))
        return { tag, mine, calls: sum(mine.map(([, n]) => n)) }
      })
      console.log(`${server.name} [${masters[m]}]: ${(total / deliveries).toFixed(2)} commands per delivery (sent and in scripts); by tag: ${
        classes.map(({ tag, calls }) => `${tag} ${(calls / deliveries).toFixed(2)}`).join(', ')}, no key ${((total - sum(classes.map((c) => c.calls))) / deliveries).toFixed(2)}`)
      // The shards' share is BullMQ's and the deliveries' own; what else a master takes is listed whole.
      for (const { tag, mine } of classes) {
        for (const [what, n] of mine.slice(0, tag === '{shard}' ? 6 : 12)) console.log(`  ${(n / deliveries).toFixed(3).padStart(7)}  ${what}`)
      }
    })
  } finally {
    for (const setup of setups) await setup.wiring.close()
    singleServer.disconnect()
    receiver.disconnect()
    await anvil.stop()
    await cluster.stop()
    await redisServer.stop()
  }
}

const role = process.argv[2]
if (role === 'receiver') await runReceiverChild()
else if (role === 'subscriber') await runSubscriberRole(childConfig(), CHAIN)
else if (role === 'worker') await runWorkerRole(childConfig())
else await main()
