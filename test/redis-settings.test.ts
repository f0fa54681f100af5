import t from 'tap'
import { createRedis } from '../src/storage/redis.js'
import { checkRedisSettings, redisSettingWarnings } from '../src/storage/redis-settings.js'
import { startRedis } from './helpers/processes.js'

t.test('a Redis set up as README, "Operations", asks gets no warning', async (t) => {
  t.same(redisSettingWarnings('# Persistence\r\naof_enabled:1\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n'), [])
})

t.test('appendonly off and an evicting policy each get a warning naming the setting', async (t) => {
  const warnings = redisSettingWarnings('aof_enabled:0\r\nmaxmemory_policy:allkeys-lru\r\n')
  t.equal(warnings.length, 2)
  t.match(warnings[0], /appendonly yes/)
  t.match(warnings[1], /allkeys-lru.*noeviction/)
})

t.test('against a real redis-server started without AOF, the check warns about it', async (t) => {
  const server = await startRedis()
  const redis = createRedis(server.url, 'test')
  t.teardown(async () => { redis.disconnect(); await server.stop() })
  const warnings = await checkRedisSettings(redis)
  t.match(warnings.join('\n'), /appendonly/)
  t.notMatch(warnings.join('\n'), /maxmemory-policy/, 'the default policy is noeviction')
})
