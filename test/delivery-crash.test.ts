/**
 * Crash safety and shutdown with real worker processes: SIGKILL mid-request loses nothing and the
 * event arrives again under the same webhook-id (for an ordered watch, before the ones behind it); SIGTERM (through the CLI, as operators run it)
 * lets a short request finish, returns a hanging one to the queue unspent, and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { Webhook } from 'standardwebhooks'
import { TEST_ADMIN_TOKEN } from './helpers/config.js'
import { setupDelivery, startReceiver } from './helpers/delivery.js'
import { startRedis } from './helpers/processes.js'

const require = createRequire(import.meta.url)
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href
const WORKER_ENTRY = new URL('./helpers/delivery-worker-process.ts', import.meta.url).pathname
const CLI = pathToFileURL(new URL('../src/cli.ts', import.meta.url).pathname).href
const CHAINS = [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }]

function spawnNode(t: Test, args: string[], env: Record<string, string>): { child: ChildProcess; exited: Promise<[number | null, string | null]>; output: () => string } {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, ...args], {
    env: { ...process.env, BLOCKHOOK_ADMIN_TOKEN: TEST_ADMIN_TOKEN, BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, exited: once(child, 'exit') as Promise<[number | null, string | null]>, output: () => output }
}

async function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<void> {
  let seen = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (pattern.test(seen)) resolve()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the worker exited (${code}) before ${pattern}:\n${seen}`)))
  })
}

t.test('a worker killed with SIGKILL mid-request: the delivery arrives again with the same id and ends delivered', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let child: ChildProcess | undefined
  const receiver = await startReceiver(t, (_, i) => {
    if (i > 0) return { status: 200 }
    child!.kill('SIGKILL') // while this request is held open
    return 'hang'
  })
  const d = await setupDelivery(t, redis.url, { startWorker: false, tuning: { lockDurationMs: 1_000, stalledIntervalMs: 500 } })
  const worker = spawnNode(t, [WORKER_ENTRY], {
    REDIS_URL: redis.url, TEST_REDIS_PREFIX: d.config.redisPrefix, TEST_CONFIG_FILE: JSON.stringify({ chains: CHAINS }),
  })
  child = worker.child
  await waitForOutput(child, /ready/)

  const { watch, secret } = await d.createWatch(receiver.url)
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])
  const [, signal] = await worker.exited
  t.equal(signal, 'SIGKILL')
  t.equal(receiver.received.length, 1, 'the first request reached the receiver before the kill')

  d.startWorker() // another worker finds the job stalled and takes it over
  const record = await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  const [first, second] = await receiver.waitForCount(2)
  t.equal(first!.headers['webhook-id'], e.id)
  t.equal(second!.headers['webhook-id'], e.id, 'the same webhook-id again')
  t.equal(second!.body, first!.body, 'the same body again')
  t.ok(secret.startsWith('whsec_'))
  t.match(record.attempts, [{ statusCode: 200 }], 'the killed attempt left no record; the one that finished did')
})

t.test('an ordered watch whose worker is killed with its head in flight: after a new worker starts, the head again under its id, then the rest in sequence, one at a time', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let child: ChildProcess | undefined
  const receiver = await startReceiver(t, (_, i) => {
    if (i === 0) {
      child!.kill('SIGKILL') // while the head's request is held open
      return 'hang'
    }
    // A slow receiver: two requests of the watch sent at once would be open together.
    return { status: 200, after: new Promise((resolve) => setTimeout(resolve, 100)) }
  })
  const d = await setupDelivery(t, redis.url, { startWorker: false, tuning: { lockDurationMs: 1_000, stalledIntervalMs: 500 } })
  const worker = spawnNode(t, [WORKER_ENTRY], {
    REDIS_URL: redis.url, TEST_REDIS_PREFIX: d.config.redisPrefix, TEST_CONFIG_FILE: JSON.stringify({ chains: CHAINS }),
  })
  child = worker.child
  await waitForOutput(child, /ready/)

  const { watch, secret } = await d.createWatch(receiver.url, { ordered: true })
  const events = [1, 2, 3].map((n) => ({ ...d.event(watch, n), ordered: true as const }))
  await d.deliveryQueue.enqueue(events)
  const [, signal] = await worker.exited
  t.equal(signal, 'SIGKILL')
  t.equal(receiver.received.length, 1, 'only the head went out before the kill')

  d.startWorker()
  const received = await receiver.waitForCount(4)
  await d.waitForRecord(events[2]!.id, (r) => r.status === 'delivered')
  t.same(received.map((r) => r.headers['webhook-id']), [events[0]!.id, ...events.map((e) => e.id)], 'the head again under its id, then the rest')
  t.same(received.map((r) => (JSON.parse(r.body) as { data: { sequence: number } }).data.sequence), [1, 1, 2, 3], 'in sequence order')
  t.equal(received[1]!.body, received[0]!.body, 'the head again with the same body')
  const verifier = new Webhook(secret)
  for (const r of received) t.ok(verifier.verify(r.body, r.headers as Record<string, string>), 'signed')
  t.equal(receiver.peakOpen, 1, 'never two webhooks of the watch in flight at once')
  for (const e of events) t.match(await d.deliveryQueue.store.get(e.id), { status: 'delivered', attempts: [{ statusCode: 200 }] }, 'delivered once, the killed attempt left no record')
  t.equal(receiver.received.length, 4, 'nothing sent twice but the killed head')
  t.equal(await d.redis.exists(d.keys.watchOrderedDeliveries(watch.id)), 0, 'nothing left waiting')
})

t.test('SIGTERM lets a short request finish, returns a hanging one to the queue unspent, and exits 0', async (t) => {
  // The CLI uses the default key prefix, so this test gets a Redis of its own.
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let stopping!: () => void
  const sigtermSent = new Promise<void>((resolve) => { stopping = resolve })
  let hangForever = true
  const receiver = await startReceiver(t, (request) => {
    if (request.path === '/slow') return { status: 200, after: sigtermSent }
    return hangForever ? 'hang' : { status: 200 }
  })
  const dir = mkdtempSync(join(tmpdir(), 'blockhook-sigterm-'))
  const configPath = join(dir, 'blockhook.config.json')
  writeFileSync(configPath, JSON.stringify({ chains: CHAINS }))
  const d = await setupDelivery(t, redis.url, { startWorker: false, redisPrefix: 'blockhook' })
  const slow = await d.createWatch(`${receiver.url}/slow`)
  const hanging = await d.createWatch(`${receiver.url}/hang`)
  const slowEvent = d.event(slow.watch, 1)
  const hangingEvent = d.event(hanging.watch, 1)

  const cli = spawnNode(t, ['--input-type=module', '-e', `import { main } from ${JSON.stringify(CLI)}; await main(['worker'])`], {
    REDIS_URL: redis.url, BLOCKHOOK_CONFIG: configPath, LOG_LEVEL: 'info',
  })
  await waitForOutput(cli.child, /delivery worker started/)
  await d.deliveryQueue.enqueue([slowEvent, hangingEvent])
  await receiver.waitForCount(2)

  cli.child.kill('SIGTERM')
  stopping()
  const [code] = await cli.exited
  t.equal(code, 0, `exit code 0\n${cli.output()}`)

  t.equal((await d.deliveryQueue.store.get(slowEvent.id))?.status, 'delivered', 'the in-flight request that answered was recorded')
  const returned = await d.deliveryQueue.store.get(hangingEvent.id)
  t.match(returned, { status: 'pending', attempts: [] }, 'the hanging one went back unspent')
  const job = await d.deliveryQueue.queues[0]!.getJob(hangingEvent.id)
  t.equal(job?.attemptsMade, 0)
  t.ok(['waiting', 'delayed'].includes(String(await job?.getState())), 'its job is queued again')

  hangForever = false
  d.startWorker()
  await d.waitForRecord(hangingEvent.id, (r) => r.status === 'delivered')
  const ids = receiver.received.filter((r) => r.path === '/hang').map((r) => r.headers['webhook-id'])
  t.same(ids, [hangingEvent.id, hangingEvent.id], 'delivered after the restart under the same webhook-id')
})
