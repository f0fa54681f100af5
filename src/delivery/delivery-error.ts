/**
 * Why an attempt failed, classified where it happens: each DeliveryError knows whether
 * another attempt can help and, after a 429/503 with Retry-After, exactly when it may come.
 */
import { BlockhookError } from '../domain/errors.js'

export type DeliveryErrorCode =
  /** A non-2xx answer other than the ones below. */
  | 'BH_DELIVERY_STATUS'
  /** A 3xx: redirects are not followed (README, "The webhook"). */
  | 'BH_DELIVERY_REDIRECT'
  /** 410 Gone: the receiver asks us to stop; the watch is disabled. */
  | 'BH_DELIVERY_GONE'
  | 'BH_DELIVERY_TIMEOUT'
  | 'BH_DELIVERY_NETWORK'
  /** The URL is, or resolves to, an address webhooks may not go to. */
  | 'BH_DELIVERY_URL_REFUSED'
  /** Not sent: blockhook disabled the watch (410, or failing for too long). */
  | 'BH_DELIVERY_WATCH_DISABLED'
  /** Not sent: the worker failed on its side (recorded only when that spent the last attempt). */
  | 'BH_DELIVERY_INTERNAL'

export class DeliveryError extends BlockhookError {
  declare readonly code: DeliveryErrorCode
  readonly retryable: boolean
  /** From Retry-After on a 429 or 503, capped; the next attempt waits exactly this long. */
  readonly retryAfterMs: number | undefined

  constructor(code: DeliveryErrorCode, message: string, options: { retryable: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(code, message, 500, { cause: options.cause })
    this.name = 'DeliveryError'
    this.retryable = options.retryable
    this.retryAfterMs = options.retryAfterMs
  }
}
