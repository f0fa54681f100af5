/**
 * Per-watch delivery counts by minute, for the dashboard's chart and GET /watches/:id/stats/minutes
 * (README, "Dashboard"): pure layout and arithmetic; the delivery store writes the increments in
 * the script that records an attempt, and delivery-minutes-store.ts reads the buckets.
 *
 * One Redis hash per watch and minute (`keys.watchMinute`), written only in minutes with an
 * attempt, expiring `MINUTE_RETENTION_MS` after its last write. Fields: `d` attempts delivered,
 * `f` attempts failed (retried or final), `l` the sum of event-to-delivery latencies (ms) of the
 * minute's deliveries, and `h<i>` how many of those fell into `LATENCY_BOUNDS_MS[i]` (the last
 * index counts those above every bound). Field names are short because there is one hash per
 * busy watch-minute.
 */

export const MINUTE_MS = 60_000
/**
 * How far back the buckets reach; GET /watches/:id/stats/minutes asks for at most this many
 * minutes. A bucket costs about 230 bytes of Redis (measured, key and expiry included), so a watch
 * with attempts in every minute holds at most ~83 KB; six hours is the chart's longest window.
 */
export const MAX_MINUTES = 6 * 60
export const MINUTE_RETENTION_MS = MAX_MINUTES * MINUTE_MS + MINUTE_MS

/**
 * Upper bounds (ms) of the latency histogram: those of blockhook_event_to_delivery_seconds, so the
 * chart's p95 and Prometheus' agree.
 */
export const LATENCY_BOUNDS_MS = [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000] as const

export type AttemptResult = 'delivered' | 'failed'

/** The [field, increment] pairs one attempt adds to its minute; `latencyMs` only for a first-time delivery. */
export function minuteIncrements(result: AttemptResult, latencyMs: number | undefined): [string, number][] {
  if (result === 'failed') return [['f', 1]]
  const increments: [string, number][] = [['d', 1]]
  if (latencyMs !== undefined) {
    const ms = Math.max(0, Math.round(latencyMs))
    const bucket = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound)
    increments.push(['l', ms], [`h${bucket === -1 ? LATENCY_BOUNDS_MS.length : bucket}`, 1])
  }
  return increments
}

export interface MinuteLatency {
  /** Deliveries whose latency was measured (a replay or a manual retry re-sends an old event: not counted). */
  count: number
  meanMs: number
  p50Ms: number
  p95Ms: number
}

export interface DeliveryMinute {
  /** ISO start of the minute. */
  minute: string
  delivered: number
  failed: number
  latency: MinuteLatency | null
}

/** The minute that holds `ms`, as its index since the epoch. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS)
}

function count(value: string | undefined): number {
  const n = Number(value ?? 0)
  return Number.isSafeInteger(n) && n > 0 ? n : 0
}

/**
 * The quantile `q` of a histogram, interpolated linearly within the bucket it falls in (as
 * Prometheus' histogram_quantile does); the open last bucket answers its lower bound.
 */
export function histogramQuantile(counts: readonly number[], q: number): number {
  const total = counts.reduce((sum, n) => sum + n, 0)
  if (total === 0) return 0
  const rank = q * total
  let below = 0
  for (const [i, n] of counts.entries()) {
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!
      const upper = LATENCY_BOUNDS_MS[i]
      if (upper === undefined) return lower
      return Math.round(lower + ((upper - lower) * (rank - below)) / n)
    }
    below += n
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!
}

/** One minute's bucket (HGETALL, `{}` when the minute had no attempt) as the API shows it. */
export function summarizeMinute(minute: number, hash: Readonly<Record<string, string>>): DeliveryMinute {
  const histogram = Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, (_, i) => count(hash[`h${i}`]))
  const measured = histogram.reduce((sum, n) => sum + n, 0)
  return {
    minute: new Date(minute * MINUTE_MS).toISOString(),
    delivered: count(hash.d),
    failed: count(hash.f),
    latency: measured === 0 ? null : {
      count: measured,
      meanMs: Math.round(count(hash.l) / measured),
      p50Ms: histogramQuantile(histogram, 0.5),
      p95Ms: histogramQuantile(histogram, 0.95),
    },
  }
}
