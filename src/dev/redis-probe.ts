import { withTimeout } from '../domain/timeout.js'
import { Redis } from 'ioredis'

/**
 * Whether a Redis answers PING at `url` within `timeoutMs`: one attempt, no retries, no queued
 * commands. Resolves with the reason when it does not.
 */
export async function probeRedis(url: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  // A refused connection is the answer we are looking for, reported below through the rejected
  // connect(); without a listener ioredis would also print it as an unhandled error event.
  client.on('error', () => undefined)
  try {
    await withTimeout(client.connect().then(() => client.ping()), timeoutMs)
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  } finally {
    client.disconnect()
  }
}
