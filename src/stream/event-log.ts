/**
 * Reads a tenant's event logs (the Redis streams the delivery store appends to, one per delivery
 * shard, see src/delivery/delivery-store.ts): pages after a position for a client catching up,
 * merged across the logs, and the newest entry of each, where a client that gives no `after`
 * starts.
 */
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import { compareEntryIds, parseLoggedEvent, type LoggedEvent, type Positions } from './stream-entry.js'

export type RawEntries = [id: string, fields: string[]][]

/** Entries of one shard's log parsed; any not written by the delivery store are skipped (there are none unless hand-edited). */
export function parseEntries(shard: number, entries: RawEntries): LoggedEvent[] {
  const events: LoggedEvent[] = []
  for (const [id, fields] of entries) {
    const event = parseLoggedEvent(shard, id, fields)
    if (event) events.push(event)
  }
  return events
}

export interface LogPage {
  /** Oldest first across the logs (by entry time; within a log, in its order). */
  events: LoggedEvent[]
  /** The positions after the page: where the next page starts. */
  positions: string[]
  /** Whether the page reached the end of every log. */
  caughtUp: boolean
}

interface ShardEntry {
  shard: number
  id: string
  fields: string[]
}

/** The merge order: entry time, then the shard (ids of two logs at the same time are in no order of their own). */
function compareShardEntries(a: Pick<ShardEntry, 'shard' | 'id'>, b: Pick<ShardEntry, 'shard' | 'id'>): number {
  return compareEntryIds(a.id, b.id) || a.shard - b.shard
}

export class EventLog {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  /**
   * Up to `count` entries of each log strictly after its position, merged. A log that had
   * `count` or more may hold more before what the others returned: the page ends at the first
   * such log's last entry, and what came after is read again with the next page.
   */
  async readAfter(tenantId: string, positions: Positions, count: number): Promise<LogPage> {
    // One XRANGE per log, not a pipeline: on a cluster the logs are in different slots.
    const pages = await Promise.all(positions.map((position, shard) =>
      this.#redis.xrange(this.#keys.tenantEventLog(tenantId, shard), `(${position}`, '+', 'COUNT', count) as Promise<RawEntries>))
    let end: Pick<ShardEntry, 'shard' | 'id'> | undefined
    pages.forEach((entries, shard) => {
      const last = entries.length === count ? { shard, id: entries.at(-1)![0] } : undefined
      if (last && (!end || compareShardEntries(last, end) < 0)) end = last
    })
    const merged = pages
      .flatMap((entries, shard) => entries.map(([id, fields]): ShardEntry => ({ shard, id, fields })))
      .filter((entry) => !end || compareShardEntries(entry, end) <= 0)
    if (pages.length > 1) merged.sort(compareShardEntries)
    const next = [...positions]
    const events: LoggedEvent[] = []
    for (const { shard, id, fields } of merged) {
      next[shard] = id
      const event = parseLoggedEvent(shard, id, fields)
      if (event) events.push(event)
    }
    return { events, positions: next, caughtUp: end === undefined }
  }

  /** The newest entry's id of each shard's log, `0-0` for an empty one. */
  async lastPositions(tenantId: string): Promise<string[]> {
    return Promise.all(Array.from({ length: this.#keys.deliveryShards }, async (_, shard) => {
      const [last] = (await this.#redis.xrevrange(this.#keys.tenantEventLog(tenantId, shard), '+', '-', 'COUNT', 1)) as RawEntries
      return last?.[0] ?? '0-0'
    }))
  }
}
