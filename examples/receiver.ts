/**
 * A webhook receiver as a blockhook user would write one: Fastify, every request verified with
 * the Standard Webhooks library over the raw body, duplicates recognised by `webhook-id`, each
 * event printed.
 *
 *   npx tsx examples/receiver.ts [--port 4000] [--host 127.0.0.1]
 *
 * Where the secrets come from (either or both):
 * - `WEBHOOK_SECRETS`: the watches' `whsec_…` secrets, separated by spaces or commas;
 * - `BLOCKHOOK_API_URL` + `BLOCKHOOK_API_KEY`: the receiver asks blockhook for the secret of the
 *   watch an event names (`GET /watches/:id/secret`), so every watch of the tenant verifies
 *   without copying secrets around. The watch id in an unverified body only selects which secret
 *   to try: a forged body still fails verification.
 */
import Fastify from 'fastify'
import { parseArgs } from 'node:util'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '4000' },
    host: { type: 'string', default: '127.0.0.1' },
  },
})

const staticSecrets = (process.env.WEBHOOK_SECRETS ?? '').split(/[\s,]+/).filter(Boolean)
const apiUrl = process.env.BLOCKHOOK_API_URL?.replace(/\/+$/, '')
const apiKey = process.env.BLOCKHOOK_API_KEY
if (staticSecrets.length === 0 && !(apiUrl && apiKey)) {
  process.stderr.write('receiver: set WEBHOOK_SECRETS, or BLOCKHOOK_API_URL and BLOCKHOOK_API_KEY\n')
  process.exit(1)
}

/** Remembered ids, bounded: a receiver that keeps the ids it has seen gets every event once. */
const SEEN_LIMIT = 10_000
const seen = new Set<string>()
const API_TIMEOUT_MS = 5_000
const fetchedSecrets = new Map<string, string>()

async function secretOf(watchId: string, refresh: boolean): Promise<string | undefined> {
  if (!apiUrl || !apiKey || !/^wch_[a-z0-9]+$/.test(watchId)) return undefined
  if (!refresh && fetchedSecrets.has(watchId)) return fetchedSecrets.get(watchId)
  const response = await fetch(`${apiUrl}/watches/${watchId}/secret`, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: AbortSignal.timeout(API_TIMEOUT_MS),
  })
  if (!response.ok) return undefined
  const { secret } = (await response.json()) as { secret: string }
  fetchedSecrets.set(watchId, secret)
  return secret
}

function verifiesWith(secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers)
    return true
  } catch (err) {
    if (err instanceof WebhookVerificationError) return false
    throw err
  }
}

/** True when one of the known secrets signed this body; a fetched secret is re-read once (rotation). */
async function verify(body: string, headers: Record<string, string>): Promise<boolean> {
  if (staticSecrets.some((secret) => verifiesWith(secret, body, headers))) return true
  let watchId: string
  try {
    watchId = String((JSON.parse(body) as { data?: { watchId?: unknown } }).data?.watchId ?? '')
  } catch {
    return false
  }
  for (const refresh of [false, true]) {
    const secret = await secretOf(watchId, refresh)
    if (secret && verifiesWith(secret, body, headers)) return true
  }
  return false
}

interface WebhookEvent {
  type: string
  timestamp: string
  data: Record<string, unknown> & { watchId: string; chain: string; sequence?: number }
}

function summary(event: WebhookEvent): string {
  const d = event.data as Record<string, any>
  switch (event.type) {
    case 'evm.log':
    case 'evm.log.removed':
      return d.decoded ? `${d.decoded.name} ${JSON.stringify(d.decoded.args)}` : `log ${d.log?.address} #${d.log?.logIndex}`
    case 'evm.activity':
    case 'evm.activity.removed':
      return `${d.activity?.category} ${d.activity?.from} → ${d.activity?.to} value ${d.activity?.value ?? d.activity?.tokenId}`
    case 'evm.transaction':
    case 'evm.transaction.removed':
      return `tx ${d.transaction?.hash} ${d.receipt?.status ?? ''}`
    case 'evm.block':
      return `block ${d.header?.number}`
    default:
      return ''
  }
}

const app = Fastify({ logger: false, bodyLimit: 5 * 1024 * 1024 })
// The signature covers the exact bytes sent: keep the body as a string, parse only after verifying.
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body))

app.post('/*', async (request, reply) => {
  const body = typeof request.body === 'string' ? request.body : ''
  const headers = request.headers as Record<string, string>
  if (!(await verify(body, headers))) {
    process.stdout.write(`✗ rejected a request to ${request.url}: signature does not verify\n`)
    return reply.code(401).send({ error: 'invalid signature' })
  }
  const id = headers['webhook-id']!
  if (seen.has(id)) {
    process.stdout.write(`= ${id} again (already handled)\n`)
    return reply.code(204).send()
  }
  seen.add(id)
  if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value!)

  const event = JSON.parse(body) as WebhookEvent
  const block = (event.data.block as { number?: number } | undefined)?.number
  process.stdout.write(
    `✓ ${event.type.padEnd(24)} ${id}  seq ${event.data.sequence ?? '-'}` +
    `${block === undefined ? '' : `  block ${block}`}  ${summary(event)}\n`,
  )
  return reply.code(204).send()
})

const address = await app.listen({ port: Number(args.port), host: args.host })
process.stdout.write(`receiver listening on ${address}, verifying with ${
  staticSecrets.length > 0 ? `${staticSecrets.length} secret(s)` : ''}${
  staticSecrets.length > 0 && apiUrl ? ' and ' : ''}${apiUrl ? `secrets read from ${apiUrl}` : ''}\n`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)))
}
