/**
 * What the live tail blocks on for one delivery shard: an `XREAD BLOCK` over that shard's tenant
 * logs (one hash tag, so one slot: one XREAD can read them all, on a cluster too) that another
 * call can end early, when a tenant joins the read.
 */
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { RedisKeys } from '../storage/keys.js'
import { logRedisErrors } from '../storage/redis.js'
import type { RawEntries } from './event-log.js'

export type ReadReply = [key: string, entries: RawEntries][] | null

export interface BlockingReader {
  /** XREAD COUNT `count` BLOCK `blockMs` STREAMS `keys` `ids`: null when it timed out or was interrupted. */
  read(keys: readonly string[], ids: readonly string[], count: number, blockMs: number): Promise<ReadReply>
  /** Ends the read under way at once, or makes the next one return null at once. */
  interrupt(): void
  /** Ends any read (it rejects) and drops the connection. */
  close(): void
}

/** A reader for a shard; called again for a fresh one after a read failed (on a cluster the shard's slot may have moved). */
export type OpenReader = (shard: number) => BlockingReader

/**
 * A BlockingReader on `reader`, a connection of its own, ended early by `CLIENT UNBLOCK` sent
 * over `control`, a connection to the same server (a blocked connection takes no command).
 */
export function unblockableReader(reader: Redis, control: Pick<Redis, 'client'>, logger: Logger): BlockingReader {
  let clientId: number | undefined
  /** The read under way, once its XREAD is sent. */
  let blocked: object | undefined
  let interrupted = false
  const unblock = (read: object, id: number): void => {
    control.client('UNBLOCK', id).then((unblocked) => {
      // 0: the server has not blocked it yet. The XREAD went out first, but on another
      // connection, so the server may take the UNBLOCK first: it is sent again while that read waits.
      if (unblocked === 0 && blocked === read) setTimeout(() => { if (blocked === read) unblock(read, id) }, 1)
    }).catch((err: unknown) => logger.warn({ err }, 'could not interrupt the event-log reader'))
  }
  return {
    async read(keys, ids, count, blockMs) {
      try {
        clientId ??= (await reader.client('ID')) as number
        if (interrupted) return null
        blocked = {}
        return (await reader.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) as ReadReply
      } catch (err) {
        clientId = undefined
        throw err
      } finally {
        blocked = undefined
        interrupted = false
      }
    },
    interrupt() {
      if (blocked && clientId !== undefined) unblock(blocked, clientId)
      else interrupted = true
    },
    close() {
      reader.disconnect()
    },
  }
}

/**
 * Readers on a Redis Cluster. A Cluster client cannot do it: its blocked connection to a master
 * would hold up every other command to that master, and CLIENT UNBLOCK, which names no key, would
 * go to any master. So shard k's reader is a plain connection to the master serving the slot of
 * shard k's logs, interrupted through the Cluster client's own connection to that master. It
 * fails rather than waits when that master goes (one retry per command): the live tail then
 * opens a fresh reader, which looks the master up again, as after a MOVED once the slot moves.
 */
export function clusterTailReaders(cluster: Cluster, keys: RedisKeys, logger: Logger): OpenReader {
  return (shard) => {
    let reader: BlockingReader | undefined
    let opening: Promise<BlockingReader> | undefined
    let interrupted = false
    let closed = false
    const open = async (): Promise<BlockingReader> => {
      const slot = (await cluster.cluster('KEYSLOT', keys.tenantEventLog('', shard))) as number
      const [address] = cluster.slots[slot] ?? []
      const master = cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === address)
      if (!master) throw new Error(`no master known for slot ${slot} (event logs of delivery shard ${shard})`)
      const opened = unblockableReader(logRedisErrors(master.duplicate({ maxRetriesPerRequest: 1 }), logger, `event log ${shard}`), master, logger)
      if (closed) opened.close()
      else if (interrupted) opened.interrupt()
      reader = opened
      return opened
    }
    return {
      async read(streamKeys, ids, count, blockMs) {
        // A failed look-up is tried again by the next read (the live tail retries).
        opening ??= open().catch((err: unknown) => {
          opening = undefined
          throw err
        })
        return (await opening).read(streamKeys, ids, count, blockMs)
      },
      interrupt() {
        if (reader) reader.interrupt()
        else interrupted = true
      },
      close() {
        closed = true
        reader?.close()
      },
    }
  }
}
