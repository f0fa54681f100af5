import t from 'tap'
import { Worker } from 'bullmq'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRedis } from '../src/storage/redis.js'
import { startRedis } from './helpers/processes.js'

/** What `promise` settled to within `ms`, or 'still pending'. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still pending'> {
  return Promise.race([promise, sleep(ms, 'still pending' as const)])
}

t.test('a connection disconnected while it waits to reconnect ends, and rejects the read it was holding', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const redis = createRedis(server.url, 'test')
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
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
  t.equal(await within(ended, 2_000), 'ended')
  t.equal(reader.status, 'end')
  t.equal(await within(read, 1_000), 'Connection is closed.')
})

t.test('a BullMQ worker closes while Redis is down and its blocking connection waits to reconnect', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const redis = createRedis(server.url, 'test')
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  const worker = new Worker('disconnect-test', async () => {}, { connection: redis })
  worker.on('error', () => {})
  await worker.waitUntilReady()
  // Its blocking connection is waiting for a job once the server lists it as blocked.
  while (!/cmd=bzpopmin/.test(await redis.client('LIST') as string)) await sleep(20)

  server.child.kill('SIGKILL')
  await sleep(500) // every connection has lost Redis and retries on a timer
  t.equal(await within(worker.close().then(() => 'closed'), 5_000), 'closed')
})
