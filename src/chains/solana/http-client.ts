/**
 * JSON-RPC over the chain's `http` endpoints, for gap recovery: every call has a timeout and a
 * cap on the bytes it reads, is never retried by itself, and moves on to the next endpoint when
 * one fails (the way the socket fails over between `ws` endpoints).
 */
import type { Logger } from 'pino'
import { hasCode } from '../../domain/errors.js'
import { redactUrl } from '../../domain/redact.js'
import { RpcError } from '../rpc-socket.js'
import { parseSolanaJson } from './json.js'

export interface SolanaRpc {
  /** `signal` ends the call early (shutdown); it then rejects with BH_RPC_ABORTED. */
  call<T>(method: string, params: readonly unknown[], signal?: AbortSignal): Promise<T>
}

export interface SolanaHttpOptions {
  endpoints: readonly string[]
  logger: Logger
  timeoutMs?: number
  maxResponseBytes?: number
}

const DEFAULT_TIMEOUT_MS = 10_000
/** getTransaction with many instructions, or a page of 1,000 signatures, stays far below this. */
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024

async function readBounded(response: Response, maxBytes: number, method: string): Promise<string> {
  const reader = response.body?.getReader()
  if (!reader) return ''
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel()
      throw new RpcError('BH_RPC_TOO_LARGE', `${method}: response larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export class SolanaHttpClient implements SolanaRpc {
  readonly #endpoints: readonly string[]
  readonly #log: Logger
  readonly #timeoutMs: number
  readonly #maxResponseBytes: number
  #current = 0
  #nextId = 1

  constructor(options: SolanaHttpOptions) {
    if (options.endpoints.length === 0) throw new RpcError('BH_RPC_NO_ENDPOINT', 'no http endpoint')
    this.#endpoints = options.endpoints
    this.#log = options.logger
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  }

  /** Tries each endpoint once, starting with the last one that answered. */
  async call<T>(method: string, params: readonly unknown[], signal?: AbortSignal): Promise<T> {
    let lastError: unknown
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const url = this.#endpoints[this.#current]!
      try {
        return await this.#post<T>(url, method, params, signal)
      } catch (err) {
        // A JSON-RPC error is the node's answer, not a broken endpoint: another would say the same.
        if (hasCode(err, 'BH_RPC_ERROR') || hasCode(err, 'BH_RPC_ABORTED')) throw err
        lastError = err
        this.#log.warn({ endpoint: redactUrl(url), method, err: { message: (err as Error).message } }, 'http endpoint failed')
        this.#current = (this.#current + 1) % this.#endpoints.length
      }
    }
    throw lastError
  }

  async #post<T>(url: string, method: string, params: readonly unknown[], signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) throw new RpcError('BH_RPC_ABORTED', `${method}: aborted`)
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.#nextId++, method, params }),
        redirect: 'error',
        signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
      })
    } catch (err) {
      if (signal?.aborted) throw new RpcError('BH_RPC_ABORTED', `${method}: aborted`)
      const timedOut = (err as Error).name === 'TimeoutError'
      throw new RpcError(timedOut ? 'BH_RPC_TIMEOUT' : 'BH_RPC_HTTP',
        `${method}: ${timedOut ? `no answer within ${this.#timeoutMs} ms` : 'request failed'}`)
    }
    const text = await readBounded(response, this.#maxResponseBytes, method)
    if (!response.ok) throw new RpcError('BH_RPC_HTTP', `${method}: HTTP ${response.status}`)
    let body: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } }
    try {
      body = parseSolanaJson(text) as typeof body
    } catch {
      throw new RpcError('BH_RPC_BAD_RESPONSE', `${method}: answer is not JSON`)
    }
    if (body?.error) {
      const { code, message, data } = body.error
      throw new RpcError('BH_RPC_ERROR', `${method}: ${typeof message === 'string' ? message.slice(0, 500) : 'error'}`,
        typeof code === 'number' ? code : undefined, data)
    }
    if (!body || !('result' in body)) throw new RpcError('BH_RPC_BAD_RESPONSE', `${method}: answer has no result`)
    return body.result as T
  }
}
