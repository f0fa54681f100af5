import { createHash, randomBytes } from 'node:crypto'
import { base32nopad } from '@scure/base'

/** Random, URL-safe, lowercase: `ten_…`, `wch_…`, `rpl_…`. */
export function newId(prefix: 'ten' | 'wch' | 'rpl'): string {
  return `${prefix}_${base32nopad.encode(randomBytes(15)).toLowerCase()}`
}

export function newApiKey(): string {
  return `bhk_${randomBytes(24).toString('base64url')}`
}

/** Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

export const API_KEY_PREFIX_LENGTH = 12

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * The `webhook-id` of an event for a watch (README, "The webhook"): a hash of the watch and of the parts that
 * name the event on its chain (for EVM: chain, block hash, transaction, log index, type), so the
 * same event gets the same id in every process, on every retry, restart and replay.
 */
export function webhookId(watchId: string, eventParts: readonly (string | number)[]): string {
  const digest = createHash('sha256').update([watchId, ...eventParts].join('\u0000')).digest()
  return `evt_${base32nopad.encode(digest.subarray(0, 20)).toLowerCase()}`
}

const WEBHOOK_ID = /^evt_[a-z2-7]{32}$/

/** The lowercase base32 of an id (newId, webhookId) as base64url of the same bytes, and back. */
export function base32ToBase64url(text: string): string {
  return Buffer.from(base32nopad.decode(text.toUpperCase())).toString('base64url')
}

export function base64urlToBase32(text: string): string {
  return base32nopad.encode(Buffer.from(text, 'base64url')).toLowerCase()
}

/**
 * A `webhook-id` in 27 characters (base64url of its 20 bytes) instead of 36, for the keys and
 * log entries every delivery record has; undefined for a string `webhookId()` cannot return.
 */
export function compactWebhookId(id: string): string | undefined {
  return WEBHOOK_ID.test(id) ? base32ToBase64url(id.slice(4)) : undefined
}

export function webhookIdFromCompact(compact: string): string {
  return `evt_${base64urlToBase32(compact)}`
}
