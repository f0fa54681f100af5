import { Cluster, Redis, type ChainableCommander, type RedisOptions } from 'ioredis'
import { closeHandler } from 'ioredis/built/redis/event_handler.js'
import type { Logger } from 'pino'
import { groupBy } from '../domain/group-by.js'
import { keySlot } from './key-slot.js'

/** A connection to a single Redis or to a Redis Cluster: every store takes either. */
export type RedisClient = Redis | Cluster

/**
 * ioredis with the settings BullMQ requires of the connections it is given
 * (`maxRetriesPerRequest: null`) and that blocking reads need; one factory for every role.
 */
export function createRedis(url: string, name: string): Redis {
  // Commands issued in the same tick go out as one socket write, and Redis reads them as one:
  // a worker's jobs each make a few small commands, and Redis CPU per delivery fell by about a
  // fifth with it (bench/RESULTS.md, "On main at 725095f").
  return new EndingRedis(url, { ...connectionOptions(name), enableAutoPipelining: true })
}

/**
 * ioredis's client, except that `disconnect()` between two reconnect attempts ends it. There
 * ioredis only cancels the next attempt: the socket is already closed, so no 'close' event is
 * left to come, and the client stays 'reconnecting' for good, never emits 'end' and never
 * settles the commands it holds for the next connection (redis/ioredis#1247). BullMQ's
 * Worker.close() disconnects the worker's blocking connection and waits for that 'end'; after a
 * Redis restart that connection can still be sitting out its retry delay when SIGTERM comes,
 * and the worker, hence the process, then never finished closing. Running ioredis's own close
 * handler does what a disconnect does once the socket closes: 'close', then 'end', and what is
 * queued is rejected with "Connection is closed.".
 */
class EndingRedis extends Redis {
  override disconnect(reconnect = false): void {
    const betweenAttempts = !reconnect && this.status === 'reconnecting'
    super.disconnect(reconnect)
    if (betweenAttempts) closeHandler(this)()
  }

  // BullMQ's blocking connection, and each blocking reader of ours, is a duplicate.
  override duplicate(override?: Partial<RedisOptions>): Redis {
    // The options are this client's own, whose replies use the legacy mapping (the default).
    return new EndingRedis({ ...this.options, ...override } as RedisOptions & { replyMapping?: 'legacy' })
  }
}

function connectionOptions(name: string) {
  return { maxRetriesPerRequest: null, enableReadyCheck: true, connectionName: `blockhook:${name}`, lazyConnect: false }
}

/**
 * A Redis Cluster client from the URLs of some of its nodes (it discovers the rest); the first
 * URL's user and password are used for every node, as a cluster shares them.
 */
export function createRedisCluster(nodeUrls: readonly string[], name: string): Cluster {
  const [first] = nodeUrls
  const { username, password } = first === undefined ? { username: '', password: '' } : new URL(first)
  return new Cluster([...nodeUrls], {
    redisOptions: {
      ...connectionOptions(name),
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
    },
    // Commands issued in the same tick to one master go out as one write: the per-shard script
    // calls of a batch, and the many small reads of the API, cost a round trip per master.
    enableAutoPipelining: true,
    enableReadyCheck: true,
  })
}

/**
 * Logs the connection's errors (ioredis reconnects on its own). Every connection needs this:
 * without an `error` listener ioredis prints each failed reconnect to stderr as an unstructured
 * "[ioredis] Unhandled error event" stack.
 */
export function logRedisErrors<C extends RedisClient>(redis: C, logger: Logger, connection?: string): C {
  redis.on('error', (err: Error) => logger.warn({ err: err.message, ...(connection ? { connection } : {}) }, 'redis connection error'))
  return redis
}

/** Another connection to the same server (or cluster), for a blocking read; `duplicate()` copies no listeners. */
export function duplicateRedis(redis: RedisClient, logger: Logger, connection: string): RedisClient {
  return logRedisErrors(redis instanceof Cluster ? redis.duplicate() : redis.duplicate(), logger, connection)
}

/** Groups `items` by the slot of their key; one group, in order, on a single Redis. */
function bySlot<T>(redis: RedisClient, items: readonly T[], keyOf: (item: T) => string): number[][] {
  const indexes = items.map((_, i) => i)
  if (!redis.isCluster) return [indexes]
  return [...groupBy(indexes, (i) => keySlot(keyOf(items[i]!))).values()]
}

/**
 * Sends one command per item, pipelined; a cluster refuses a pipeline whose keys span slots, so
 * there it is one pipeline per slot, all at once. `add` queues exactly one command, on the item's
 * key. Replies come back in the order of `items`; the first error is thrown.
 */
export async function pipelinePerSlot<T>(
  redis: RedisClient, items: readonly T[], keyOf: (item: T) => string, add: (pipeline: ChainableCommander, item: T) => void,
): Promise<unknown[]> {
  const replies = new Array<unknown>(items.length)
  await Promise.all(bySlot(redis, items, keyOf).map(async (group) => {
    const pipeline = redis.pipeline()
    for (const i of group) add(pipeline, items[i]!)
    const results = (await pipeline.exec()) ?? []
    group.forEach((i, n) => {
      const [err, reply] = results[n] ?? [new Error('no reply')]
      if (err) throw err
      replies[i] = reply
    })
  }))
  return replies
}

/** MGET, one per slot on a cluster (where MGET across slots is refused); values in the order of `keys`. */
export async function mgetPerSlot(redis: RedisClient, keys: readonly string[]): Promise<(string | null)[]> {
  const values = new Array<string | null>(keys.length)
  await Promise.all(bySlot(redis, keys, (key) => key).map(async (group) => {
    const found = await redis.mget(group.map((i) => keys[i]!))
    group.forEach((i, n) => { values[i] = found[n] ?? null })
  }))
  return values
}

/** The servers holding keys: the one Redis, or every master of the cluster (SCAN and INFO see one server). */
export function keyServers(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis]
}

/** Every key matching `pattern`, by SCAN on every server holding keys, `count` per call; `each` gets each batch and its server. */
export async function scanEachServer(
  redis: RedisClient, pattern: string, count: number, each: (keys: string[], server: Redis) => Promise<void>, until: () => boolean = () => false,
): Promise<boolean> {
  for (const server of keyServers(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', count)
      cursor = next
      if (keys.length > 0) await each(keys, server)
    } while (cursor !== '0' && !until())
    if (cursor !== '0') return false
  }
  return true
}
