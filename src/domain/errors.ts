import type { ErrorCode } from './error-codes.js'

export type { ErrorCode }

/**
 * Errors that callers branch on carry a stable `code` from the one list (error-codes.ts) and,
 * where they reach HTTP, a status code. The API error handler renders them as the error body of README, "API tour".
 */
export class BlockhookError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number

  constructor(code: ErrorCode, message: string, statusCode = 500, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BlockhookError'
    this.code = code
    this.statusCode = statusCode
  }
}

export const badRequest = (code: ErrorCode, message: string) => new BlockhookError(code, message, 400)
export const unauthorized = () =>
  new BlockhookError('BH_UNAUTHORIZED', 'missing or invalid bearer token', 401)

/** Whether `err` is a blockhook error with this code: the one way callers branch on a code. */
export function hasCode(err: unknown, code: ErrorCode): err is BlockhookError {
  return err instanceof BlockhookError && err.code === code
}
