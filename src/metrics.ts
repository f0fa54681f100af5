/**
 * Every Prometheus metric (README, "Operations"), in one registry per process. Roles may run in separate
 * processes while only the api serves /metrics, so each process publishes its registry to Redis
 * (`MetricsPublisher`) and the api sums every live snapshot with prom-client's AggregatorRegistry.
 * In `blockhook all` the roles share one Metrics, so one snapshot covers them.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import { mgetPerSlot, scanEachServer, type RedisClient } from './storage/redis.js'
import { randomBytes } from 'node:crypto'
import { LATENCY_BOUNDS_MS } from './delivery/delivery-minutes.js'

export function createMetrics() {
  const registry = new Registry()
  const m = {
    registry,
    eventsMatched: new Counter({
      name: 'blockhook_events_matched_total', help: 'Events matched to a watch and queued for delivery',
      labelNames: ['chain', 'type'] as const, registers: [registry],
    }),
    deliveries: new Counter({
      name: 'blockhook_deliveries_total', help: 'Delivery attempts by outcome',
      labelNames: ['outcome'] as const, registers: [registry],
    }),
    deliveryDuration: new Histogram({
      name: 'blockhook_delivery_duration_seconds', help: 'Duration of one webhook POST',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry],
    }),
    eventToDelivery: new Histogram({
      name: 'blockhook_event_to_delivery_seconds', help: 'From the first sight of an event to its 2xx',
      // the dashboard's per-minute histogram has the same bounds, so its p95 and this one agree
      buckets: LATENCY_BOUNDS_MS.map((ms) => ms / 1000), registers: [registry],
    }),
    chainHead: new Gauge({
      name: 'blockhook_chain_head', help: 'Latest head (block number or slot) seen per chain',
      // a leader and its standby both see the head: summing them across processes would double it
      labelNames: ['chain'] as const, aggregator: 'max', registers: [registry],
    }),
    wsReconnects: new Counter({
      name: 'blockhook_ws_reconnects_total', help: 'WebSocket reconnects per chain',
      labelNames: ['chain'] as const, registers: [registry],
    }),
    streamConnections: new Gauge({
      name: 'blockhook_stream_connections', help: 'Open event stream (GET /events/stream) connections',
      registers: [registry],
    }),
    redisUsedMemory: new Gauge({
      name: 'blockhook_redis_used_memory_bytes', help: 'Redis used_memory, read when /metrics is served',
      // one Redis, seen by every process: the latest reading, not a sum
      aggregator: 'max', registers: [registry],
    }),
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>

const SNAPSHOT_TTL_SEC = 30
const PUBLISH_INTERVAL_MS = 5_000

/** Writes this process's metrics to Redis every few seconds, under a key that expires when it dies. */
export class MetricsPublisher {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #metrics: Metrics
  #timer: NodeJS.Timeout | undefined

  constructor(redis: RedisClient, keyPrefix: string, metrics: Metrics) {
    this.#redis = redis
    this.#key = `${keyPrefix}:metrics:${randomBytes(6).toString('hex')}`
    this.#metrics = metrics
  }

  start(onError: (err: unknown) => void): void {
    const publish = () => this.publish().catch(onError)
    publish()
    this.#timer = setInterval(publish, PUBLISH_INTERVAL_MS)
    this.#timer.unref()
  }

  async publish(): Promise<void> {
    const snapshot = await this.#metrics.registry.getMetricsAsJSON()
    await this.#redis.set(this.#key, JSON.stringify(snapshot), 'EX', SNAPSHOT_TTL_SEC)
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#redis.del(this.#key)
  }
}

type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[]

/** Prometheus text of every live process's snapshot, summed. The caller publishes its own first. */
export async function aggregatedMetricsText(redis: RedisClient, keyPrefix: string): Promise<{ text: string; contentType: string }> {
  const keys: string[] = []
  await scanEachServer(redis, `${keyPrefix}:metrics:*`, 100, async (found) => { keys.push(...found) })
  const snapshots = keys.length > 0 ? await mgetPerSlot(redis, keys) : []
  const merged = AggregatorRegistry.aggregate(
    snapshots.filter((s): s is string => s !== null).map((s) => JSON.parse(s) as MetricsSnapshot),
  )
  return { text: await merged.metrics(), contentType: merged.contentType }
}
