/**
 * `blockhook dev`'s own webhook receiver: verifies every request with the Standard Webhooks
 * reference library against the secrets of the watch it names, and prints one line per webhook,
 * so the terminal running dev shows verified webhooks without a receiver of one's own.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import type { WatchStore } from '../storage/watch-store.js'

const MAX_BODY_BYTES = 5 * 1024 * 1024
const REQUEST_TIMEOUT_MS = 10_000
/** Ids remembered to mark repeats; the oldest are forgotten first. */
const SEEN_LIMIT = 10_000

export interface Inbox {
  url: string
  /** Resolves with the first verified webhook of `watchId` (already received, or the next). */
  firstFrom(watchId: string): Promise<void>
  close(): Promise<void>
}

type Json = Record<string, unknown>

const field = (value: unknown, key: string): unknown =>
  value !== null && typeof value === 'object' ? (value as Json)[key] : undefined

/** One line about a verified webhook (pure; the shapes are those of README, "The webhook"). */
export function describeWebhook(id: string, event: unknown): string {
  const type = String(field(event, 'type'))
  const data = field(event, 'data')
  const block = field(field(data, 'block'), 'number')
  const activity = field(data, 'activity')
  const decoded = field(data, 'decoded')
  const detail =
    activity ? `${field(activity, 'category')} ${field(activity, 'from')} → ${field(activity, 'to')} ${field(activity, 'value') ?? field(activity, 'tokenId')}`
    : decoded ? `${field(decoded, 'name')} ${JSON.stringify(field(decoded, 'args'))}`
    : field(data, 'transaction') ? `tx ${field(field(data, 'transaction'), 'hash')} ${field(field(data, 'receipt'), 'status') ?? ''}`
    : ''
  return [`✓ verified ${type}`, id, `watch ${field(data, 'watchId')}`, block === undefined ? '' : `block ${block}`, detail]
    .filter(Boolean).join('  ')
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function verifies(secrets: readonly string[], body: string, headers: Record<string, string>): boolean {
  return secrets.some((secret) => {
    try {
      new Webhook(secret).verify(body, headers)
      return true
    } catch (err) {
      if (err instanceof WebhookVerificationError) return false
      throw err
    }
  })
}

export async function startInbox(watches: WatchStore, write: (text: string) => void): Promise<Inbox> {
  const seen = new Set<string>()
  const verifiedWatches = new Set<string>()
  const waiters = new Map<string, Array<() => void>>()

  async function handle(request: IncomingMessage): Promise<number> {
    if (request.method !== 'POST') return 405
    const body = await readBody(request)
    if (body === undefined) return 413
    let event: unknown
    try {
      event = JSON.parse(body)
    } catch {
      write(`✗ inbox: a request to ${request.url} whose body is not JSON\n`)
      return 400
    }
    // The unverified watch id only picks the secrets to try: a forged body still fails below.
    const watchId = String(field(field(event, 'data'), 'watchId') ?? '')
    const secrets = watchId ? await watches.signingSecrets(watchId).catch(() => []) : []
    const headers = request.headers as Record<string, string>
    if (!verifies(secrets, body, headers)) {
      write(`✗ inbox: a request to ${request.url} whose signature does not verify\n`)
      return 401
    }
    const id = headers['webhook-id']!
    if (seen.has(id)) {
      write(`= ${id} again (a retry or replay of a webhook already received)\n`)
      return 204
    }
    seen.add(id)
    if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value!)
    write(`${describeWebhook(id, event)}\n`)
    verifiedWatches.add(watchId)
    for (const wake of waiters.get(watchId) ?? []) wake()
    waiters.delete(watchId)
    return 204
  }

  const server = createServer((request, response) => {
    handle(request).then(
      (status) => response.writeHead(status).end(),
      (err: unknown) => {
        write(`✗ inbox: ${(err as Error).message}\n`)
        response.writeHead(500).end()
      },
    )
  })
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }

  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    firstFrom: (watchId) => verifiedWatches.has(watchId)
      ? Promise.resolve()
      : new Promise((resolve) => waiters.set(watchId, [...(waiters.get(watchId) ?? []), resolve])),
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
