/**
 * What the subscriber hands to delivery (one MatchedEvent per event and watch), the delivery
 * record it becomes, and how both are laid out in Redis (docs/architecture.md, "The delivery
 * record's invariants"). Pure: no I/O.
 *
 * Memory decides the layout (README, "Sizing Redis"): a record is one packed string, not a hash,
 * and the payload is the webhook body itself, rendered once when the event is stored, so every
 * attempt sends the same bytes and no worker renders it again.
 */
import { BlockhookError } from '../domain/errors.js'
import { base32ToBase64url, base64urlToBase32 } from '../domain/ids.js'
import type { EventType } from '../domain/watch-types.js'

export interface MatchedEvent {
  /** The `webhook-id` (`evt_…`), from `webhookId()`: the same event for the same watch, the same id. */
  id: string
  watchId: string
  tenantId: string
  chain: string
  type: EventType
  /** ISO time the event happened (block time), or was first seen when the chain gives none. */
  timestamp: string
  /** The payload's `data` without `watchId`, `chain` and `sequence`, which delivery adds. */
  data: Record<string, unknown>
  /** Unix ms when blockhook first saw the event, for blockhook_event_to_delivery_seconds. */
  firstSeenAt: number
  /** The watch has no url: no delivery record and no webhook, only the event stream carries it. */
  streamOnly?: true
  /** The watch is ordered: its deliveries go one at a time in sequence order. */
  ordered?: true
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled'

export interface DeliveryAttempt {
  at: string
  statusCode: number | null
  durationMs: number
  error: string | null
  /** The receiver's response body, cut to 1 KiB. */
  response?: string
}

/** A record without its payload: what the delivery log lists. */
export interface DeliverySummary {
  id: string
  watchId: string
  tenantId: string
  chain: string
  type: EventType
  status: DeliveryStatus
  sequence: number
  attempts: DeliveryAttempt[]
  nextAttemptAt: string | null
  createdAt: string
  /** Unix ms; once the record is final it is no longer kept, and reads as createdAt. */
  firstSeenAt: number
  block: { number: number; hash: string | null } | null
  eventKey: string | null
  ordered?: true
}

export interface DeliveryRecord extends DeliverySummary, MatchedEvent {
  /** The payload lives apart and expires first: then `body` is null, `data` `{}` and `timestamp` createdAt. */
  payloadExpired: boolean
  /** The webhook body exactly as sent. */
  body: string | null
}

// --- the webhook body ------------------------------------------------------------------------

/**
 * The webhook body `{type, timestamp, data: {watchId, chain, sequence, ...data}}` (README, "The
 * webhook") cut around the sequence number, which the store script assigns: head + sequence +
 * tail is the body.
 */
export function webhookBodyParts(event: Pick<MatchedEvent, 'type' | 'timestamp' | 'watchId' | 'chain' | 'data'>): [head: string, tail: string] {
  const data = withoutDeliveryFields(event.data)
  const head = `{"type":${JSON.stringify(event.type)},"timestamp":${JSON.stringify(event.timestamp)},`
    + `"data":{"watchId":${JSON.stringify(event.watchId)},"chain":${JSON.stringify(event.chain)},"sequence":`
  const rest = JSON.stringify(data)
  return [head, rest === '{}' ? '}}' : `,${rest.slice(1)}}`]
}

export function renderWebhookBody(record: Pick<DeliveryRecord, 'type' | 'timestamp' | 'watchId' | 'chain' | 'sequence' | 'data'>): string {
  const [head, tail] = webhookBodyParts(record)
  return `${head}${record.sequence}${tail}`
}

/**
 * Stored text is compacted: the hex a chain payload is full of, a 32-byte value (`0x` + 64
 * lowercase digits: hashes, topics, ABI words) and a 20-byte one (`0x` + exactly 40: addresses),
 * becomes `~` + its 43 base64url characters or `~.` + its 27, and a `~` already there becomes
 * `~~`, so `expandText` gives back exactly the original (one pass each way, so no token is read
 * twice). A fifth of an evm.log body goes; the bytes sent are the original ones.
 */
export function compactText(text: string): string {
  return text.replace(/~|0x([0-9a-f]{64}|[0-9a-f]{40}(?![0-9a-f]))/g, (_, hex: string | undefined) => {
    if (hex === undefined) return '~~'
    const b64 = Buffer.from(hex, 'hex').toString('base64url')
    return hex.length === 64 ? `~${b64}` : `~.${b64}`
  })
}

export function expandText(text: string): string {
  return text.replace(/~(~|\.[A-Za-z0-9_-]{27}|[A-Za-z0-9_-]{43})/g, (_, token: string) => {
    if (token === '~') return '~'
    return `0x${Buffer.from(token.startsWith('.') ? token.slice(1) : token, 'base64url').toString('hex')}`
  })
}

/** The body as the store script takes it: compacted head and tail (no hex run crosses the cut). */
export function storedBodyParts(event: Pick<MatchedEvent, 'type' | 'timestamp' | 'watchId' | 'chain' | 'data'>): [head: string, tail: string] {
  const [head, tail] = webhookBodyParts(event)
  return [compactText(head), compactText(tail)]
}

/** `timestamp` and `data` (without what delivery adds) back from a body. */
export function payloadOfBody(body: string): { timestamp: string; data: Record<string, unknown> } {
  const parsed = JSON.parse(body) as { timestamp: string; data: Record<string, unknown> }
  return { timestamp: parsed.timestamp, data: withoutDeliveryFields(parsed.data) }
}

/** `data` without `watchId`, `chain` and `sequence`, which delivery adds (copied only when it has them). */
function withoutDeliveryFields(data: Record<string, unknown>): Record<string, unknown> {
  if (!('watchId' in data || 'chain' in data || 'sequence' in data)) return data
  const { watchId: _watchId, chain: _chain, sequence: _sequence, ...rest } = data
  return rest
}

// --- the packed record -----------------------------------------------------------------------

/**
 * A record is one string: fields joined by RECORD_SEPARATOR (a control character that JSON
 * escapes and no id contains), the attempts last, one field each. Positions count from 1 as Lua
 * does; the scripts in src/storage/redis-scripts.ts read and write them by these names. Numbers
 * are base 36. A small hash of the same fields costs about twice as much, and one value over 64
 * bytes turns it into a hashtable, which costs several times more.
 */
export const RECORD_FIELD = {
  status: 1,
  /** The BullMQ job id while pending, when it is not the delivery id (a replay, a manual retry). */
  jobId: 2,
  nextAttemptAt: 3,
  /** Redis's ms when stored: also the ms part of its entry in the tenant's event log. */
  createdAt: 4,
  /** The sequence part of that entry's id; empty once the stored body is no longer that entry's (a replay). */
  logSeq: 5,
  sequence: 6,
  ordered: 7,
  /** createdAt minus firstSeenAt; dropped once final. */
  firstSeenAt: 8,
  watchId: 9,
  tenantId: 10,
  chain: 11,
  type: 12,
  blockNumber: 13,
  blockHash: 14,
  eventKey: 15,
} as const
export const FIRST_ATTEMPT_FIELD = 16
export const RECORD_SEPARATOR = '\x1f'

/** The status is the record's first character. */
export const STATUS_CODE: Readonly<Record<DeliveryStatus, string>> = { pending: 'p', delivered: 'd', failed: 'f', cancelled: 'c' }
const STATUS_OF_CODE = Object.fromEntries(Object.entries(STATUS_CODE).map(([status, code]) => [code, status])) as Record<string, DeliveryStatus>

export function statusOfCode(code: string): DeliveryStatus | undefined {
  return STATUS_OF_CODE[code]
}

const HASH = /^0x[0-9a-f]{64}$/
const BASE32_ID = /^[a-z2-7]{24}$/

/** `wch_`/`ten_` + 24 base32 characters (newId) as base64url of their 15 bytes; any other id after a `!`. */
function compactId(prefix: string, id: string): string {
  if (id.includes(RECORD_SEPARATOR)) throw new BlockhookError('BH_INTERNAL', `an id holds a control character: ${JSON.stringify(id)}`)
  const rest = id.slice(prefix.length)
  return id.startsWith(prefix) && BASE32_ID.test(rest) ? base32ToBase64url(rest) : `!${id}`
}

function idOfCompact(prefix: string, compact: string): string {
  return compact.startsWith('!') ? compact.slice(1) : `${prefix}${base64urlToBase32(compact)}`
}

/** Fields 9 to 15, which only JavaScript writes: what a record keeps of its event besides the body. */
export function staticRecordFields(event: MatchedEvent): string {
  for (const id of [event.chain, event.type]) {
    if (id.includes(RECORD_SEPARATOR)) throw new BlockhookError('BH_INTERNAL', `an id holds a control character: ${JSON.stringify(id)}`)
  }
  const block = event.data.block as { number?: unknown; hash?: unknown } | undefined
  const slot = event.data.slot
  const number = typeof block?.number === 'number' ? block.number : typeof slot === 'number' ? slot : undefined
  const hash = typeof block?.hash === 'string' ? block.hash : undefined
  const eventKey = typeof event.data.eventKey === 'string' ? event.data.eventKey : undefined
  return [
    compactId('wch_', event.watchId), compactId('ten_', event.tenantId), event.chain, event.type,
    number === undefined ? '' : number.toString(36),
    // A 32-byte hash as its 43 base64url characters; anything else as JSON (it starts with `"`).
    hash === undefined ? '' : HASH.test(hash) ? Buffer.from(hash.slice(2), 'hex').toString('base64url') : JSON.stringify(hash),
    // An eventKey starts with its chain: `:` stands for it.
    eventKey === undefined ? '' : eventKey.startsWith(`${event.chain}:`) ? compactText(eventKey.slice(event.chain.length)) : JSON.stringify(eventKey),
  ].join(RECORD_SEPARATOR)
}

/** An attempt as stored, without its time (the store script writes ms since createdAt before it): `statusCode,durationMs[,error[,response]]` in JSON. */
export function storedAttemptTail(attempt: DeliveryAttempt): string {
  const parts: unknown[] = [attempt.statusCode, attempt.durationMs]
  if (attempt.error !== null || attempt.response) parts.push(attempt.error)
  if (attempt.response) parts.push(attempt.response)
  return JSON.stringify(parts).slice(1, -1)
}

function attemptOfStored(field: string, createdAtMs: number): DeliveryAttempt {
  const [atDeltaMs, statusCode, durationMs, error, response] = JSON.parse(`[${field}]`) as [number, number | null, number, (string | null)?, string?]
  return { at: new Date(createdAtMs + atDeltaMs).toISOString(), statusCode, durationMs, error: error ?? null, ...(response ? { response } : {}) }
}

/** A record as read, with what only the store needs: its job id and where its body is in the event log. */
export interface StoredDelivery {
  summary: DeliverySummary
  jobId: string
  /** The tenant's event-log entry holding the same body, if it still may. */
  logEntryId: string | undefined
}

/** Undefined for a value this layout did not write. */
export function decodeRecord(id: string, value: string): StoredDelivery | undefined {
  const f = value.split(RECORD_SEPARATOR)
  const field = (position: number) => f[position - 1]!
  const status = statusOfCode(field(RECORD_FIELD.status))
  if (f.length < FIRST_ATTEMPT_FIELD - 1 || !status) return undefined
  const createdAtMs = parseInt(field(RECORD_FIELD.createdAt), 36)
  const int36 = (position: number) => (field(position) === '' ? undefined : parseInt(field(position), 36))
  const chain = field(RECORD_FIELD.chain)
  const blockNumber = int36(RECORD_FIELD.blockNumber)
  const blockHash = field(RECORD_FIELD.blockHash)
  const eventKey = field(RECORD_FIELD.eventKey)
  const nextAttemptAt = int36(RECORD_FIELD.nextAttemptAt)
  const logSeq = field(RECORD_FIELD.logSeq)
  const summary: DeliverySummary = {
    id,
    watchId: idOfCompact('wch_', field(RECORD_FIELD.watchId)),
    tenantId: idOfCompact('ten_', field(RECORD_FIELD.tenantId)),
    chain,
    type: field(RECORD_FIELD.type) as EventType,
    status,
    sequence: parseInt(field(RECORD_FIELD.sequence), 36),
    attempts: f.slice(FIRST_ATTEMPT_FIELD - 1).map((a) => attemptOfStored(a, createdAtMs)),
    nextAttemptAt: nextAttemptAt === undefined ? null : new Date(nextAttemptAt).toISOString(),
    createdAt: new Date(createdAtMs).toISOString(),
    firstSeenAt: createdAtMs - (int36(RECORD_FIELD.firstSeenAt) ?? 0),
    block: blockNumber === undefined ? null : {
      number: blockNumber,
      hash: blockHash === '' ? null : blockHash.startsWith('"') ? JSON.parse(blockHash) as string : `0x${Buffer.from(blockHash, 'base64url').toString('hex')}`,
    },
    eventKey: eventKey === '' ? null : eventKey.startsWith('"') ? JSON.parse(eventKey) as string : `${chain}${expandText(eventKey)}`,
    ...(field(RECORD_FIELD.ordered) === '1' ? { ordered: true as const } : {}),
  }
  return {
    summary,
    jobId: field(RECORD_FIELD.jobId) || id,
    logEntryId: logSeq === '' ? undefined : `${createdAtMs}-${parseInt(logSeq, 36)}`,
  }
}

/** The full record from its summary and its stored body (null once the payload expired). */
export function recordWithBody(summary: DeliverySummary, storedBody: string | null): DeliveryRecord {
  const body = storedBody === null ? null : expandText(storedBody)
  const payload = body === null ? { timestamp: summary.createdAt, data: {} } : payloadOfBody(body)
  return { ...summary, ...payload, payloadExpired: body === null, body }
}
