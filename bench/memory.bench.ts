/**
 * Redis memory per delivered event (issue 11): `used_memory` before and after 20,000 deliveries
 * to 10 watches, evm.log-sized events with ids as blockhook makes them, for
 *   - the layout before issue 11, written by a small copy of its store script (old-delivery-layout.ts),
 *   - the current layout while the payload is kept (default config: the record, its log entry,
 *     and the tenant's event-log entry, which holds the body a delivered record shows),
 *   - the current layout after the payload expired (payloadRetention and stream.retention 1ms,
 *     measured once Redis has dropped the event log and every payload key),
 *   - for sizing: a failed delivery (record and payload kept failedRetention, plus the event-log
 *     entry) and a pending one (as stored, before any attempt; its BullMQ job not counted).
 * The current layout is written by the real DeliveryStore: storeMatched, then recordAttempt, as
 * the subscriber and the worker do. Each measurement starts from an empty Redis.
 */
import { pino } from 'pino'
import { loadConfig, type Config } from '../src/config/config.js'
import type { DeliveryStore } from '../src/delivery/delivery-store.js'
import type { DeliveryAttempt } from '../src/delivery/delivery-record.js'
import { startRedisServer } from '../src/dev/child-processes.js'
import { newId } from '../src/domain/ids.js'
import { wire } from '../src/wiring.js'
import { benchEvent } from './bench-events.js'
import { writeOldLayout } from './old-delivery-layout.js'

const DELIVERIES = 20_000
const WATCHES = 10
const CHUNK = 1_000
const TARGET_KEPT = 1_500
const TARGET_EXPIRED = 400

function config(redisUrl: string, file: { delivery?: Record<string, unknown>; stream?: Record<string, unknown> }): Config {
  return loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', LOG_LEVEL: 'silent', REDIS_URL: redisUrl },
    { file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }], ...file } },
  )
}

// Ids as blockhook makes them (28 characters each): every record keeps its watch's and tenant's.
const TENANT_ID = newId('ten')
const WATCH_IDS = Array.from({ length: WATCHES }, () => newId('wch'))
const events = (from: number) => Array.from({ length: CHUNK }, (_, i) => benchEvent(WATCH_IDS[(from + i) % WATCHES]!, from + i, TENANT_ID))

async function main(): Promise<void> {
  const server = await startRedisServer()
  const logger = pino({ level: 'silent' })
  // The default delivery config, and one whose payloads (and event log) expire at once.
  const kept = wire(config(server.url, {}), 'bench-memory', logger)
  const expiring = wire(config(server.url, { delivery: { payloadRetention: '1ms' }, stream: { retention: '1ms' } }), 'bench-memory', logger)
  const { redis } = kept
  // Only the delivery layout is measured: no memory probes (their key would count, and stay).
  kept.memoryWatch.stop()
  expiring.memoryWatch.stop()
  const usedMemory = async () => Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1])
  const attemptOf = (nowMs: number): DeliveryAttempt => ({ at: new Date(nowMs).toISOString(), statusCode: 200, durationMs: 3, error: null })

  async function measure(write: (from: number) => Promise<void>, settle: () => Promise<void> = async () => {}): Promise<number> {
    await redis.flushall()
    const before = await usedMemory()
    for (let from = 0; from < DELIVERIES; from += CHUNK) await write(from)
    await settle()
    return (await usedMemory() - before) / DELIVERIES
  }

  async function writeCurrent(store: DeliveryStore, from: number, outcome: 'delivered' | 'failed' | 'pending' = 'delivered'): Promise<void> {
    const batch = events(from)
    const nowMs = Date.now()
    await store.storeMatched(batch, undefined, nowMs)
    if (outcome === 'pending') return
    const attempt = outcome === 'delivered' ? attemptOf(nowMs) : { ...attemptOf(nowMs), statusCode: 500, error: 'BH_DELIVERY_HTTP_ERROR: the URL answered 500' }
    await Promise.all(batch.map((e) => store.recordAttempt(e, attempt, outcome, null, { ttlMs: 86_400_000, counts: true }, nowMs)))
  }

  try {
    const old = await measure((from) => writeOldLayout(redis, 'blockhook', events(from), Date.now(), attemptOf(Date.now())))
    const keptPerEvent = await measure((from) => writeCurrent(kept.deliveryQueue.store, from))
    const expired = await measure((from) => writeCurrent(expiring.deliveryQueue.store, from), async () => {
      // Redis drops expired keys in the background; wait until the event log and every payload key are gone.
      const { keys } = expiring
      const payloadKeys = Array.from({ length: DELIVERIES / CHUNK }, (_, c) => events(c * CHUNK).map((e) => keys.deliveryPayload(e.id, 0)))
      const left = async () => (await redis.exists(keys.tenantEventLog(TENANT_ID, 0)))
        + (await Promise.all(payloadKeys.map((chunk) => redis.exists(...chunk)))).reduce((sum, n) => sum + n, 0)
      while ((await left()) > 0) await new Promise((resolve) => setTimeout(resolve, 100))
    })
    const failed = await measure((from) => writeCurrent(kept.deliveryQueue.store, from, 'failed'))
    const pending = await measure((from) => writeCurrent(kept.deliveryQueue.store, from, 'pending'))
    const line = (name: string, value: number, note: string) => console.log(`${name.padEnd(58)} ${value.toFixed(0).padStart(8)} B   ${note}`)
    line('old layout (payload in the record, 14 days), per event', old, '')
    line('current layout, payload kept, per event', keptPerEvent, `${(keptPerEvent / old).toFixed(2)} of old; target ≤ ${TARGET_KEPT} ${keptPerEvent <= TARGET_KEPT ? 'OK' : 'ABOVE'}`)
    line('current layout, payload expired, per event', expired, `${(expired / old).toFixed(2)} of old; target ≤ ${TARGET_EXPIRED} ${expired <= TARGET_EXPIRED ? 'OK' : 'ABOVE'}`)
    line('  of the kept figure, the event-log entry (kept - expired)', keptPerEvent - expired, '')
    line('failed delivery (record and payload key, event-log entry)', failed, '')
    line('pending delivery (as stored, before its first attempt)', pending, 'its BullMQ job not counted')
  } finally {
    await expiring.close()
    await kept.close()
    await server.stop()
  }
}

await main()
