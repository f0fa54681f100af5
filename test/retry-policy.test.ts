import t from 'tap'
import { DeliveryError } from '../src/delivery/delivery-error.js'
import {
  classifyResponse, MAX_RETRY_AFTER_MS, nextRetryDelayMs, OVER_CAP_MAX_DELAY_MS, overCapDelayMs, parseRetryAfterMs,
} from '../src/delivery/retry-policy.js'

const schedule = [5_000, 300_000, 1_800_000]
const failed = new DeliveryError('BH_DELIVERY_STATUS', 'answered 500', { retryable: true })
const now = Date.parse('2026-01-01T00:00:00.000Z')

t.test('the schedule is followed with ±20% jitter from the injected randomness', async (t) => {
  t.equal(nextRetryDelayMs({ attemptsMade: 1, retryScheduleMs: schedule, error: failed, random: () => 0.5 }), 5_000)
  t.equal(nextRetryDelayMs({ attemptsMade: 1, retryScheduleMs: schedule, error: failed, random: () => 0 }), 4_000)
  t.equal(nextRetryDelayMs({ attemptsMade: 2, retryScheduleMs: schedule, error: failed, random: () => 0.75 }), 330_000)
  t.equal(nextRetryDelayMs({ attemptsMade: 3, retryScheduleMs: schedule, error: failed, random: () => 0.25 }), 1_620_000)
})

t.test('after the last scheduled delay the attempts are spent', async (t) => {
  t.equal(nextRetryDelayMs({ attemptsMade: 4, retryScheduleMs: schedule, error: failed, random: Math.random }), undefined)
  t.equal(nextRetryDelayMs({ attemptsMade: 1, retryScheduleMs: [], error: failed, random: Math.random }), undefined)
})

t.test('Retry-After on 429 and 503 is honoured exactly, without jitter, capped at an hour', async (t) => {
  for (const status of [429, 503]) {
    const error = classifyResponse(status, '2', now)!
    t.equal(error.retryAfterMs, 2_000)
    t.equal(nextRetryDelayMs({ attemptsMade: 1, retryScheduleMs: schedule, error, random: () => 0 }), 2_000)
  }
  const dated = classifyResponse(503, new Date(now + 90_000).toUTCString(), now)!
  t.equal(nextRetryDelayMs({ attemptsMade: 2, retryScheduleMs: schedule, error: dated, random: () => 0 }), 90_000)
  t.equal(parseRetryAfterMs('86400', now), MAX_RETRY_AFTER_MS)
  t.equal(parseRetryAfterMs(new Date(now - 5_000).toUTCString(), now), 0, 'a date in the past means now')
  t.equal(parseRetryAfterMs('soon', now), undefined)
  t.equal(classifyResponse(500, '2', now)!.retryAfterMs, undefined, 'only 429 and 503 carry Retry-After')
  const spent = classifyResponse(429, '2', now)!
  t.equal(nextRetryDelayMs({ attemptsMade: 4, retryScheduleMs: schedule, error: spent, random: () => 0 }), undefined,
    'Retry-After does not add attempts')
})

t.test('responses are classified: 2xx delivered, 3xx a retryable failure, 410 final', async (t) => {
  t.equal(classifyResponse(200, undefined, now), undefined)
  t.equal(classifyResponse(204, undefined, now), undefined)
  const redirect = classifyResponse(302, undefined, now)!
  t.match(redirect, { code: 'BH_DELIVERY_REDIRECT', retryable: true })
  const gone = classifyResponse(410, undefined, now)!
  t.match(gone, { code: 'BH_DELIVERY_GONE', retryable: false })
  t.equal(nextRetryDelayMs({ attemptsMade: 1, retryScheduleMs: schedule, error: gone, random: Math.random }), undefined)
  t.match(classifyResponse(500, undefined, now), { code: 'BH_DELIVERY_STATUS', retryable: true })
})

t.test('a delivery over its URL cap waits longer each time it finds the URL full, up to a bound', async (t) => {
  t.same([0, 1, 2, 3].map((n) => overCapDelayMs(n, () => 0)), [100, 200, 400, 800])
  t.equal(overCapDelayMs(0, () => 0.5), 150, 'jitter adds up to as much again')
  t.equal(overCapDelayMs(40, () => 0), OVER_CAP_MAX_DELAY_MS)
  t.equal(overCapDelayMs(1000, () => 0.999), Math.round(OVER_CAP_MAX_DELAY_MS * 1.999))
})
