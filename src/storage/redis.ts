import { Redis } from 'ioredis'

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
