/**
 * The soak's webhook receiver: one path per watch, every request verified with the
 * `standardwebhooks` package under that watch's secret (a request that does not verify is
 * counted and refused with 400), and answered by a keyed draw on (seed, webhook-id, how many
 * times this id came): mostly 200, sometimes 500, a hang past the delivery timeout, or a reset
 * connection. `goDown()` stops listening for a while, so deliveries meet a refused connection.
 * Only requests answered 2xx count as received; each is kept with its arrival time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { Webhook } from 'standardwebhooks'
import { keyedDraw } from './random.js'

export interface Receipt {
  path: string
  id: string
  /** Date.now() when the request arrived. */
  at: number
  body: { type: string; data: Record<string, unknown> }
}

export type Answer = 'ok' | 'error' | 'hang' | 'reset'

/** The chance of each answer other than 200; the rest is 200. */
export const FAILURE_RATES: Readonly<Record<Exclude<Answer, 'ok'>, number>> = { error: 0.06, hang: 0.03, reset: 0.03 }

export function answerFor(seed: number, id: string, attempt: number): Answer {
  let x = keyedDraw(seed, `${id}#${attempt}`)
  for (const answer of ['error', 'hang', 'reset'] as const) {
    x -= FAILURE_RATES[answer]
    if (x < 0) return answer
  }
  return 'ok'
}

const MAX_BODY_BYTES = 1024 * 1024
/** A hung request is dropped after this, if the client has not given up first. */
const HANG_LIMIT_MS = 60_000

export interface SoakReceiver {
  readonly url: string
  trust(path: string, secret: string, options?: { faults: boolean }): void
  readonly received: Receipt[]
  readonly counts: Record<Answer | 'unverified', number>
  /** Stops listening for `ms` (connections are refused), then listens again on the same port. */
  goDown(ms: number): Promise<void>
  close(): Promise<void>
}

export async function startReceiver(seed: number): Promise<SoakReceiver> {
  const secrets = new Map<string, { webhook: Webhook; faults: boolean }>()
  const attempts = new Map<string, number>()
  const received: Receipt[] = []
  const counts: SoakReceiver['counts'] = { ok: 0, error: 0, hang: 0, reset: 0, unverified: 0 }
  const sockets = new Set<Socket>()

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const path = (req.url ?? '').split('?')[0]!
    const trusted = secrets.get(path)
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    }
    let body: Receipt['body']
    try {
      if (!trusted) throw new Error(`unknown path ${path}`)
      body = trusted.webhook.verify(raw, headers) as Receipt['body']
    } catch {
      counts.unverified++
      res.writeHead(400).end('unverified')
      return
    }
    const id = headers['webhook-id']
    const attempt = (attempts.get(id) ?? 0) + 1
    attempts.set(id, attempt)
    const answer = trusted.faults ? answerFor(seed, id, attempt) : 'ok'
    counts[answer]++
    if (answer === 'ok') {
      received.push({ path, id, at: Date.now(), body })
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    } else if (answer === 'error') {
      res.writeHead(500).end('induced failure')
    } else if (answer === 'reset') {
      req.socket.destroy()
    } else {
      const timer = setTimeout(() => req.socket.destroy(), HANG_LIMIT_MS)
      req.socket.once('close', () => clearTimeout(timer))
    }
  }

  const listen = async (port: number): Promise<Server> => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      let size = 0
      req.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_BODY_BYTES) req.socket.destroy()
        else chunks.push(chunk)
      })
      req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')))
    })
    server.on('connection', (socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    return server
  }

  let server = await listen(0)
  const { port } = server.address() as { port: number }
  let closed = false

  const stop = () => {
    server.close()
    for (const socket of sockets) socket.destroy()
  }

  return {
    url: `http://127.0.0.1:${port}`,
    received,
    counts,
    trust(path, secret, options = { faults: true }) {
      secrets.set(path, { webhook: new Webhook(secret), faults: options.faults })
    },
    async goDown(ms) {
      stop()
      await new Promise((resolve) => setTimeout(resolve, ms))
      if (!closed) server = await listen(port)
    },
    async close() {
      closed = true
      stop()
    },
  }
}
