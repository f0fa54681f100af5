/**
 * Production Redis (README, "Operations") runs with `appendonly yes` and `maxmemory-policy noeviction`, or an
 * accepted event can vanish (a restart without AOF, or eviction of a delivery record under memory
 * pressure). blockhook cannot enforce that; it says so at start. INFO is read rather than CONFIG
 * GET because managed Redis services often disable CONFIG.
 */
import { withTimeout } from '../domain/timeout.js'
import type { RedisClient } from './redis.js'

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim()
}

/** Warnings for the INFO text of a Redis server; empty when it is set up as README, "Operations", asks. */
export function redisSettingWarnings(info: string): string[] {
  const warnings: string[] = []
  const aof = infoField(info, 'aof_enabled')
  if (aof !== undefined && aof !== '1') {
    warnings.push('Redis runs without appendonly: a Redis restart can lose queued deliveries and cursors (set appendonly yes)')
  }
  const policy = infoField(info, 'maxmemory_policy')
  if (policy !== undefined && policy !== 'noeviction') {
    warnings.push(`Redis evicts keys under memory pressure (maxmemory-policy ${policy}): delivery records and cursors can be dropped (set maxmemory-policy noeviction)`)
  }
  return warnings
}

const CHECK_TIMEOUT_MS = 3_000

/** Reads INFO within a short deadline: an unreachable Redis must not hold up start (readyz reports it). */
export async function checkRedisSettings(redis: RedisClient): Promise<string[]> {
  const info = await withTimeout(
    redis.info('persistence').then(async (p) => p + (await redis.info('memory'))),
    CHECK_TIMEOUT_MS, `no answer from Redis within ${CHECK_TIMEOUT_MS} ms`,
  )
  return redisSettingWarnings(info)
}
