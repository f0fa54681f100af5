/**
 * One open event stream: pages through the tenant's event logs from its positions until caught
 * up, then takes batches from the process's LiveTail; sends each event of its watches as a text
 * frame whose cursor is its positions just after that event (so resuming from any frame's cursor
 * gives exactly what came after it), and closes with 1013 once more than `maxBufferedBytes` wait
 * on its socket (the client resumes with the last cursor it got).
 */
import type { WebSocket } from 'ws'
import type { EventLog } from './event-log.js'
import type { LiveTail } from './live-tail.js'
import { formatCursor, frameOf, type LoggedEvent, type Positions } from './stream-entry.js'

/** Close codes of the event stream (README "Event stream"). */
export const CLOSE_TRY_AGAIN_LATER = 1013
export const CLOSE_CURSOR_EXPIRED = 4410
export const CLOSE_GOING_AWAY = 1001

const CATCH_UP_PAGE = 500

export interface SessionDeps {
  log: EventLog
  tail: LiveTail
  /** Each event's signature headers (fetching secrets as needed); undefined for one it cannot sign (its watch is gone). */
  sign(events: readonly LoggedEvent[]): Promise<(Record<string, string> | undefined)[]>
  maxBufferedBytes: number
}

export class StreamSession {
  readonly tenantId: string
  readonly connectionId: string
  readonly socket: WebSocket
  /** When the client last answered a ping (or connected). */
  lastPongAt: number
  readonly #d: SessionDeps
  readonly #watchIds: ReadonlySet<string> | undefined
  readonly #positions: string[]
  #cancelWait: (() => void) | undefined
  #open = true

  constructor(d: SessionDeps, socket: WebSocket, tenantId: string, connectionId: string, watchIds: readonly string[], positions: Positions, nowMs: number) {
    this.#d = d
    this.socket = socket
    this.tenantId = tenantId
    this.connectionId = connectionId
    this.#watchIds = watchIds.length > 0 ? new Set(watchIds) : undefined
    this.#positions = [...positions]
    this.lastPongAt = nowMs
  }

  get open(): boolean {
    return this.#open
  }

  /** Runs until the socket closes; resolves then (errors reach the caller, which closes the socket). */
  async run(): Promise<void> {
    let live = false
    while (this.#open) {
      let events: readonly LoggedEvent[]
      let passed: Positions | undefined
      if (!live) {
        const page = await this.#d.log.readAfter(this.tenantId, this.#positions, CATCH_UP_PAGE)
        events = page.events
        passed = page.positions
        live = page.caughtUp
      } else {
        const wait = this.#d.tail.next(this.tenantId, this.#positions)
        this.#cancelWait = wait.cancel
        const result = await wait.result
        this.#cancelWait = undefined
        if (result === 'closed') return
        if (result === 'behind') {
          live = false
          continue
        }
        events = result.events
      }
      if (!this.#open) return
      await this.#send(events)
      // Past the page's end too: entries of other watches, or none the store wrote, after the last sent.
      if (passed) this.#positions.splice(0, passed.length, ...passed)
    }
  }

  /** Sends the events of its watches, each with its cursor; the positions move past every event, sent or not. */
  async #send(events: readonly LoggedEvent[]): Promise<void> {
    const mine = this.#watchIds ? events.filter((e) => this.#watchIds!.has(e.watchId)) : events
    const signed = mine.length > 0 ? await this.#d.sign(mine) : []
    let next = 0
    for (const event of events) {
      if (!this.#open) return
      this.#positions[event.shard] = event.entryId
      if (mine[next] !== event) continue
      const headers = signed[next++]
      if (headers === undefined) continue
      this.socket.send(frameOf(event, headers, formatCursor(this.#positions)))
      if (this.socket.bufferedAmount > this.#d.maxBufferedBytes) {
        this.close(CLOSE_TRY_AGAIN_LATER, 'too far behind: reconnect with after=<the last cursor received>')
        return
      }
    }
  }

  /** Stops the session (idempotent); closes the socket with `code` unless it is already closing. */
  close(code?: number, reason?: string): void {
    if (!this.#open) return
    this.#open = false
    this.#cancelWait?.()
    if (code !== undefined && this.socket.readyState === this.socket.OPEN) this.socket.close(code, reason)
  }
}
