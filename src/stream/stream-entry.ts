/**
 * The event stream's pure parts: positions in a tenant's event logs and the cursor a client gets
 * for them, an entry read from a log, and the text frame a client receives (`{cursor, watchId,
 * headers, body}`, see README "Event stream"). The body is the one the delivery store rendered and
 * stored for the webhook, so a forwarded copy is byte for byte what the watch's URL gets, and
 * verifies with the watch's secret.
 *
 * A tenant has one event log per delivery shard (keys.tenantEventLog). A client's position is an
 * entry id per log; its cursor is those ids joined by `.`, in shard order: with one shard a plain
 * stream entry id, as it always was. A plain id is also accepted with several shards, as the same
 * position in every log (the entries logged after that time): that is what a cursor from before
 * the logs were split means. Clients treat cursors as opaque.
 */
import { expandText } from '../delivery/delivery-record.js'
import { webhookHeaders } from '../delivery/signing.js'

const ENTRY_ID = '[0-9]{1,15}-[0-9]{1,15}'
/** The shape of a cursor (the querystring schema); `parseCursor` then wants as many ids as there are shards. */
export const CURSOR_PATTERN = `^${ENTRY_ID}(\\.${ENTRY_ID})*$`
/** Room for 128 shards' ids. */
export const CURSOR_MAX_LENGTH = 128 * 32
const ENTRY = new RegExp(`^${ENTRY_ID}$`)
const SEPARATOR = '.'

/** A Redis stream entry id, `<ms>-<seq>`. */
export interface EntryId {
  ms: number
  seq: number
}

export function parseEntryId(text: string): EntryId | undefined {
  if (!ENTRY.test(text)) return undefined
  const [ms, seq] = text.split('-').map(Number)
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms: ms!, seq: seq! } : undefined
}

/** Negative when entry `a` comes before `b` in a log. Both are ids Redis made or `parseEntryId` accepted. */
export function compareEntryIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number)
  const [bm, bs] = b.split('-').map(Number)
  return am! !== bm! ? am! - bm! : as! - bs!
}

/** A position per shard's log: the id of the last entry a client has had (or passed) in each. */
export type Positions = readonly string[]

/** The positions a cursor names, for `shards` logs; undefined for a cursor this stream cannot have sent. */
export function parseCursor(text: string, shards: number): string[] | undefined {
  const ids = text.split(SEPARATOR)
  if (!ids.every((id) => parseEntryId(id) !== undefined)) return undefined
  if (ids.length === shards) return ids
  return ids.length === 1 ? Array.from({ length: shards }, () => ids[0]!) : undefined
}

export function formatCursor(positions: Positions): string {
  return positions.join(SEPARATOR)
}

/**
 * Whether resuming from `positions` could miss entries already trimmed from logs kept
 * `retentionMs`. The newest position is when the cursor was made: every entry after the other
 * positions was logged after that, or would have been sent before it.
 */
export function cursorExpired(positions: Positions, nowMs: number, retentionMs: number): boolean {
  return Math.max(...positions.map((id) => parseEntryId(id)!.ms)) < nowMs - retentionMs
}

export interface LoggedEvent {
  /** The delivery shard whose log holds it, and its entry id there. */
  shard: number
  entryId: string
  id: string
  watchId: string
  /** The webhook body. */
  body: string
  /** Its signature headers, made once however many connections it is sent to (see signHeaders). */
  headers?: Record<string, string>
  /** The frame when its cursor is its entry id (one shard: the same for every connection), made once. */
  frame?: string
  /** The frame after its cursor (several shards: each connection's cursor is its own), made once. */
  afterCursor?: string
}

/** An XRANGE/XREAD entry as written by the delivery store (id, watchId, body); undefined for a shape it did not write. */
export function parseLoggedEvent(shard: number, entryId: string, fields: readonly string[]): LoggedEvent | undefined {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  if (!f.id || !f.watchId || !f.body) return undefined
  return { shard, entryId, id: f.id, watchId: f.watchId, body: expandText(f.body) }
}

/** The signature headers of one event, signed at `nowMs` with the watch's current secrets. */
export function signHeaders(event: LoggedEvent, secrets: readonly string[], nowMs: number): Record<string, string> {
  return webhookHeaders({ id: event.id, timestampSec: Math.floor(nowMs / 1000), body: event.body, secrets })
}

/** The text frame of an event sent with `cursor`, `{"cursor","watchId","headers","body"}`; what can be shared is made once. */
export function frameOf(event: LoggedEvent, headers: Record<string, string>, cursor: string): string {
  // One string from JSON.stringify: a concatenation would be flattened again by every send.
  if (cursor === event.entryId) return (event.frame ??= JSON.stringify({ cursor, watchId: event.watchId, headers, body: event.body }))
  event.afterCursor ??= JSON.stringify({ watchId: event.watchId, headers, body: event.body }).slice(1)
  return `{"cursor":${JSON.stringify(cursor)},${event.afterCursor}`
}
