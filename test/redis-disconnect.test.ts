import t, { type Test } from 'tap'
import { Worker } from 'bullmq'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { createRedis } from '../src/storage/redis.js'
import { startRedis } from './helpers/processes.js'

// Without the fix these hang: tap's timeout fails them.

/** A Redis of the test's own, to SIGKILL, and a client of it whose connection errors are expected. */
async function redisToKill(t: Test) {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const redis = createRedis(server.url, 'test')
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return { server, redis }
}

t.test('a connection disconnected while it waits to reconnect ends, and rejects the read it was holding', async (t) => {
  const { server, redis } = await redisToKill(t)
  // As every blocking reader is, a duplicate; its long retry delay puts the whole disconnect
  // between two reconnect attempts.
  const reader = redis.duplicate({ retryStrategy: () => 60_000 })
  reader.on('error', () => {})
  await reader.ping()
  const read = reader.bzpopmin('nothing-here', 30).then(() => 'resolved', (err: Error) => err.message)
  const reconnecting = new Promise((resolve) => reader.once('reconnecting', resolve))
  server.child.kill('SIGKILL')
  await reconnecting

  const ended = new Promise<string>((resolve) => reader.once('end', () => resolve('ended')))
  reader.disconnect()
  t.equal(await ended, 'ended')
  t.equal(reader.status, 'end')
  t.equal(await read, 'Connection is closed.')
})

t.test('a BullMQ worker closes while Redis is down and its blocking connection waits to reconnect', async (t) => {
  const { server, redis } = await redisToKill(t)
  // BullMQ makes its blocking connection with duplicate(): kept to know when it waits to reconnect.
  const duplicate = redis.duplicate.bind(redis)
  const duplicates: Redis[] = []
  redis.duplicate = (override) => {
    const copy = duplicate(override)
    duplicates.push(copy)
    return copy
  }
  const worker = new Worker('disconnect-test', async () => {}, { connection: redis })
  worker.on('error', () => {})
  await worker.waitUntilReady()
  // Its blocking connection is waiting for a job once the server lists it as blocked.
  while (!/cmd=bzpopmin/.test(await redis.client('LIST') as string)) await sleep(20)

  t.equal(duplicates.length, 1)
  const blocking = duplicates[0]!
  const reconnecting = once(blocking, 'reconnecting')
  server.child.kill('SIGKILL')
  // Closing now finds it between two reconnect attempts.
  await reconnecting
  t.equal(blocking.status, 'reconnecting')
  await worker.close()
  t.equal(blocking.status, 'end')
})
