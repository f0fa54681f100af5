import { randomBytes } from 'node:crypto'
import { deepFreeze, loadConfig, type Config } from '../../src/config/config.js'

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'

/**
 * A Config as `loadConfig` would build it, with a Redis key prefix of its own (every test gets
 * its own keyspace, bullmq-style) and the overrides given.
 */
export function testConfig(overrides: Partial<Config> & { file?: unknown } = {}): Config {
  const { file, ...rest } = overrides
  const base = loadConfig(
    { BLOCKHOOK_ADMIN_TOKEN: TEST_ADMIN_TOKEN, LOG_LEVEL: 'silent' },
    { file: file ?? {} },
  )
  return deepFreeze({ ...base, redisPrefix: `test-${randomBytes(6).toString('hex')}`, ...rest })
}
