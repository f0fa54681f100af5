/**
 * The floor under the worker's CPU per delivery (issue 16): a bare loop of got POSTs with the
 * worker's got options (webhookGotOptions) and concurrency, bodies of the webhooks' size and
 * headers of their shape, nothing queued, signed or recorded. Run in a child process of its own
 * (`runGotLoopChild`), it reports the CPU it spent per POST, measured after a warm-up.
 */
import http from 'node:http'
import https from 'node:https'
import { got } from 'got'
import { renderWebhookBody } from '../src/delivery/delivery-record.js'
import { webhookGotOptions } from '../src/delivery/http-client.js'
import { webhookHeaders } from '../src/delivery/signing.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import { benchEvent } from './bench-events.js'
import { monotonicUs, type Window } from './cpu-profile.js'

export interface GotLoopParameters {
  /** The receiver's base URL; POSTs go to `${url}/hook/0` … `/hook/${urls - 1}`, lane by lane. */
  url: string
  urls: number
  concurrency: number
  bodyBytes: number
  warmUpPosts: number
  posts: number
  timeoutMs: number
}

export interface GotLoopReport {
  posts: number
  cpuMs: number
  elapsedMs: number
  /** The measured POSTs, in monotonicUs (for reading a CPU profile of this process). */
  window: Window
}

const SECRET = 'whsec_' + Buffer.alloc(32, 5).toString('base64')

/** An evm.log webhook body padded (or cut) to `bytes`, and headers like a signed delivery's. */
function request(n: number, bytes: number): { body: string; headers: Record<string, string> } {
  const event = benchEvent(`wch_gotloop${n}`, n)
  const rendered = renderWebhookBody({ ...event, sequence: n + 1 })
  const body = rendered.length >= bytes ? rendered.slice(0, bytes) : rendered + ' '.repeat(bytes - rendered.length)
  return { body, headers: webhookHeaders({ id: event.id, timestampSec: Math.floor(Date.now() / 1000), body, secrets: [SECRET] }) }
}

export async function runGotLoop(p: GotLoopParameters): Promise<GotLoopReport> {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
  const client = got.extend(webhookGotOptions({ timeoutMs: p.timeoutMs, userAgent: USER_AGENT, allowPrivateUrls: true }, agents))
  // Built before measuring: the worker's bodies are rendered by the subscriber.
  const requests = Array.from({ length: p.concurrency }, (_, lane) => request(lane, p.bodyBytes))
  const run = async (count: number) => {
    let next = 0
    await Promise.all(requests.map(async ({ body, headers }, lane) => {
      while (next++ < count) await client.post(`${p.url}/hook/${lane % p.urls}`, { body, headers })
    }))
  }
  await run(p.warmUpPosts)
  const cpu0 = process.cpuUsage()
  const started = monotonicUs()
  await run(p.posts)
  const ended = monotonicUs()
  const cpu = process.cpuUsage(cpu0)
  agents.http.destroy()
  return { posts: p.posts, cpuMs: (cpu.user + cpu.system) / 1000, elapsedMs: (ended - started) / 1000, window: [started, ended] }
}

/** The child's main: parameters in BENCH_GOT_LOOP (JSON), the report sent back over IPC. */
export async function runGotLoopChild(): Promise<void> {
  const report = await runGotLoop(JSON.parse(process.env.BENCH_GOT_LOOP!) as GotLoopParameters)
  process.send!(report, () => process.exit(0))
}
