/**
 * When the next attempt of a failed delivery happens (README, "The webhook"): pure, with the clock and
 * the randomness passed in. The schedule's delays get ±20% jitter so a receiver that comes back is
 * not hit by every queued delivery at once; a Retry-After is honoured exactly, without jitter, up
 * to an hour.
 */
import { DeliveryError } from './delivery-error.js'

export const JITTER_FRACTION = 0.2
export const MAX_RETRY_AFTER_MS = 3_600_000

/** Retry-After as delta-seconds or an HTTP date, in ms from `nowMs`, capped; undefined if unreadable. */
export function parseRetryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined
  const text = header.trim()
  let delayMs: number
  if (/^\d+$/.test(text)) {
    delayMs = Number(text) * 1000
  } else {
    const at = Date.parse(text)
    if (Number.isNaN(at)) return undefined
    delayMs = at - nowMs
  }
  return Math.min(Math.max(delayMs, 0), MAX_RETRY_AFTER_MS)
}

export interface RetryInput {
  /** Attempts made so far, the failed one included (1 after the first failure). */
  attemptsMade: number
  retryScheduleMs: readonly number[]
  error: DeliveryError
  /** Uniform in [0, 1), like Math.random. */
  random: () => number
}

/** The delay before the next attempt, or undefined when there is none (not retryable, or spent). */
export function nextRetryDelayMs({ attemptsMade, retryScheduleMs, error, random }: RetryInput): number | undefined {
  if (!error.retryable) return undefined
  const scheduled = retryScheduleMs[attemptsMade - 1]
  if (scheduled === undefined) return undefined
  if (error.retryAfterMs !== undefined) return error.retryAfterMs
  return Math.round(scheduled * (1 + JITTER_FRACTION * (2 * random() - 1)))
}

/** What a received HTTP status means: undefined for a 2xx (delivered), else the classified error. */
export function classifyResponse(statusCode: number, retryAfterHeader: string | undefined, nowMs: number): DeliveryError | undefined {
  if (statusCode >= 200 && statusCode < 300) return undefined
  if (statusCode >= 300 && statusCode < 400) {
    return new DeliveryError('BH_DELIVERY_REDIRECT', `answered ${statusCode}: redirects are not followed`, { retryable: true })
  }
  if (statusCode === 410) {
    return new DeliveryError('BH_DELIVERY_GONE', 'answered 410 Gone: the watch is disabled', { retryable: false })
  }
  const retryAfterMs = statusCode === 429 || statusCode === 503 ? parseRetryAfterMs(retryAfterHeader, nowMs) : undefined
  return new DeliveryError('BH_DELIVERY_STATUS', `answered ${statusCode}`, { retryable: true, retryAfterMs })
}

/** A delivery waiting for its URL's cap checks again after this long, doubling each time, up to the maximum. */
export const OVER_CAP_FIRST_DELAY_MS = 100
export const OVER_CAP_MAX_DELAY_MS = 5_000

/**
 * How long a delivery over its URL's cap waits before it looks again (no attempt spent). Doubling
 * keeps the deliveries queued for a hanging URL from spinning through the queue (and the CPU
 * other URLs need); the jitter (up to as much again) keeps them from returning together.
 */
export function overCapDelayMs(postponements: number, random: () => number): number {
  const base = Math.min(OVER_CAP_MAX_DELAY_MS, OVER_CAP_FIRST_DELAY_MS * 2 ** Math.min(postponements, 16))
  return Math.round(base * (1 + random()))
}
