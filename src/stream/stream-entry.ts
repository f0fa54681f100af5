/**
 * The event stream's pure parts: stream-entry ids as cursors, an entry read from a tenant's event
 * log, and the text frame a client receives (`{cursor, watchId, headers, body}`, see README
 * "Event stream"). The body is the one the delivery store rendered and stored for the webhook, so
 * a forwarded copy is byte for byte what the watch's URL gets, and verifies with the watch's secret.
 */
import { expandText } from '../delivery/delivery-record.js'
import { webhookHeaders } from '../delivery/signing.js'

/** A cursor is a Redis stream entry id, `<ms>-<seq>`; clients treat it as opaque. */
export const CURSOR_PATTERN = '^[0-9]{1,15}-[0-9]{1,15}$'
const CURSOR = new RegExp(CURSOR_PATTERN)

export interface Cursor {
  ms: number
  seq: number
}

export function parseCursor(text: string): Cursor | undefined {
  if (!CURSOR.test(text)) return undefined
  const [ms, seq] = text.split('-').map(Number)
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms: ms!, seq: seq! } : undefined
}

/** Negative when `a` comes before `b` in the log. Both are ids Redis made or `parseCursor` accepted. */
export function compareCursors(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number)
  const [bm, bs] = b.split('-').map(Number)
  return am! !== bm! ? am! - bm! : as! - bs!
}

/** Whether resuming after `cursor` could miss entries already trimmed from a log kept `retentionMs`. */
export function cursorExpired(cursor: Cursor, nowMs: number, retentionMs: number): boolean {
  return cursor.ms < nowMs - retentionMs
}

export interface LoggedEvent {
  /** The stream entry id: the cursor of the message that carries it. */
  cursor: string
  id: string
  watchId: string
  /** The webhook body. */
  body: string
  /** The frame, rendered once and shared by every connection it is sent to. */
  frame?: string
}

/** An XRANGE/XREAD entry as written by the delivery store (id, watchId, body); undefined for a shape it did not write. */
export function parseLoggedEvent(cursor: string, fields: readonly string[]): LoggedEvent | undefined {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  if (!f.id || !f.watchId || !f.body) return undefined
  return { cursor, id: f.id, watchId: f.watchId, body: expandText(f.body) }
}

/** The text frame of one event, signed at `nowMs` with the watch's current secrets. */
export function renderFrame(event: LoggedEvent, secrets: readonly string[], nowMs: number): string {
  const headers = webhookHeaders({ id: event.id, timestampSec: Math.floor(nowMs / 1000), body: event.body, secrets })
  return JSON.stringify({ cursor: event.cursor, watchId: event.watchId, headers, body: event.body })
}
