/**
 * One webhook POST over got: no retries of its own, no redirects, a timeout on the
 * whole exchange, keep-alive agents, and at most 64 KiB of the answer read. The connection goes
 * only to an address the URL policy accepts, chosen in the same lookup that checked it, so a name
 * that re-resolves to a private address after the watch was saved is still refused.
 */
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import type { Readable } from 'node:stream'
import { got, TimeoutError, type ExtendOptions, type Got } from 'got'
import { checkUrlShape, createCheckedLookup, isPublicAddress, type Resolver } from '../domain/url-policy.js'
import { DeliveryError } from './delivery-error.js'
import { classifyResponse } from './retry-policy.js'

export const MAX_RESPONSE_READ_BYTES = 64 * 1024
export const MAX_RESPONSE_STORED_BYTES = 1024
/** URLs whose verdict is kept; past it the set starts again (it only saves parsing). */
const MAX_ACCEPTED_KEPT = 10_000

export interface WebhookPost {
  url: string
  /** The webhook-* headers; content-type and user-agent are added here. */
  headers: Record<string, string>
  body: string
}

export interface PostOutcome {
  /** null when no HTTP answer arrived. */
  statusCode: number | null
  durationMs: number
  /** The start of the answer's body, cut to 1 KiB. */
  response: string | null
  /** undefined when delivered (2xx). */
  error: DeliveryError | undefined
}

export interface WebhookHttpClientOptions {
  timeoutMs: number
  userAgent: string
  allowPrivateUrls: boolean
  /** Name resolution for the URL policy; the system resolver when not given (tests inject one). */
  resolve?: Resolver
  now?: () => number
}

/** Raised when the caller's signal aborts the request (shutdown): not an attempt, not a failure. */
export class PostAbortedError extends Error {
  constructor() {
    super('the request was aborted')
    this.name = 'PostAbortedError'
  }
}

function refused(reason: string): DeliveryError {
  return new DeliveryError('BH_DELIVERY_URL_REFUSED', `the URL ${reason}`, { retryable: false })
}

function classifyRequestError(err: unknown): DeliveryError {
  const code = (err as NodeJS.ErrnoException).code
  if (err instanceof TimeoutError) {
    return new DeliveryError('BH_DELIVERY_TIMEOUT', `no answer within the timeout (${err.event})`, { retryable: true, cause: err })
  }
  if (code === 'BH_URL_PRIVATE') return refused('resolves to a private or reserved address')
  return new DeliveryError('BH_DELIVERY_NETWORK', `${code ?? 'error'}: ${(err as Error).message}`, { retryable: true, cause: err })
}

/** got's options for every webhook POST (exported for the throughput bench's bare got loop). */
export function webhookGotOptions(options: WebhookHttpClientOptions, agents: { http: http.Agent; https: https.Agent }): ExtendOptions {
  return {
    headers: { 'content-type': 'application/json', 'user-agent': options.userAgent },
    timeout: { request: options.timeoutMs },
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    agent: agents,
    dnsLookup: options.allowPrivateUrls ? undefined : createCheckedLookup(options),
  }
}

export class WebhookHttpClient {
  readonly #options: WebhookHttpClientOptions
  readonly #agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  }
  /** Options merged once: got's per-request option merging is a large part of its cost. */
  readonly #got: Got
  readonly #now: () => number
  /** URLs whose shape and literal address passed (names are checked at every connection, by the lookup). */
  readonly #accepted = new Set<string>()

  constructor(options: WebhookHttpClientOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#got = got.extend(webhookGotOptions(options, this.#agents))
  }

  /** Never throws for the receiver's sake (every outcome is a PostOutcome); throws PostAbortedError on abort. */
  async post(request: WebhookPost, signal?: AbortSignal): Promise<PostOutcome> {
    const startedAt = performance.now()
    const elapsed = () => Math.round(performance.now() - startedAt)
    const refusal = this.#refusal(request.url)
    if (refusal) return { statusCode: null, durationMs: 0, response: null, error: refusal }

    const stream = this.#got.stream.post(request.url, { body: request.body, headers: request.headers, signal })
    try {
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        stream.once('response', resolve)
        stream.once('error', reject)
      })
      // The status has arrived and decides the outcome; the body is only kept for the user to read.
      const body = await readBounded(stream, MAX_RESPONSE_READ_BYTES)
      const retryAfter = response.headers['retry-after']
      return {
        statusCode: response.statusCode ?? null,
        durationMs: elapsed(),
        response: body.subarray(0, MAX_RESPONSE_STORED_BYTES).toString('utf8'),
        error: classifyResponse(response.statusCode ?? 0, retryAfter, this.#now()),
      }
    } catch (err) {
      stream.destroy()
      if (signal?.aborted) throw new PostAbortedError()
      return { statusCode: null, durationMs: elapsed(), response: null, error: classifyRequestError(err) }
    }
  }

  /** IP literals never reach the lookup, so they are checked here; a verdict depends on the URL only, so it is kept. */
  #refusal(url: string): DeliveryError | undefined {
    if (this.#accepted.has(url)) return undefined
    const refusal = this.#check(url)
    if (!refusal) {
      if (this.#accepted.size >= MAX_ACCEPTED_KEPT) this.#accepted.clear()
      this.#accepted.add(url)
    }
    return refusal
  }

  #check(url: string): DeliveryError | undefined {
    const shape = checkUrlShape(url)
    if (!shape.ok) return refused(shape.reason)
    const host = shape.url.hostname.replace(/^\[(.*)\]$/, '$1')
    if (!this.#options.allowPrivateUrls && isIP(host) !== 0 && !isPublicAddress(host)) {
      return refused(`points at a private or reserved address (${host})`)
    }
    return undefined
  }

  close(): void {
    this.#agents.http.destroy()
    this.#agents.https.destroy()
  }
}

/**
 * Reads at most `limit` bytes of the body; stopping early destroys the stream (and its socket).
 * A body cut short (an error, the socket closed) reads as empty. Listeners, not `for await`: the
 * async iterator costs a promise and a wrapper per chunk, for a body only the user reads.
 */
function readBounded(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let length = 0
    const finish = (body: Buffer) => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onCut)
      stream.off('close', onCut)
      resolve(body)
    }
    const onEnd = () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    const onCut = () => finish(Buffer.alloc(0))
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= limit) {
        finish(Buffer.concat(chunks).subarray(0, limit))
        stream.destroy()
      }
    }
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('error', onCut)
    stream.once('close', onCut)
  })
}
