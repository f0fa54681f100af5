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

/** Redis hash fields of a record: scalars as they are, objects as JSON. */
export function recordFromHash(hash: Record<string, string>): DeliveryRecord | undefined {
  if (!hash.id) return undefined
  return {
    id: hash.id,
    watchId: hash.watchId!,
    tenantId: hash.tenantId!,
    chain: hash.chain!,
    type: hash.type as EventType,
    timestamp: hash.timestamp!,
    data: JSON.parse(hash.data!) as Record<string, unknown>,
    firstSeenAt: Number(hash.firstSeenAt),
    sequence: Number(hash.sequence),
    status: hash.status as DeliveryStatus,
    attempts: JSON.parse(hash.attempts ?? '[]') as DeliveryAttempt[],
    nextAttemptAt: hash.nextAttemptAt || null,
    createdAt: hash.createdAt!,
  }
}
