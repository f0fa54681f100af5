/**
 * `npm run soak [-- --minutes 10 --seed N --drain-minutes 5]`: blockhook under faults, judged by
 * an oracle (bench/soak/oracle.ts).
 *
 * Runs a real anvil mining a block a second behind a TCP proxy, a redis-server with appendonly,
 * and the roles apart as `blockhook api`, `subscriber` and two `worker`s with production
 * timings; a receiver (receiver.ts) that verifies every request with `standardwebhooks` and
 * sometimes answers 500, hangs or resets; a traffic generator sending ERC-20 transfers, log
 * sprays and ether; eight watches (logs and address activity, with and without confirmations,
 * one batched, one ordered, one that is paused and resumed, and one without a url whose event
 * stream `blockhook listen` forwards). On a seeded schedule (schedule.ts) it cuts and freezes
 * the node link, SIGKILLs the subscriber, the workers and Redis (each restarted, Redis on the
 * same data), reorganises the chain 1–5 blocks deep with `anvil_reorg`, pauses a watch, takes
 * the receiver down and halts the chain for longer than its stall threshold (the operator
 * alerts are counted, not judged). Then it stops the faults and the
 * traffic, lets the chain move past every confirmation depth, and drains until everything owed
 * has arrived (or `--drain-minutes` pass) before the oracle reads the final canonical chain.
 *
 * Exit code 1 when a figure that must be 0 is not. The seed is printed first and last: the same
 * seed gives the same schedule, traffic and receiver answers (the timing of a loaded machine
 * still varies). Pass/fail never depends on a duration; latencies are reported only.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { loadavg, cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { encodeFunctionData, type Address } from 'viem'
import { foundry } from 'viem/chains'
import WebSocket from 'ws'
import { TRANSFER_TOPIC } from '../../src/chains/evm/abi.js'
import { freePort, startAnvil } from '../../test/helpers/processes.js'
import { ACCOUNTS, anvilClients, compiledTokens, deploy, send } from '../../test/helpers/contracts.js'
import { rpc } from '../../test/helpers/subscriber-harness.js'
import { startTcpProxy } from '../../test/helpers/tcp-proxy.js'
import { PersistentRedis, RoleProcess, type StopOutcome } from './cluster.js'
import { failures, runOracle, type ChainBlock, type OracleReport, type PauseWindow, type WatchSpec } from './oracle.js'
import { rng } from './random.js'
import { startReceiver } from './receiver.js'
import { faultSchedule, FAULT_KINDS, RESUME_SETTLE_MS, type Fault, type FaultKind } from './schedule.js'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    'drain-minutes': { type: 'string', default: '5' },
    'fault-every': { type: 'string', default: '15', description: 'mean seconds between faults' },
    'log-level': { type: 'string', default: 'warn' },
    dir: { type: 'string' },
  },
})
const minutes = Number(args.minutes)
const drainMinutes = Number(args['drain-minutes'])
const seed = args.seed === undefined ? randomInt(1, 2 ** 31) : Number(args.seed)
if (!(minutes > 0) || !(drainMinutes > 0) || !Number.isSafeInteger(seed)) {
  process.stderr.write('usage: npm run soak -- [--minutes 10] [--seed N] [--drain-minutes 5] [--fault-every 15] [--log-level warn] [--dir D]\n')
  process.exit(2)
}
const dir = args.dir ?? mkdtempSync(join(tmpdir(), `blockhook-soak-${seed}-`))
// Ctrl-C or SIGTERM: exit through 'exit', whose handlers stop Redis, anvil and the roles.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))
const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
say(`soak: seed ${seed}, ${minutes} min of faults, drain up to ${drainMinutes} min, logs in ${dir}`)

const CHAIN = 'local'
const WORKERS = 2
const ADMIN_TOKEN = `soak-admin-${randomBytes(16).toString('hex')}`
const [ALICE, BOB] = ACCOUNTS
const CAROL = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc'
const DAVE = '0x90f79bf6eb2c4f870365e785982e1f101e93b906'
const EVE = '0x15d34aaf54267db7d7c367839aaf71a00a2c6a65'
const RECIPIENTS: readonly Address[] = [BOB, CAROL, DAVE, EVE]
const TRANSFER_ABI = 'event Transfer(address indexed from, address indexed to, uint256 value)'
const topicOf = (address: string) => `0x${address.slice(2).padStart(64, '0')}`

// --- the chain, Redis and the receiver -------------------------------------------------------------

const redis = new PersistentRedis(join(dir, 'redis'))
await redis.start()
const anvil = await startAnvil(['--block-time', '1'])
const proxy = await startTcpProxy(anvil.port)
const clients = anvilClients(anvil.url)
const blockNumber = async () => Number(await rpc<string>(anvil.url, 'eth_blockNumber'))
const token = await deploy(clients, 'TestToken', async () => {})
await clients.public.waitForTransactionReceipt({
  hash: await send(clients, token, 'TestToken', 'mint', [ALICE, 10n ** 30n]), pollingInterval: 100,
})
const receiver = await startReceiver(seed)
/** For what is sent once, never retried (`listen`'s forwards), and the operator alerts: never fails, never goes down. */
const steady = await startReceiver(seed)
const alertSecret = `whsec_${randomBytes(24).toString('base64')}`
steady.trust('/alerts', alertSecret, { faults: false })

/** When this process first saw each block hash, straight from anvil (not through the proxy). */
const firstSeen = new Map<string, number>()
const heads = new WebSocket(anvil.wsUrl)
heads.on('open', () => heads.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] })))
heads.on('message', (raw) => {
  const message = JSON.parse(String(raw)) as { params?: { result?: { hash?: string } } }
  const hash = message.params?.result?.hash
  if (hash && !firstSeen.has(hash)) firstSeen.set(hash, Date.now())
})

// --- blockhook, its roles apart ----------------------------------------------------------------------

const configPath = join(dir, 'blockhook.config.json')
writeFileSync(configPath, JSON.stringify({
  chains: [{ id: CHAIN, type: 'evm', ws: [proxy.wsUrl], confirmations: 0, blockTimeMs: 1_000 }],
  delivery: {
    timeoutMs: 3_000,
    // Long enough to outlast every outage the schedule makes (about 7 minutes in all), short
    // enough to drain: a delivery that spends its attempts would be lost to the oracle.
    retrySchedule: ['1s', '2s', '4s', '8s', '15s', '30s', '30s', '30s', '30s', '30s', '30s', '30s', '30s', '30s', '30s', '30s'],
    concurrency: 20,
  },
  alerts: { url: `${steady.url}/alerts`, secret: alertSecret },
  api: { rateLimitPerSecond: 1_000 },
}, null, 2))
const apiPort = await freePort()
const env = {
  REDIS_URL: redis.url,
  HOST: '127.0.0.1',
  PORT: String(apiPort),
  BLOCKHOOK_ADMIN_TOKEN: ADMIN_TOKEN,
  BLOCKHOOK_CONFIG: configPath,
  BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true',
  BLOCKHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  LOG_LEVEL: args['log-level']!,
}
const logDir = join(dir, 'logs')
const api = new RoleProcess('api', ['api'], env, logDir)
const subscriber = new RoleProcess('subscriber', ['subscriber'], env, logDir)
const workers = Array.from({ length: WORKERS }, (_, i) => new RoleProcess(`worker-${i + 1}`, ['worker'], env, logDir))
const roles = [api, subscriber, ...workers]
for (const role of roles) role.start()

const apiUrl = `http://127.0.0.1:${apiPort}`
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** One API call, tried again while blockhook or its Redis is down (the faults make that often). */
async function call<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<T> {
  const deadline = Date.now() + 5 * 60_000
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      const text = await response.text()
      if (response.ok) return (text ? JSON.parse(text) : undefined) as T
      if (response.status < 500 && response.status !== 429) throw new Error(`${method} ${path}: ${response.status} ${text}`)
      if (Date.now() > deadline) throw new Error(`${method} ${path}: still ${response.status} ${text}`)
    } catch (err) {
      if ((err as Error).message.startsWith(`${method} ${path}`)) throw err
      if (Date.now() > deadline) throw err
    }
    await sleep(Math.min(2_000, 100 * 2 ** attempt))
  }
}

interface ChainStatusBody { chains: { id: string; connected: boolean; head: { number: number | null }; cursor: { number: number } | null }[]; queues: Record<string, number> }
const status = () => call<ChainStatusBody>('GET', '/admin/status', ADMIN)
const cursorNumber = async () => (await status()).chains.find((c) => c.id === CHAIN)?.cursor?.number ?? 0

for (;;) {
  const chain = (await status()).chains.find((c) => c.id === CHAIN)
  if (chain?.connected && chain.head.number !== null) break
  await sleep(250)
}
say(`blockhook is up: api ${apiUrl}, subscriber and ${WORKERS} workers (pids ${roles.map((r) => r.pid).join(', ')})`)

// --- the watches -------------------------------------------------------------------------------------

const tenant = await call<{ apiKey: string }>('POST', '/admin/tenants', ADMIN, { name: 'soak' })
const auth = { authorization: `Bearer ${tenant.apiKey}` }
const tokenLogs = { address: token, topics: [TRANSFER_TOPIC], abi: [TRANSFER_ABI] }
const WATCHES = [
  { name: 'logs', type: 'evm.logs', filter: tokenLogs, confirmations: 0 },
  { name: 'logs-conf3', type: 'evm.logs', filter: tokenLogs, confirmations: 3 },
  { name: 'activity', type: 'evm.address_activity', filter: { addresses: [BOB, CAROL] }, confirmations: 0 },
  { name: 'activity-conf2', type: 'evm.address_activity', filter: { addresses: [CAROL, DAVE] }, confirmations: 2 },
  { name: 'batched', type: 'evm.logs', filter: tokenLogs, confirmations: 1, batch: 'block' },
  { name: 'ordered', type: 'evm.logs', filter: { ...tokenLogs, topics: [TRANSFER_TOPIC, null, topicOf(BOB)] }, confirmations: 0, ordered: true },
  { name: 'paused', type: 'evm.logs', filter: { ...tokenLogs, topics: [TRANSFER_TOPIC, null, topicOf(CAROL)] }, confirmations: 0 },
  // No url: its events reach only the event stream, which `blockhook listen` forwards.
  { name: 'stream', type: 'evm.logs', filter: tokenLogs, confirmations: 0, streamOnly: true },
] as const
const specs: WatchSpec[] = []
for (const w of WATCHES) {
  const { name, ...body } = w
  const streamOnly = 'streamOnly' in w
  const path = streamOnly ? `/stream/${name}` : `/hooks/${name}`
  const created = await call<{ id: string; secret: string; startBlock: number }>('POST', '/watches', auth, {
    chain: CHAIN, ...(streamOnly ? {} : { url: `${receiver.url}${path}` }), ...Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'streamOnly')),
  })
  if (streamOnly) steady.trust(path, created.secret, { faults: false })
  else receiver.trust(path, created.secret)
  const filter = w.filter as { address?: string; topics?: (string | null)[]; addresses?: string[] }
  specs.push({
    name, id: created.id, kind: w.type === 'evm.logs' ? 'logs' : 'activity',
    address: filter.address, topics: filter.topics, addresses: filter.addresses,
    confirmations: w.confirmations, batch: 'batch' in w, ordered: 'ordered' in w, startBlock: created.startBlock,
  })
}
const pausable = specs.find((s) => s.name === 'paused')!
const listen = new RoleProcess('listen', [
  'listen', '--api', apiUrl, '--key', tenant.apiKey, '--watch', specs.find((s) => s.name === 'stream')!.id, '--forward-to', `${steady.url}/stream/stream`,
], env, logDir)
roles.push(listen)
listen.start()
// Its stream starts from now: connected before the first transfer, it misses none.
await listen.printed(/Connected; waiting for events/)
const firstBlock = Math.min(...specs.map((s) => s.startBlock))
say(`${specs.length} watches from block ${firstBlock}: ${specs.map((s) => s.name).join(', ')}`)

// --- traffic -----------------------------------------------------------------------------------------

const traffic = { transfers: 0, sprays: 0, ether: 0, failed: 0 }
let trafficOn = true
const trafficDone = (async () => {
  const r = rng(seed ^ 0x7a11c)
  while (trafficOn) {
    await sleep(r.int(300, 1_500))
    const x = r.next()
    const to = r.pick(RECIPIENTS)
    const amount = BigInt(r.int(1, 1_000_000))
    try {
      if (x < 0.8) {
        await send(clients, token, 'TestToken', 'transfer', [to, amount])
        traffic.transfers++
      } else if (x < 0.88) {
        await send(clients, token, 'TestToken', 'spray', [to, BigInt(r.int(5, 20))])
        traffic.sprays++
      } else {
        await clients.wallet.sendTransaction({ to, value: amount, account: ALICE, chain: foundry, gas: 21_000n })
        traffic.ether++
      }
    } catch {
      traffic.failed++
    }
  }
})()

// --- faults ------------------------------------------------------------------------------------------

const durationMs = minutes * 60_000
const warmupMs = Math.min(20_000, durationMs / 6)
const quietTailMs = Math.min(30_000, durationMs / 6)
const schedule = faultSchedule({
  seed, durationMs, workers: WORKERS, warmupMs, quietTailMs,
  // A short run still tries every kind of fault once.
  meanGapMs: Math.min(Number(args['fault-every']) * 1_000, (durationMs - warmupMs - quietTailMs) / (FAULT_KINDS.length + 2)),
})
const injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>
const faultErrors: string[] = []
const pauses: PauseWindow[] = []
/** When each pause and resume was answered, and the node's head then (written to the run's directory). */
const pauseLog: unknown[] = []
const reorgDepths: number[] = []
const faultRng = rng(seed ^ 0xfa17)
const tokenAbi = compiledTokens().TestToken.abi

async function inject(fault: Fault): Promise<void> {
  switch (fault.kind) {
    case 'link-cut': return proxy.cut()
    case 'link-freeze': return proxy.stall()
    case 'kill-subscriber':
      await subscriber.kill()
      await sleep(fault.restartAfterMs)
      return subscriber.start()
    case 'kill-worker': {
      const worker = workers[fault.worker]!
      await worker.kill()
      await sleep(fault.restartAfterMs)
      return worker.start()
    }
    case 'kill-redis':
      await redis.kill()
      await sleep(fault.restartAfterMs)
      return redis.start()
    case 'reorg': {
      const replacements = Array.from({ length: fault.replacementTransfers }, (_, i) => [{
        from: ALICE, to: token, gas: '0x7a120',
        data: encodeFunctionData({ abi: tokenAbi, functionName: 'transfer', args: [faultRng.pick(RECIPIENTS), BigInt(faultRng.int(1, 1_000_000))] }),
      }, i % fault.depth])
      await rpc(anvil.url, 'anvil_reorg', [fault.depth, replacements])
      reorgDepths.push(fault.depth)
      // The replacement blocks may come without a newHeads notification.
      const head = await blockNumber()
      for (let n = head - fault.depth + 1; n <= head; n++) {
        const block = await rpc<{ hash: string }>(anvil.url, 'eth_getBlockByNumber', [`0x${n.toString(16)}`, false])
        if (!firstSeen.has(block.hash)) firstSeen.set(block.hash, Date.now())
      }
      return
    }
    case 'pause': {
      const afterBlock = await cursorNumber()
      await call('PATCH', `/watches/${pausable.id}`, auth, { status: 'paused' })
      const pausedAt = { at: Date.now(), head: await blockNumber() }
      await sleep(fault.resumeAfterMs)
      await call('PATCH', `/watches/${pausable.id}`, auth, { status: 'active' })
      const resumedAt = { at: Date.now(), head: await blockNumber() }
      await sleep(RESUME_SETTLE_MS)
      pauses.push({ watchId: pausable.id, afterBlock, throughBlock: await cursorNumber() })
      pauseLog.push({ afterBlock, pausedAt, resumedAt })
      return
    }
    case 'receiver-down': return receiver.goDown(fault.forMs)
    case 'chain-halt':
      await rpc(anvil.url, 'evm_setIntervalMining', [0])
      await sleep(fault.forMs)
      await rpc(anvil.url, 'evm_setIntervalMining', [1])
      return
  }
}

const describe = (fault: Fault) => Object.entries(fault).map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`)).join(' ')
const started = Date.now()
const inFlight = new Set<Promise<void>>()
const progress = setInterval(() => {
  void status().then((s) => {
    const chain = s.chains.find((c) => c.id === CHAIN)
    say(`progress: head ${chain?.head.number} cursor ${chain?.cursor?.number} connected ${chain?.connected}; queues ${JSON.stringify(s.queues)}; received ${receiver.received.length}`)
  }).catch(() => undefined)
}, 30_000)
for (const { atMs, fault } of schedule) {
  await sleep(started + atMs - Date.now())
  injected[fault.kind]++
  say(`fault: ${describe(fault)}`)
  const running: Promise<void> = inject(fault)
    .catch((err: unknown) => { faultErrors.push(`${describe(fault)}: ${(err as Error).message}`) })
    .finally(() => inFlight.delete(running))
  inFlight.add(running)
}
await sleep(started + durationMs - Date.now())
say(`faults over (${schedule.length} injected); waiting for the last ones to heal`)
await Promise.all(inFlight)
trafficOn = false
await trafficDone

// --- drain and judge ---------------------------------------------------------------------------------

const maxConfirmations = Math.max(...specs.map((s) => s.confirmations))
const lastTrafficBlock = await blockNumber()
while ((await blockNumber()) < lastTrafficBlock + maxConfirmations + 2) await sleep(500)
const head = await blockNumber()
say(`traffic stopped at block ${lastTrafficBlock}; reading the canonical chain ${firstBlock}..${head}`)

async function readBlock(n: number): Promise<ChainBlock> {
  const hex = `0x${n.toString(16)}`
  const block = await rpc<{ hash: string; transactions: { hash: string; from: string; to: string | null }[] }>(anvil.url, 'eth_getBlockByNumber', [hex, true])
  const logs = await rpc<{ address: string; topics: string[]; transactionHash: string; logIndex: string }[]>(anvil.url, 'eth_getLogs', [{ blockHash: block.hash }])
  return {
    number: n, hash: block.hash,
    transactions: block.transactions.map((t) => ({ hash: t.hash, from: t.from, to: t.to })),
    logs: logs.map((l) => ({ address: l.address, topics: l.topics, transactionHash: l.transactionHash, logIndex: Number(l.logIndex) })),
  }
}
const blocks: ChainBlock[] = []
for (let n = firstBlock; n <= head; n += 8) {
  blocks.push(...await Promise.all(Array.from({ length: Math.min(8, head - n + 1) }, (_, i) => readBlock(n + i))))
}

/** Every webhook accepted for a watch, in arrival order. */
const accepted = () => [...receiver.received, ...steady.received.filter((r) => r.path !== '/alerts')].sort((a, b) => a.at - b.at)
const judge = (): OracleReport => runOracle({ chain: CHAIN, watches: specs, blocks, head, pauses, firstSeen, accepted: accepted() })
const drainDeadline = Date.now() + drainMinutes * 60_000
let report = judge()
while ((report.lost > 0 || report.retractionsMissing > 0) && Date.now() < drainDeadline) {
  say(`drain: ${report.lost} of ${report.expected} events and ${report.retractionsMissing} retractions still to come`)
  await sleep(5_000)
  report = judge()
}
// Anything late (a duplicate, a stray retraction) has a moment to show up before the verdict.
await sleep(10_000)
report = judge()
const finalStatus = await status().catch(() => undefined)
clearInterval(progress)

// What the oracle judged, for a look after the run.
writeFileSync(join(dir, 'received.jsonl'), accepted().map((r) => JSON.stringify({
  at: r.at, path: r.path, id: r.id, type: r.body.type, sequence: r.body.data.sequence,
  block: r.body.data.block, eventKey: r.body.data.eventKey, retracts: r.body.data.retracts,
  events: (r.body.data.events as { id: string; type: string; eventKey: string }[] | undefined)?.map(({ id, type, eventKey }) => ({ id, type, eventKey })),
})).join('\n'))
writeFileSync(join(dir, 'report.json'), JSON.stringify({ seed, minutes, schedule, pauses, pauseLog, watches: specs, report }, null, 2))

const stops: StopOutcome[] = []
for (const role of [...roles].reverse()) stops.push(await role.stop())
heads.close()
await receiver.close()
await steady.close()
await proxy.close()
await anvil.stop()
await redis.stop()

// --- the verdict -------------------------------------------------------------------------------------

const fmt = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`)
const badStops = stops.filter((s) => s.code !== 0 || s.ms > 10_000)
const crashes = roles.flatMap((r) => r.unexpectedExits.map((e) => `${r.name} exited by itself (${e})`))
const alertTypes = new Map<string, number>()
const alertIds = new Set<string>()
// One alert per change of state: the chain's stalled and recovered alternate, and it ends recovered.
let chainStalled = false
let alertsOutOfTurn = 0
for (const r of steady.received.filter((x) => x.path === '/alerts')) {
  if (alertIds.has(r.id)) continue
  alertIds.add(r.id)
  alertTypes.set(r.body.type, (alertTypes.get(r.body.type) ?? 0) + 1)
  if (r.body.type !== 'alert.chain_stalled' && r.body.type !== 'alert.chain_recovered') continue
  if ((r.body.type === 'alert.chain_stalled') === chainStalled) alertsOutOfTurn++
  chainStalled = r.body.type === 'alert.chain_stalled'
}
if (chainStalled) alertsOutOfTurn++

say('---')
say(`seed ${seed}; ${minutes} min; machine ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
say(`faults injected: ${Object.entries(injected).map(([k, n]) => `${k} ${n}`).join(', ')}; reorg depths ${reorgDepths.join(',') || '—'}; Redis kills ${redis.kills}`)
if (faultErrors.length > 0) say(`faults that failed to inject: ${faultErrors.join('; ')}`)
say(`traffic: ${traffic.transfers} transfers, ${traffic.sprays} log sprays, ${traffic.ether} ether sends, ${traffic.failed} sends refused; blocks ${firstBlock}..${head}`)
say(`receiver answers: ${Object.entries(receiver.counts).map(([k, n]) => `${k} ${n}`).join(', ')}`)
say(`pauses: ${pauses.map((p) => `blocks ${p.afterBlock + 1}..${p.throughBlock}`).join(', ') || '—'}; events in pause windows ${report.optional} (${report.optionalDelivered} delivered, the rest skipped while paused)`)
for (const [name, f] of Object.entries(report.perWatch)) say(`  ${name.padEnd(15)} expected ${f.expected}, delivered ${f.delivered}, lost ${f.lost}`)
say(`alerts: ${[...alertTypes].map(([k, n]) => `${k} ${n}`).join(', ') || '—'}`)
say(`queues at the end: ${JSON.stringify(finalStatus?.queues ?? {})}`)
say(`role stops (SIGTERM): ${stops.map((s) => `${s.name} ${s.signal ?? s.code} in ${(s.ms / 1000).toFixed(1)} s`).join(', ')}`)
say(`oracle: ${report.expected} events owed`)
say(`  lost                              ${report.lost}`)
say(`  delivered under >1 webhook-id     ${report.multipleIds}`)
say(`  retractions missing / spurious    ${report.retractionsMissing} / ${report.retractionsSpurious}`)
say(`  ordered watch out of order        ${report.outOfOrder}`)
say(`  duplicates under the same id      ${report.duplicates} (allowed)`)
say(`  events no filter owes             ${report.unowed}`)
say(`  from dropped blocks, retracted    ${report.droppedDelivered}; retractions of events never accepted ${report.retractionsOfUnseen}`)
say(`  event-to-delivery, confirmations 0: p50 ${fmt(report.latencyConfirmed0.p50Ms)}, p99 ${fmt(report.latencyConfirmed0.p99Ms)} (${report.latencyConfirmed0.count} events)`)
say(`  event-to-delivery, every watch:     p50 ${fmt(report.latencyAll.p50Ms)}, p99 ${fmt(report.latencyAll.p99Ms)} (${report.latencyAll.count} events)`)
for (const sample of [...report.lostSamples, ...report.multipleIdSamples, ...report.retractionSamples, ...report.orderSamples, ...report.unowedSamples]) say(`  sample: ${sample}`)
const failed = failures(report, {
  'signatures that did not verify': receiver.counts.unverified + steady.counts.unverified,
  'role processes that exited by themselves': crashes.length,
  'roles not stopping with 0 within 10 s': badStops.length,
  'chain alerts out of turn (two stalls or recoveries in a row, or stalled at the end)': alertsOutOfTurn,
})
for (const crash of crashes) say(`  ${crash}`)
if (failed.length > 0) {
  say(`FAIL (seed ${seed}): ${failed.join(', ')}`)
  say(`replay: npm run soak -- --minutes ${minutes} --seed ${seed}`)
  process.exit(1)
}
say(`PASS (seed ${seed})`)
process.exit(0)
