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
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs) }),
    ])
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}
