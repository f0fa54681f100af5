/**
 * POST /watches/:id/test: one `webhook.test` event (data: watchId and chain only, README, "The webhook") sent
 * now, signed like every webhook, outside the queue, its result returned to the caller. It is
 * not a delivery: nothing is stored and nothing is retried.
 */
import { randomUUID } from 'node:crypto'
import { webhookId } from '../domain/ids.js'
import type { Watch } from '../domain/watch-types.js'
import type { WebhookHttpClient } from './http-client.js'
import { webhookHeaders } from './signing.js'

export interface TestSendResult {
  delivered: boolean
  statusCode: number | null
  durationMs: number
  error: string | null
}

export async function sendTestWebhook(
  client: WebhookHttpClient,
  watch: Pick<Watch, 'id' | 'chain'> & { url: string },
  secrets: readonly string[],
  nowMs = Date.now(),
): Promise<TestSendResult> {
  const id = webhookId(watch.id, ['webhook.test', randomUUID()])
  const body = JSON.stringify({ type: 'webhook.test', timestamp: new Date(nowMs).toISOString(), data: { watchId: watch.id, chain: watch.chain } })
  const outcome = await client.post({ url: watch.url, headers: webhookHeaders({ id, timestampSec: Math.floor(nowMs / 1000), body, secrets }), body })
  return {
    delivered: outcome.error === undefined,
    statusCode: outcome.statusCode,
    durationMs: outcome.durationMs,
    error: outcome.error ? `${outcome.error.code}: ${outcome.error.message}` : null,
  }
}
