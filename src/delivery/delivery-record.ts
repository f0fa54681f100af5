/**
 * What the subscriber hands to delivery: one MatchedEvent per (event, watch). It is stored once
 * as a delivery record under its `webhook-id`; the queue job carries only that id.
 */
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

export interface DeliveryRecord extends MatchedEvent {
  /** The payload (`timestamp`, `data`) lives apart and expires first: then `data` is `{}`. */
  payloadExpired: boolean
  block: { number: number; hash: string | null } | null
  eventKey: string | null
  sequence: number
  status: DeliveryStatus
  attempts: DeliveryAttempt[]
  nextAttemptAt: string | null
  createdAt: string
}

/**
 * The webhook body, rendered the same way on every attempt so the signed bytes never change:
 * `{type, timestamp, data: {watchId, chain, sequence, ...data}}` (README, "The webhook").
 */
export function renderWebhookBody(record: Pick<DeliveryRecord, 'type' | 'timestamp' | 'watchId' | 'chain' | 'sequence' | 'data'>): string {
  return JSON.stringify({
    type: record.type,
    timestamp: record.timestamp,
    data: { watchId: record.watchId, chain: record.chain, sequence: record.sequence, ...record.data },
  })
}

/**
 * Redis keeps a small hash in its compact listpack encoding only while every value is at most
 * 64 bytes (hash-max-listpack-value), and a hashtable-encoded one costs several times more. So
 * 32-byte hex values (`0x` + 64 digits: block and transaction hashes) are kept as `~` + base64url
 * (44 characters), and attempts as arrays, not objects.
 */
export function compactHex(text: string): string {
  return text.replace(/0x([0-9a-f]{64})/g, (_, hex: string) => `~${Buffer.from(hex, 'hex').toString('base64url')}`)
}

export function expandHex(text: string): string {
  return text.replace(/~([A-Za-z0-9_-]{43})/g, (_, b64: string) => `0x${Buffer.from(b64, 'base64url').toString('hex')}`)
}

/** An attempt as stored: [at ms, statusCode, durationMs, error?, response?]. */
type StoredAttempt = [number, number | null, number, (string | null)?, string?]

export function attemptJson(attempt: DeliveryAttempt): string {
  const stored: StoredAttempt = [Date.parse(attempt.at), attempt.statusCode, attempt.durationMs]
  if (attempt.error !== null || attempt.response) stored.push(attempt.error)
  if (attempt.response) stored.push(attempt.response)
  return JSON.stringify(stored)
}

function attemptFromStored(stored: StoredAttempt): DeliveryAttempt {
  const [at, statusCode, durationMs, error, response] = stored
  return { at: new Date(at).toISOString(), statusCode, durationMs, error: error ?? null, ...(response ? { response } : {}) }
}

/** What a record keeps of an event besides the payload: its block and eventKey, when it has them. */
export function eventLocation(data: Record<string, unknown>): { blockNumber: string; blockHash: string; eventKey: string } {
  const block = data.block as { number?: unknown; hash?: unknown } | undefined
  const slot = data.slot
  const number = typeof block?.number === 'number' ? block.number : typeof slot === 'number' ? slot : undefined
  return {
    blockNumber: number === undefined ? '' : String(number),
    blockHash: typeof block?.hash === 'string' ? compactHex(block.hash) : '',
    eventKey: typeof data.eventKey === 'string' ? compactHex(data.eventKey) : '',
  }
}

/** The payload key's value: what the webhook body holds besides the record's fields. */
export function payloadJson(event: Pick<MatchedEvent, 'timestamp' | 'data'>): string {
  return JSON.stringify({ timestamp: event.timestamp, data: event.data })
}

/**
 * A record from its Redis hash and its payload key's value (null once the payload expired).
 * Scalars are stored as they are, attempts as JSON.
 */
export function recordFromHash(hash: Record<string, string>, payload: string | null): DeliveryRecord | undefined {
  if (!hash.id) return undefined
  const stored = payload === null ? undefined : (JSON.parse(payload) as { timestamp: string; data: Record<string, unknown> })
  return {
    id: hash.id,
    watchId: hash.watchId!,
    tenantId: hash.tenantId!,
    chain: hash.chain!,
    type: hash.type as EventType,
    timestamp: stored?.timestamp ?? hash.createdAt!,
    data: stored?.data ?? {},
    payloadExpired: stored === undefined,
    block: hash.blockNumber ? { number: Number(hash.blockNumber), hash: hash.blockHash ? expandHex(hash.blockHash) : null } : null,
    eventKey: hash.eventKey ? expandHex(hash.eventKey) : null,
    firstSeenAt: Number(hash.firstSeenAt),
    sequence: Number(hash.sequence),
    status: hash.status as DeliveryStatus,
    attempts: (JSON.parse(hash.attempts ?? '[]') as StoredAttempt[]).map(attemptFromStored),
    nextAttemptAt: hash.nextAttemptAt || null,
    createdAt: hash.createdAt!,
    ...(hash.ordered === '1' ? { ordered: true as const } : {}),
  }
}
