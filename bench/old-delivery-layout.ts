/**
 * The delivery record layout before issue 11, kept only so bench/memory.bench.ts can measure it
 * beside the current one in the same run: a small copy of what the old store scripts wrote for an
 * event that was stored and then delivered (one hash holding the payload and every field, kept
 * 14 days, and its entry in the watch's log). BullMQ jobs are left out of both layouts (the old
 * one kept the last 1,000 completed jobs, a bounded amount).
 */
import type { RedisClient } from '../src/storage/redis.js'
import type { MatchedEvent } from '../src/delivery/delivery-record.js'

const OLD_RETENTION_MS = 14 * 86_400_000

/** KEYS: record, sequence, log, stats. ARGV: id, watchId, tenantId, chain, type, timestamp, data, firstSeenAt, createdAt, now ms, attempts JSON. */
const OLD_STORE_AND_DELIVER = `
local sequence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'watchId', ARGV[2], 'tenantId', ARGV[3], 'chain', ARGV[4],
  'type', ARGV[5], 'timestamp', ARGV[6], 'data', ARGV[7], 'firstSeenAt', ARGV[8], 'createdAt', ARGV[9],
  'sequence', sequence, 'status', 'delivered', 'attempts', ARGV[11], 'nextAttemptAt', '', 'jobId', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ${OLD_RETENTION_MS})
redis.call('ZADD', KEYS[3], ARGV[10], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'matched', 1)
redis.call('HINCRBY', KEYS[4], 'delivered', 1)
return 1`

export async function writeOldLayout(redis: RedisClient, prefix: string, events: readonly MatchedEvent[], nowMs: number, attempt: unknown): Promise<void> {
  const p = `{${prefix}}`
  const pipeline = redis.pipeline()
  for (const e of events) {
    pipeline.eval(
      OLD_STORE_AND_DELIVER, 4,
      `${p}:delivery:${e.id}`, `${p}:watch:${e.watchId}:sequence`, `${p}:watch:${e.watchId}:deliveries`, `${p}:watch:${e.watchId}:stats`,
      e.id, e.watchId, e.tenantId, e.chain, e.type, e.timestamp, JSON.stringify(e.data), e.firstSeenAt,
      new Date(nowMs).toISOString(), nowMs, JSON.stringify([attempt]),
    )
  }
  for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err
}
