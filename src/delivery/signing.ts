/**
 * Standard Webhooks signing (README, "Verifying webhooks"): a pure function of the id, the timestamp, the
 * exact body bytes and the watch's active secrets, so every attempt of a delivery and every test
 * vector signs the same way. Receivers verify it with the `standardwebhooks` libraries unchanged.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'

export const SECRET_PREFIX = 'whsec_'

export interface WebhookToSign {
  /** The `webhook-id` header. */
  id: string
  /** The `webhook-timestamp` header: Unix seconds. */
  timestampSec: number
  /** The body exactly as it is sent. */
  body: string
  /** The current secret first, then one rotated out but still in its grace period. */
  secrets: readonly string[]
}

/** Secrets whose imported key is kept; past it the cache starts again (it only saves decoding). */
const MAX_KEYS_KEPT = 10_000
const keys = new Map<string, KeyObject>()

/** The secret's HMAC key, decoded and imported once per secret rather than once per webhook. */
function secretKey(secret: string): KeyObject {
  let key = keys.get(secret)
  if (!key) {
    const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret
    if (keys.size >= MAX_KEYS_KEPT) keys.clear()
    key = createSecretKey(Buffer.from(encoded, 'base64'))
    keys.set(secret, key)
  }
  return key
}

/** The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>` per secret, space-separated. */
export function signWebhook({ id, timestampSec, body, secrets }: WebhookToSign): string {
  // The signed content is `${id}.${timestampSec}.${body}`, fed in parts so the body is not copied.
  const prefix = `${id}.${timestampSec}.`
  let signature = ''
  for (const secret of secrets) {
    const digest = createHmac('sha256', secretKey(secret)).update(prefix, 'utf8').update(body, 'utf8').digest('base64')
    signature += signature === '' ? `v1,${digest}` : ` v1,${digest}`
  }
  return signature
}

/** The Standard Webhooks headers of one attempt. */
export function webhookHeaders(webhook: WebhookToSign): Record<string, string> {
  return {
    'webhook-id': webhook.id,
    'webhook-timestamp': String(webhook.timestampSec),
    'webhook-signature': signWebhook(webhook),
  }
}
