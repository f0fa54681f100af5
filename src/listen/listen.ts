/**
 * `blockhook listen --forward-to URL`: opens the event stream and POSTs each event's body with its
 * signed headers to a local receiver, one line printed per event. A dropped connection (or a
 * laptop waking from sleep: the server's pings stop being answered and it drops us, or our own
 * check sees no ping) is reopened with `after=<last cursor>`, so nothing is missed or repeated; a
 * receiver that fails is reported on its line and the stream goes on.
 */
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'

export interface ListenOptions {
  api: string
  key: string
  forwardTo: string
  watches: string[]
  /** Event types to forward; empty forwards every type. */
  events: string[]
}

const USAGE = 'usage: blockhook listen --forward-to URL [--api URL] [--key bhk_…] [--watch wch_…]… [--events type,type]'
const RECONNECT_MAX_MS = 10_000
/** The server pings every 15 s: silence for longer means the connection is dead (e.g. after a sleep). */
const SILENCE_MS = 40_000
const FORWARD_TIMEOUT_MS = 10_000

export function parseListenArgs(argv: readonly string[], env: Record<string, string | undefined>): ListenOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'forward-to': { type: 'string' },
      api: { type: 'string' },
      key: { type: 'string' },
      watch: { type: 'string', multiple: true },
      events: { type: 'string' },
    },
    strict: true,
  })
  const api = values.api ?? env.BLOCKHOOK_API_URL ?? 'http://127.0.0.1:3000'
  const key = values.key ?? env.BLOCKHOOK_API_KEY
  const forwardTo = values['forward-to']
  if (!forwardTo || !key) throw new Error(`${!forwardTo ? '--forward-to' : '--key (or BLOCKHOOK_API_KEY)'} is required\n${USAGE}`)
  for (const [name, url] of [['--api', api], ['--forward-to', forwardTo]] as const) {
    if (!/^https?:\/\//.test(url)) throw new Error(`${name} must be an http(s) URL, got "${url}"`)
  }
  return {
    api, key, forwardTo, watches: values.watch ?? [],
    events: (values.events ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
  }
}

export function streamUrl(options: ListenOptions, after: string | undefined): string {
  const url = new URL('/events/stream', options.api.replace(/^http/, 'ws'))
  for (const watch of options.watches) url.searchParams.append('watch', watch)
  if (after) url.searchParams.set('after', after)
  return url.toString()
}

interface StreamMessage { cursor: string; watchId: string; headers: Record<string, string>; body: string }

function isStreamMessage(value: unknown): value is StreamMessage {
  const m = value as Partial<StreamMessage> | null
  return !!m && typeof m.cursor === 'string' && typeof m.body === 'string' && typeof m.headers === 'object' && m.headers !== null
}

/** One printed line: time, type, webhook-id, local status (or the failure), duration. */
export function eventLine(at: Date, type: string, webhookId: string, outcome: string, durationMs: number): string {
  return `${at.toISOString()}  ${type.padEnd(24)} ${webhookId}  ${outcome.padEnd(12)} ${durationMs} ms`
}

export class Listener {
  readonly #o: ListenOptions
  readonly #print: (line: string) => void
  #cursor: string | undefined
  #socket: WebSocket | undefined
  #stopped = false
  #failures = 0
  /** Forwarding one event at a time keeps the receiver's order the stream's. */
  #queue: Promise<void> = Promise.resolve()
  #retry: NodeJS.Timeout | undefined

  constructor(options: ListenOptions, print: (line: string) => void) {
    this.#o = options
    this.#print = print
  }

  start(): void {
    this.#print(`Forwarding events from ${this.#o.api} to ${this.#o.forwardTo} (Ctrl-C to stop)`)
    this.#connect()
  }

  #connect(): void {
    if (this.#stopped) return
    const socket = new WebSocket(streamUrl(this.#o, this.#cursor), { headers: { authorization: `Bearer ${this.#o.key}` } })
    this.#socket = socket
    let silence: NodeJS.Timeout | undefined
    const alive = () => {
      clearTimeout(silence)
      silence = setTimeout(() => socket.terminate(), SILENCE_MS)
    }
    socket.on('open', () => {
      this.#failures = 0
      alive()
      this.#print(this.#cursor ? `Reconnected, resuming after ${this.#cursor}` : 'Connected; waiting for events')
    })
    socket.on('ping', alive)
    socket.on('message', (data) => {
      alive()
      let message: unknown
      try {
        message = JSON.parse(data.toString())
      } catch {
        message = undefined
      }
      if (!isStreamMessage(message)) {
        this.#print('skipped a message that is not an event')
        return
      }
      this.#queue = this.#queue.then(() => this.#forward(message))
    })
    socket.on('unexpected-response', (_request, response) => {
      this.#print(`the API refused the stream: HTTP ${response.statusCode}`)
      // A wrong key or a watch that is not ours will not fix itself.
      if (response.statusCode === 401 || response.statusCode === 403 || response.statusCode === 404 || response.statusCode === 400) {
        this.#stopped = true
        process.exitCode = 1
        socket.terminate()
      } else {
        socket.terminate()
      }
    })
    socket.on('error', (err) => {
      if (!this.#stopped) this.#print(`stream error: ${err.message}`)
    })
    socket.on('close', (code, reason) => {
      clearTimeout(silence)
      if (this.#stopped) return
      if (code === 4410) {
        this.#print(`the cursor expired (${reason.toString()}); starting from now`)
        this.#cursor = undefined
      }
      const delayMs = Math.min(RECONNECT_MAX_MS, 250 * 2 ** this.#failures++)
      this.#print(`disconnected (${code}${reason.length > 0 ? `: ${reason.toString()}` : ''}); reconnecting in ${delayMs} ms`)
      // Wait for the forwards under way, so the cursor resumed from is the last one forwarded.
      this.#retry = setTimeout(() => { void this.#queue.then(() => this.#connect()) }, delayMs)
    })
  }

  async #forward(message: StreamMessage): Promise<void> {
    if (this.#stopped) return
    let type = 'unknown'
    try {
      type = String((JSON.parse(message.body) as { type?: unknown }).type)
    } catch {
      type = 'unknown'
    }
    if (this.#o.events.length > 0 && !this.#o.events.includes(type)) {
      this.#cursor = message.cursor
      return
    }
    const started = Date.now()
    let outcome: string
    try {
      const response = await fetch(this.#o.forwardTo, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...message.headers },
        body: message.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
      })
      await response.arrayBuffer()
      outcome = response.ok ? String(response.status) : `${response.status} failed`
    } catch (err) {
      outcome = `failed: ${(err as Error).message}`
    }
    // The event was handed on either way: the local receiver's failure is shown, not retried.
    this.#cursor = message.cursor
    this.#print(eventLine(new Date(), type, message.headers['webhook-id'] ?? '?', outcome, Date.now() - started))
  }

  /** Ctrl-C: close the stream after the forward under way. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#retry)
    this.#socket?.close(1000)
    await this.#queue
  }
}

/** The `listen` command: runs until SIGINT/SIGTERM, then exits 0. */
export async function runListen(argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  let options: ListenOptions
  try {
    options = parseListenArgs(argv, env)
  } catch (err) {
    process.stderr.write(`blockhook listen: ${(err as Error).message}\n`)
    process.exit(2)
  }
  const listener = new Listener(options, (line) => process.stdout.write(`${line}\n`))
  listener.start()
  const stop = () => {
    void listener.stop().then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
