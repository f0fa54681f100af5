/**
 * A WebSocket client of GET /events/stream as a user's program would be: `ws`, the messages kept
 * in order, and promises for "n messages received", the close code and an upgrade refused.
 */
import { WebSocket, type ClientOptions } from 'ws'

export interface StreamMessage {
  cursor: string
  watchId: string
  headers: Record<string, string>
  body: string
}

export class StreamClient {
  readonly ws: WebSocket
  readonly messages: StreamMessage[] = []
  readonly opened: Promise<void>
  readonly closed: Promise<{ code: number; reason: string }>
  /** Resolves with the HTTP status when the server refuses the upgrade. */
  readonly refused: Promise<number>
  pings = 0
  readonly #waiters = new Set<() => void>()

  constructor(url: string, options: ClientOptions & { protocols?: string[] } = {}) {
    const { protocols, ...rest } = options
    this.ws = new WebSocket(url, protocols ?? [], rest)
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('error', reject)
    })
    // With this listener ws emits no 'error' for a refused upgrade, so `opened` is rejected here.
    this.refused = new Promise((resolve) => this.ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      this.ws.emit('error', new Error(`upgrade refused: ${res.statusCode}`))
    }))
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    this.opened.catch(() => {})
    // Errors after the first (a terminate in teardown) are seen through `closed`.
    this.ws.on('error', () => {})
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as StreamMessage)
      for (const wake of this.#waiters) wake()
    })
    this.ws.on('ping', () => {
      this.pings++
      for (const wake of this.#waiters) wake()
    })
  }

  /** Resolves once `done()` holds, checked after every message and ping. */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return
        this.#waiters.delete(check)
        resolve()
      }
      this.#waiters.add(check)
    })
  }

  received(count: number): Promise<void> {
    return this.until(() => this.messages.length >= count)
  }

  close(): Promise<unknown> {
    this.ws.close()
    return this.closed
  }
}
