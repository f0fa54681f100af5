/**
 * Event stream benchmark (issue 13). A real redis-server and anvil; the subscriber, the api and
 * the delivery worker each in a process of their own (started as the CLI starts them), a loopback
 * webhook receiver and the WebSocket clients in two more, so each role's CPU is read apart.
 *
 * 1. Memory per open connection: 200 idle streams opened to the api, its heap (+ external) after
 *    a full GC and its RSS before and after, divided by 200; beside the same 200 connections to
 *    a bare `ws` server (the floor of a WebSocket at all).
 * 2. One evm.logs watch at 1,000 events/s (a 100-log block every 100 ms) for 10 s, streamed to 10
 *    WebSocket clients and, in the same run, delivered as webhooks to the receiver: api CPU per
 *    message sent beside worker CPU per webhook delivered, and the lag from the event's entry in
 *    the tenant's event log (the store script appends it when the subscriber stores the match;
 *    its stream id is Redis's clock in ms) to the frame's arrival at a client and to the
 *    receiver's 2xx. Mined → stored, the part both paths share, is printed beside them.
 * 3. The event log's Redis cost per event, default retention: MEMORY USAGE of the tenant's log
 *    after (2), and used_memory deltas for 20,000 evm.log-sized events of a watch without a url
 *    written by the real DeliveryStore (the log entry, and the marker key such a watch adds).
 */
import type { ChildProcess } from 'node:child_process'
import { pino } from 'pino'
import { encodeFunctionData, type Address } from 'viem'
import { WebSocket, WebSocketServer } from 'ws'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { startApi } from '../src/api/server.js'
import { loadConfig, type Config } from '../src/config/config.js'
import { expandText } from '../src/delivery/delivery-record.js'
import { freePort, startAnvil, startRedisServer } from '../src/dev/child-processes.js'
import type { RunningRole } from '../src/roles.js'
import { wire, type Wiring } from '../src/wiring.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'
import { anvilClients, compiledTokens, deploy } from '../test/helpers/contracts.js'
import { rpc } from '../test/helpers/subscriber-harness.js'
import { benchEvent } from './bench-events.js'
import { forkRole, nextMessage, now, percentile, processCpuMs, receive, runReceiverChild, sendAndMine } from './bench-processes.js'

const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef'
const CHAIN = 'local'
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const CLIENTS = 10
const IDLE_CONNECTIONS = 200
const EVENTS_PER_SECOND = Number(process.env.STREAM_BENCH_RATE ?? 1_000)
const TICK_MS = 100
const SECONDS = Number(process.env.STREAM_BENCH_SECONDS ?? 10)
const LOG_EVENTS = 20_000

const forkSelf = (role: string, env: Record<string, string> = {}) => forkRole(import.meta.url, role, env)

// --- the roles, each in its own process -------------------------------------------------------

function roleConfig(env: Record<string, string | undefined> = process.env): Config {
  return loadConfig(
    {
      BLOCKHOOK_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: env.BENCH_REDIS_URL, LOG_LEVEL: 'silent',
      BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true', HOST: '127.0.0.1', PORT: env.BENCH_PORT,
    },
    {
      file: {
        chains: [{ id: CHAIN, type: 'evm', ws: [env.BENCH_ANVIL_WS], confirmations: 0, blockTimeMs: 1_000 }],
        stream: { maxConnectionsPerTenant: 1_000 },
        // One watch is one URL: at the default cap of 10 in flight, the worker's other 90 slots postpone.
        delivery: { maxConcurrencyPerUrl: Number(env.STREAM_BENCH_URL_CAP ?? 10) },
      },
    },
  )
}

interface MemorySnapshot { rss: number; heap: number }

function memorySnapshot(): MemorySnapshot {
  for (let i = 0; i < 3; i++) gc!()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed + m.external }
}

async function runRoleChild(role: 'api' | 'worker' | 'subscriber'): Promise<void> {
  const config = roleConfig()
  const logger = pino({ level: 'silent' })
  const running: RunningRole = role === 'api' ? await startApi(config, logger) : role === 'worker' ? await startWorker(config, logger) : await startSubscriber(config, logger)
  process.on('message', async (command: 'memory' | 'stop') => {
    if (command === 'memory') {
      process.send!(memorySnapshot())
      return
    }
    await running.close()
    process.send!({ stopped: true }, () => process.exit(0))
  })
  process.send!({ ready: true })
}

async function runBareWsChild(): Promise<void> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => server.once('listening', resolve))
  process.on('message', () => process.send!(memorySnapshot()))
  process.once('disconnect', () => process.exit(0))
  process.send!({ url: `ws://127.0.0.1:${(server.address() as { port: number }).port}` })
}

// --- the stream clients -----------------------------------------------------------------------

type ClientsCommand =
  | { type: 'open'; url: string; apiKey: string; count: number }
  | { type: 'record' }
  | { type: 'expect'; perClient: number }
  | { type: 'report' }
  | { type: 'close' }

interface ClientsReport { counts: number[]; lagsMs: number[] }

const CURSOR_MS = /^\{"cursor":"(\d+)-/

async function runClientsChild(): Promise<void> {
  let sockets: WebSocket[] = []
  let counts: number[] = []
  let lagsMs: number[] = []
  let recording = false
  let expected = Infinity
  const check = () => {
    if (counts.every((c) => c >= expected)) {
      expected = Infinity
      process.send!({ reached: true })
    }
  }
  process.on('message', async (command: ClientsCommand) => {
    switch (command.type) {
      case 'open': {
        await Promise.all(Array.from({ length: command.count }, () => new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(command.url, { headers: { authorization: `Bearer ${command.apiKey}` } })
          const index = sockets.push(ws) - 1
          counts[index] = 0
          ws.on('message', (data: Buffer) => {
            counts[index]!++
            // What a client that timestamps frames on arrival would see; the cursor is the log entry's id.
            if (recording) lagsMs.push(Date.now() - Number(CURSOR_MS.exec(data.subarray(0, 40).toString())![1]))
            if (expected !== Infinity) check()
          })
          ws.once('open', () => resolve())
          ws.once('error', reject)
        })))
        process.send!({ opened: sockets.length })
        break
      }
      case 'record':
        counts = counts.map(() => 0)
        lagsMs = []
        recording = true
        process.send!({ recording: true })
        break
      case 'expect':
        expected = command.perClient
        check()
        break
      case 'report':
        process.send!({ counts, lagsMs } satisfies ClientsReport)
        break
      case 'close':
        await Promise.all(sockets.map((ws) => new Promise((resolve) => { ws.once('close', resolve); ws.close() })))
        sockets = []
        counts = []
        recording = false
        process.send!({ closed: true })
        break
    }
  })
  process.once('disconnect', () => process.exit(0))
  process.send!({ ready: true })
}

// --- the run ----------------------------------------------------------------------------------

async function ask<T>(child: ChildProcess, command: unknown): Promise<T> {
  const answer = nextMessage<T>(child)
  child.send(command as object)
  return answer
}

function print(name: string, value: string, note = ''): void {
  console.log(`${name.padEnd(58)} ${value.padStart(14)}   ${note}`)
}

const ms = (value: number) => `${value.toFixed(1)} ms`
const us = (value: number) => `${value.toFixed(0)} µs`

function lagLine(name: string, lags: number[]): { p50: number; p99: number } {
  lags.sort((a, b) => a - b)
  const figures = { p50: percentile(lags, 50), p99: percentile(lags, 99) }
  print(`${name} p50 / p99 (${lags.length} samples)`, `${ms(figures.p50)} / ${ms(figures.p99)}`)
  return figures
}

async function main(): Promise<void> {
  const redisServer = await startRedisServer()
  const anvil = await startAnvil(['--no-mining'])
  let wiring: Wiring | undefined
  const children: ChildProcess[] = []
  const spawn = (role: string, env?: Record<string, string>) => {
    const child = forkSelf(role, env)
    children.push(child)
    return child
  }
  try {
    const clients = anvilClients(anvil.url)
    const token = await deploy(clients, 'TestToken', async () => { await rpc(anvil.url, 'evm_mine') })
    const port = await freePort()
    const env = { BENCH_REDIS_URL: redisServer.url, BENCH_PORT: String(port), BENCH_ANVIL_WS: anvil.wsUrl }
    const config = roleConfig({ ...process.env, ...env })
    wiring = wire(config, 'bench-stream', pino({ level: 'silent' }))
    // What this process writes is measured below: no memory probes (their key would count).
    wiring.memoryWatch.stop()
    const { redis, keys } = wiring
    const receiver = spawn('receiver')
    const { url: receiverUrl } = await nextMessage<{ url: string }>(receiver)
    const streamClients = spawn('clients')
    const bareWs = spawn('barews')
    await nextMessage(streamClients)
    const { url: bareWsUrl } = await nextMessage<{ url: string }>(bareWs)
    const roles = Object.fromEntries(['subscriber', 'api', 'worker'].map((role) => [role, spawn(role, env)])) as Record<'subscriber' | 'api' | 'worker', ChildProcess>
    await Promise.all(Object.values(roles).map((child) => nextMessage(child)))

    const api = `http://127.0.0.1:${port}`
    const post = async <T>(path: string, authorization: string, body: unknown): Promise<T> => {
      const res = await fetch(`${api}${path}`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
      return (await res.json()) as T
    }
    const tenant = await post<{ id: string; apiKey: string }>('/admin/tenants', `Bearer ${ADMIN_TOKEN}`, { name: 'bench' })
    const watch = await post<{ id: string }>('/watches', `Bearer ${tenant.apiKey}`, {
      chain: CHAIN, type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, url: `${receiverUrl}/webhooks`, confirmations: 0,
    })
    const logKey = keys.tenantEventLog(tenant.id, 0)
    const streamUrl = `ws://127.0.0.1:${port}/events/stream`

    // 1. Memory per idle connection, on the api before any load, and on a bare ws server.
    const idleCost = async (child: ChildProcess, url: string) => {
      const before = await ask<MemorySnapshot>(child, 'memory')
      await ask(streamClients, { type: 'open', url, apiKey: tenant.apiKey, count: IDLE_CONNECTIONS } satisfies ClientsCommand)
      // The api registers a session one Redis read after the upgrade completes.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const after = await ask<MemorySnapshot>(child, 'memory')
      await ask(streamClients, { type: 'close' } satisfies ClientsCommand)
      return { heap: (after.heap - before.heap) / IDLE_CONNECTIONS, rss: (after.rss - before.rss) / IDLE_CONNECTIONS }
    }
    const apiIdle = await idleCost(roles.api, streamUrl)
    const bareIdle = await idleCost(bareWs, bareWsUrl)

    // 2. The load. The clients connect first; then 1-log blocks until the subscriber has the watch.
    await ask(streamClients, { type: 'open', url: streamUrl, apiKey: tenant.apiKey, count: CLIENTS } satisfies ClientsCommand)
    const sprayData = (count: number) => encodeFunctionData({ abi: compiledTokens().TestToken.abi, functionName: 'spray', args: [BOB, BigInt(count)] })
    const mineSpray = (data: string) => sendAndMine(anvil.url, token, data)
    const head = async () => Number(await rpc<string>(anvil.url, 'eth_blockNumber'))
    const cursorReached = async (block: number) => {
      while (Number(await redis.hget(keys.chainCursor(CHAIN), 'number') ?? -1) < block) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    for (let attempt = 0; (await redis.xlen(logKey)) === 0; attempt++) {
      if (attempt === 100) throw new Error('the subscriber matched nothing in 100 blocks')
      await mineSpray(sprayData(1))
      await cursorReached(await head())
    }
    const warmUp = await redis.xlen(logKey)
    const lastWarmUpCursor = ((await redis.xrevrange(logKey, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]![0]
    while (Number(await redis.hget(keys.watchStats(watch.id), 'pending')) > 0) await new Promise((resolve) => setTimeout(resolve, 20))
    await ask(streamClients, { type: 'expect', perClient: warmUp } satisfies ClientsCommand)
    await ask(streamClients, { type: 'record' } satisfies ClientsCommand)

    const ticks = (SECONDS * 1000) / TICK_MS
    const logsPerTick = (EVENTS_PER_SECOND * TICK_MS) / 1000
    const total = ticks * logsPerTick
    const firstBlock = (await head()) + 1
    const minedAt = new Map<number, number>()
    const measured = { ...roles, clients: streamClients }
    const cpu0 = Object.fromEntries(Object.entries(measured).map(([role, child]) => [role, processCpuMs(child.pid!)]))
    const cpu1: Record<string, number> = {}
    const streamed = ask(streamClients, { type: 'expect', perClient: total } satisfies ClientsCommand).then(() => {
      cpu1.api = processCpuMs(roles.api.pid!)
      cpu1.clients = processCpuMs(streamClients.pid!)
    })
    let offeredPerSecond = 0
    const webhooks = await receive(receiver, total, true, async () => {
      const data = sprayData(logsPerTick)
      const started = now()
      for (let tick = 0; tick < ticks; tick++) {
        const wait = started + tick * TICK_MS - now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        await mineSpray(data)
        minedAt.set(firstBlock + tick, now())
      }
      offeredPerSecond = total / ((now() - started) / 1000)
    })
    cpu1.worker = processCpuMs(roles.worker.pid!)
    await streamed
    cpu1.subscriber = processCpuMs(roles.subscriber.pid!)
    const streamReport = await ask<ClientsReport>(streamClients, { type: 'report' } satisfies ClientsCommand)

    const entries = (await redis.xrange(logKey, `(${lastWarmUpCursor}`, '+')) as [string, string[]][]
    if (entries.length !== total) throw new Error(`expected ${total} events in the log, found ${entries.length}`)
    const storedAt = new Map<string, number>()
    const minedToStored: number[] = []
    for (const [cursor, fields] of entries) {
      const field = (name: string) => fields[fields.indexOf(name) + 1]!
      const at = Number(cursor.split('-')[0])
      storedAt.set(field('id'), at)
      const block = (JSON.parse(expandText(field('body'))) as { data: { block: { number: number } } }).data.block.number
      minedToStored.push(at - minedAt.get(block)!)
    }
    const logBytes = Number(await redis.memory('USAGE', logKey, 'SAMPLES', '0'))
    const logLength = await redis.xlen(logKey)
    await ask(streamClients, { type: 'close' } satisfies ClientsCommand)
    await Promise.all(Object.values(roles).map((child) => ask(child, 'stop')))

    // 3. The event log alone, from an empty Redis: 20,000 events of a watch without a url.
    await redis.flushall()
    const usedMemory = async () => Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1])
    const store = wiring.deliveryQueue.store
    const emptyBytes = await usedMemory()
    for (let from = 0; from < LOG_EVENTS; from += 1_000) {
      await store.storeMatched(Array.from({ length: 1_000 }, (_, i) => ({ ...benchEvent('wch_bench', from + i), streamOnly: true as const })), undefined, Date.now())
    }
    const streamOnlyBytes = await usedMemory()
    const benchLogKey = keys.tenantEventLog('ten_bench', 0)
    const benchLogUsage = Number(await redis.memory('USAGE', benchLogKey, 'SAMPLES', '0'))
    await redis.del(benchLogKey)
    const withoutLogBytes = await usedMemory()

    const messages = total * CLIENTS
    const apiCpuPerMessage = ((cpu1.api! - cpu0.api!) * 1000) / messages
    const workerCpuPerDelivery = ((cpu1.worker! - cpu0.worker!) * 1000) / total
    print('figure', 'value', 'beside')
    print(`offered: one watch, ${EVENTS_PER_SECOND} events/s for ${SECONDS} s`, `${offeredPerSecond.toFixed(0)}/s`, `${total} events, ${ticks} blocks of ${logsPerTick} logs; webhooks ≤ ${config.delivery.maxConcurrencyPerUrl} in flight`)
    print(`stream: messages received by ${CLIENTS} clients`, String(streamReport.counts.reduce((a, b) => a + b, 0)), `of ${messages}`)
    print('webhooks: 2xx answered by the receiver', String(webhooks.count), `of ${total}`)
    print('api CPU per message sent (10 clients)', us(apiCpuPerMessage), `per event streamed to all 10: ${us(apiCpuPerMessage * CLIENTS)}`)
    print('worker CPU per webhook delivered', us(workerCpuPerDelivery), `stream message / webhook: ${(apiCpuPerMessage / workerCpuPerDelivery).toFixed(3)}`)
    print('stream clients\' process CPU per message received', us(((cpu1.clients! - cpu0.clients!) * 1000) / messages), 'the 10 clients share one process')
    print('subscriber CPU per event matched and stored', us(((cpu1.subscriber! - cpu0.subscriber!) * 1000) / total), 'shared by both paths')
    lagLine('mined → stored (shared by both paths)', minedToStored)
    const streamLag = lagLine('stored → frame at a client', streamReport.lagsMs)
    const webhookLag = lagLine('stored → webhook 2xx', webhooks.answered.map(([id, at]) => at - storedAt.get(id)!))
    print('lag ratio webhook / stream, p50 and p99', `${(webhookLag.p50 / streamLag.p50).toFixed(1)} / ${(webhookLag.p99 / streamLag.p99).toFixed(1)}`)
    print(`api memory per idle stream (${IDLE_CONNECTIONS} open): heap+external`, `${(apiIdle.heap / 1024).toFixed(1)} KiB`, `bare ws server: ${(bareIdle.heap / 1024).toFixed(1)} KiB`)
    print(`api memory per idle stream (${IDLE_CONNECTIONS} open): RSS`, `${(apiIdle.rss / 1024).toFixed(1)} KiB`, `bare ws server: ${(bareIdle.rss / 1024).toFixed(1)} KiB`)
    print('event log, real evm.log events: MEMORY USAGE / entries', `${(logBytes / logLength).toFixed(0)} B`, `${logLength} entries`)
    print(`event log, ${LOG_EVENTS} bench events: MEMORY USAGE / entries`, `${(benchLogUsage / LOG_EVENTS).toFixed(0)} B`, '')
    print('event log entry, used_memory freed by deleting the log', `${((streamOnlyBytes - withoutLogBytes) / LOG_EVENTS).toFixed(0)} B`, 'per event')
    print('watch without a url, used_memory per event (entry + marker)', `${((streamOnlyBytes - emptyBytes) / LOG_EVENTS).toFixed(0)} B`, 'per event')
  } finally {
    for (const child of children) if (child.connected) child.disconnect()
    for (const child of children) child.kill()
    await wiring?.close()
    await anvil.stop()
    await redisServer.stop()
  }
}

const role = process.argv[2]
if (role === 'api' || role === 'worker' || role === 'subscriber') await runRoleChild(role)
else if (role === 'receiver') await runReceiverChild()
else if (role === 'clients') await runClientsChild()
else if (role === 'barews') await runBareWsChild()
else await main()
