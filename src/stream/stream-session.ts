/**
 * One open event stream: pages through the tenant's event log from its cursor until caught up,
 * then takes batches from the process's LiveTail; sends each event of its watches as a text
 * frame, and closes with 1013 once more than `maxBufferedBytes` wait on its socket (the client
 * resumes with the last cursor it got).
 */
import type { WebSocket } from 'ws'
import type { EventLog } from './event-log.js'
import type { LiveTail } from './live-tail.js'
import type { LoggedEvent } from './stream-entry.js'

/** Close codes of the event stream (README "Event stream"). */
export const CLOSE_TRY_AGAIN_LATER = 1013
export const CLOSE_CURSOR_EXPIRED = 4410
export const CLOSE_GOING_AWAY = 1001

const CATCH_UP_PAGE = 500

export interface SessionDeps {
  log: EventLog
  tail: LiveTail
  /** Renders the frames of the events (fetching secrets as needed); undefined for an event it cannot sign (its watch is gone). */
  frames(events: readonly LoggedEvent[]): Promise<(string | undefined)[]>
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
  #cursor: string
  #cancelWait: (() => void) | undefined
  #open = true

  constructor(d: SessionDeps, socket: WebSocket, tenantId: string, connectionId: string, watchIds: readonly string[], cursor: string, nowMs: number) {
    this.#d = d
    this.socket = socket
    this.tenantId = tenantId
    this.connectionId = connectionId
    this.#watchIds = watchIds.length > 0 ? new Set(watchIds) : undefined
    this.#cursor = cursor
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
      let last: string | undefined
      if (!live) {
        const page = await this.#d.log.readAfter(this.tenantId, this.#cursor, CATCH_UP_PAGE)
        events = page.events
        last = page.last
        live = page.raw < CATCH_UP_PAGE
      } else {
        const wait = this.#d.tail.next(this.tenantId, this.#cursor)
        this.#cancelWait = wait.cancel
        const result = await wait.result
        this.#cancelWait = undefined
        if (result === 'closed') return
        if (result === 'behind') {
          live = false
          continue
        }
        events = result
        last = result.at(-1)?.cursor
      }
      if (!this.#open) return
      await this.#send(events)
      if (last) this.#cursor = last
    }
  }

  async #send(events: readonly LoggedEvent[]): Promise<void> {
    const mine = this.#watchIds ? events.filter((e) => this.#watchIds!.has(e.watchId)) : events
    if (mine.length === 0) return
    const frames = await this.#d.frames(mine)
    for (const frame of frames) {
      if (!this.#open) return
      if (frame === undefined) continue
      this.socket.send(frame)
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
