import { Redis } from 'ioredis'
import type { Logger } from 'pino'

/**
 * ioredis with the settings BullMQ requires of the connections it is given
 * (`maxRetriesPerRequest: null`) and that blocking reads need; one factory for every role.
 */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: `blockhook:${name}`,
    lazyConnect: false,
  })
}

/**
 * Logs the connection's errors (ioredis reconnects on its own). Every connection needs this:
 * without an `error` listener ioredis prints each failed reconnect to stderr as an unstructured
 * "[ioredis] Unhandled error event" stack.
 */
export function logRedisErrors(redis: Redis, logger: Logger, connection?: string): Redis {
  redis.on('error', (err: Error) => logger.warn({ err: err.message, ...(connection ? { connection } : {}) }, 'redis connection error'))
  return redis
}

/** Another connection to the same server, for a blocking read; `duplicate()` copies no listeners. */
export function duplicateRedis(redis: Redis, logger: Logger, connection: string): Redis {
  return logRedisErrors(redis.duplicate(), logger, connection)
}
