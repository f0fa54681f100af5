/**
 * Errors that callers branch on carry a stable `code` (fastify's createError style) and,
 * where they reach HTTP, a status code. The API error handler renders them as the error body of README, "API tour".
 */
export class BlockhookError extends Error {
  readonly code: string
  readonly statusCode: number

  constructor(code: string, message: string, statusCode = 500, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BlockhookError'
    this.code = code
    this.statusCode = statusCode
  }
}

export const badRequest = (code: string, message: string) => new BlockhookError(code, message, 400)
export const notFound = (what: string) => new BlockhookError('BH_NOT_FOUND', `${what} not found`, 404)
export const unauthorized = () =>
  new BlockhookError('BH_UNAUTHORIZED', 'missing or invalid bearer token', 401)

/** Whether `err` is a blockhook error with this code: the one way callers branch on a code. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof BlockhookError && err.code === code
}
