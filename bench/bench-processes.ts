/**
 * What the benchmarks that run roles in processes of their own share: a bench file started again
 * as a child with a role, the messages it sends back, the subscriber and worker roles run in such
 * children, the CPU a process or Redis has used, a loopback webhook receiver, blocks mined on
 * anvil, and percentiles.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { RedisClient } from '../src/storage/redis.js'
import { pino } from 'pino'
import type { EvmChain } from '../src/chains/evm/evm-chain.js'
import type { Config } from '../src/config/config.js'
import { ACCOUNTS } from '../test/helpers/contracts.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'

/**
 * Runs the bench file at `benchUrl` (its import.meta.url) in a child process as `role`, with an IPC
 * channel (and `gc()`); `nodeOptions` are added to node's own (`--cpu-prof`, say).
 */
export function forkRole(benchUrl: string, role: string, env: Record<string, string>, nodeOptions: readonly string[] = []): ChildProcess {
  return fork(fileURLToPath(benchUrl), [role], {
    execArgv: ['--expose-gc', '--import', 'tsx', ...nodeOptions],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
}

/** The child's next IPC message; rejects if it exits first. */
export function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => { child.off('exit', onExit); resolve(message as T) }
    const onExit = (code: number | null) => { child.off('message', onMessage); reject(new Error(`child exited with ${code}`)) }
    child.once('message', onMessage)
    child.once('exit', onExit)
  })
}

// --- the subscriber and the delivery worker, each in a child of its own -------------------------

type RoleCommand = { type: 'reached'; block: number } | { type: 'stop' }

/** The subscriber role on an EVM chain (the child's main); answers `reached` once every block up to the one named is queued. */
export async function runSubscriberRole(config: Config, chainId: string): Promise<void> {
  const subscriber = await startSubscriber(config, pino({ level: 'silent' }))
  const runner = subscriber.chains.get(chainId)!
  await runner.whenLeading()
  const chain = runner.driver as EvmChain
  process.on('message', (command: RoleCommand) => {
    if (command.type === 'reached') void chain.follower!.reached(command.block).then(() => process.send!({ reached: command.block }))
    else void subscriber.close().then(() => process.send!({ stopped: true }, () => process.exit(0)))
  })
  process.send!({ ready: true })
}

/** The delivery worker role (the child's main), closed by any message. */
export async function runWorkerRole(config: Config): Promise<void> {
  const worker = await startWorker(config, pino({ level: 'silent' }))
  process.once('message', () => { void worker.close().then(() => process.send!({ stopped: true }, () => process.exit(0))) })
  process.send!({ ready: true })
}

/** Resolves once the subscriber child has queued every block up to `block`. */
export async function subscriberReached(subscriber: ChildProcess, block: number): Promise<void> {
  const answer = nextMessage(subscriber)
  subscriber.send({ type: 'reached', block } satisfies RoleCommand)
  await answer
}

/** Closes a role child and waits for it to say so (it exits right after). */
export async function stopRole(child: ChildProcess): Promise<void> {
  const stopped = nextMessage(child)
  child.send({ type: 'stop' } satisfies RoleCommand)
  await stopped
}

/** utime + stime of a process (all its threads), from /proc (Linux), in ms. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // clock ticks at USER_HZ = 100
}

async function redisCpuInfo(client: RedisClient): Promise<Record<string, string>> {
  return Object.fromEntries((await client.info('cpu')).split('\n').map((line) => line.trim().split(':')))
}

/** CPU of Redis's main thread (where commands and scripts run), from INFO cpu, in ms. */
export async function redisMainThreadCpuMs(client: RedisClient): Promise<number> {
  const info = await redisCpuInfo(client)
  return (Number(info.used_cpu_user_main_thread) + Number(info.used_cpu_sys_main_thread)) * 1000
}

/** CPU of the whole Redis process (every thread), from INFO cpu, in ms. */
export async function redisCpuMs(client: RedisClient): Promise<number> {
  const info = await redisCpuInfo(client)
  return (Number(info.used_cpu_user) + Number(info.used_cpu_sys)) * 1000
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** Epoch ms with sub-ms precision. */
export const now = () => performance.timeOrigin + performance.now()

// --- a loopback webhook receiver answering 200 at once, in a process of its own (so the process
// measured is not slowed by the one receiving) -------------------------------------------------

export interface ReceiverReport {
  count: number
  firstAt: number
  lastAt: number
  /** Request body bytes, all requests counted. */
  bodyBytes: number
  /** [webhook-id, when its 2xx was written (epoch ms, sub-ms)] while recording. */
  answered: [string, number][]
}

type ReceiverCommand = { type: 'expect'; count: number; record: boolean } | { type: 'report' }

/** The receiver's process (a benchmark file runs it for its `receiver` role); it sends `{url}` when listening. */
export async function runReceiverChild(): Promise<void> {
  let report: ReceiverReport = { count: 0, firstAt: 0, lastAt: 0, bodyBytes: 0, answered: [] }
  let expected = Infinity
  let recording = false
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.on('data', (chunk: Buffer) => { report.bodyBytes += chunk.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-length': '0' })
      res.end()
      const at = now()
      if (report.count === 0) report.firstAt = at
      report.lastAt = at
      report.count++
      if (recording) report.answered.push([String(req.headers['webhook-id']), at])
      if (report.count === expected) process.send!({ reached: true })
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.on('message', (command: ReceiverCommand) => {
    if (command.type === 'expect') {
      report = { count: 0, firstAt: 0, lastAt: 0, bodyBytes: 0, answered: [] }
      expected = command.count
      recording = command.record
    } else {
      process.send!(report)
    }
  })
  process.once('disconnect', () => process.exit(0))
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
}

/** Tells the receiver how many requests to expect (counting from now); resolves with its report once they have all arrived. */
export async function receive(receiver: ChildProcess, count: number, record: boolean, during: () => Promise<void>): Promise<ReceiverReport> {
  receiver.send({ type: 'expect', count, record } satisfies ReceiverCommand)
  const reached = nextMessage(receiver)
  await during()
  await reached
  receiver.send({ type: 'report' } satisfies ReceiverCommand)
  return nextMessage<ReceiverReport>(receiver)
}

/** How many requests the receiver answers while `during` runs and `settleMs` after (no count awaited). */
export async function countReceived(receiver: ChildProcess, settleMs: number, during: () => Promise<void>): Promise<number> {
  receiver.send({ type: 'expect', count: -1, record: false } satisfies ReceiverCommand)
  await during()
  await new Promise((resolve) => setTimeout(resolve, settleMs))
  receiver.send({ type: 'report' } satisfies ReceiverCommand)
  return (await nextMessage<ReceiverReport>(receiver)).count
}

/** One transaction of ACCOUNTS[0] to `to` with `data`, and the block holding it, in one JSON-RPC batch. */
export async function sendAndMine(anvilUrl: string, to: string, data: string): Promise<void> {
  const response = await fetch(anvilUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [{ from: ACCOUNTS[0], to, data, gas: '0x4c4b40' }] },
      { jsonrpc: '2.0', id: 2, method: 'evm_mine', params: [] },
    ]),
  })
  const answers = (await response.json()) as { error?: { message: string } }[]
  const failed = answers.find((a) => a.error)
  if (failed) throw new Error(failed.error!.message)
}
