/**
 * Standard Webhooks signing (README, "Verifying webhooks"): a pure function of the id, the timestamp, the
 * exact body bytes and the watch's active secrets, so every attempt of a delivery and every test
 * vector signs the same way. Receivers verify it with the `standardwebhooks` libraries unchanged.
 */
import { createHmac } from 'node:crypto'

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

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret
  return Buffer.from(encoded, 'base64')
}

/** The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>` per secret, space-separated. */
export function signWebhook({ id, timestampSec, body, secrets }: WebhookToSign): string {
  const signed = `${id}.${timestampSec}.${body}`
  return secrets
    .map((secret) => `v1,${createHmac('sha256', secretKey(secret)).update(signed, 'utf8').digest('base64')}`)
    .join(' ')
}

/** The Standard Webhooks headers of one attempt. */
export function webhookHeaders(webhook: WebhookToSign): Record<string, string> {
  return {
    'webhook-id': webhook.id,
    'webhook-timestamp': String(webhook.timestampSec),
    'webhook-signature': signWebhook(webhook),
  }
}
