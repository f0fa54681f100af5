/**
 * Every error the API answers with is the body `{statusCode, error, code, message}` of README, "API tour".
 * Fastify's own errors (validation, body parsing) are given stable `BH_` codes here, so clients
 * branch on one vocabulary; their readable messages (`body/url must match format "uri"`) stay.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError } from 'fastify'
import { BlockhookError, type ErrorCode } from '../domain/errors.js'
import { isOutOfMemory, redisOutOfMemory } from '../storage/redis-memory.js'

export interface ErrorBody {
  statusCode: number
  error: string
  code: ErrorCode
  message: string
}

/** An error that tells the client when to come back (429, 503): rendered as `Retry-After`. */
export class RetryLaterError extends BlockhookError {
  readonly retryAfterSec: number

  constructor(code: ErrorCode, message: string, statusCode: number, retryAfterSec: number) {
    super(code, message, statusCode)
    this.name = 'RetryLaterError'
    this.retryAfterSec = retryAfterSec
  }
}

export function errorBody(statusCode: number, code: ErrorCode, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message }
}

const FASTIFY_CODES: Record<string, { statusCode: number; code: ErrorCode; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { statusCode: 413, code: 'BH_BODY_TOO_LARGE', message: 'request body is larger than 1 MiB' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { statusCode: 415, code: 'BH_UNSUPPORTED_MEDIA_TYPE', message: 'content-type must be application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { statusCode: 400, code: 'BH_INVALID_BODY' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { statusCode: 400, code: 'BH_INVALID_JSON', message: 'body is empty but content-type is application/json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { statusCode: 400, code: 'BH_INVALID_JSON' },
}

/** The body for any thrown value; anything unexpected is a 500 whose details stay in the log. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof BlockhookError) return errorBody(err.statusCode, err.code, err.message)
  if (isOutOfMemory(err)) {
    const refused = redisOutOfMemory(err as Error)
    return errorBody(refused.statusCode, refused.code, refused.message)
  }
  const fastifyError = err as Partial<FastifyError> & { status?: number }
  if (fastifyError.validation) return errorBody(400, 'BH_VALIDATION', fastifyError.message ?? 'invalid request')
  const known = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined
  if (known) return errorBody(known.statusCode, known.code, known.message ?? fastifyError.message ?? '')
  // The JSON parser's SyntaxError arrives as a plain 400.
  if (err instanceof SyntaxError) return errorBody(400, 'BH_INVALID_JSON', `body is not valid JSON: ${err.message}`)
  const status = fastifyError.statusCode ?? fastifyError.status
  if (status && status >= 400 && status < 500) {
    // A plugin's own code (FST_…) is not one clients branch on; its message says what was wrong.
    return errorBody(status, 'BH_BAD_REQUEST', fastifyError.message ?? 'bad request')
  }
  return errorBody(500, 'BH_INTERNAL', 'internal server error')
}

/**
 * Requests Node's HTTP parser refuses never reach Fastify's error handler (headers over the size
 * limit, a NUL byte in a header, a bad Content-Length): they get the same error body here, written
 * to the socket, which is then closed (the parser cannot go on reading it).
 */
export function writeClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const body = err.code === 'HPE_HEADER_OVERFLOW'
    ? errorBody(431, 'BH_HEADERS_TOO_LARGE', 'request line and headers are larger than 16 KiB')
    : errorBody(400, 'BH_BAD_REQUEST', `malformed HTTP request (${(err.code ?? 'parse error').slice(0, 64)})`)
  const text = JSON.stringify(body)
  socket.end(
    `HTTP/1.1 ${body.statusCode} ${body.error}\r\ncontent-type: application/json; charset=utf-8\r\n`
    + `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  )
}
