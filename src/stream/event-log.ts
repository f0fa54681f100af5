/**
 * Reads a tenant's event log (the Redis stream the delivery store appends to, see
 * src/delivery/delivery-store.ts): pages after a cursor for a client catching up, and the id of
 * the newest entry, where a client that gives no `after` starts.
 */
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import { parseLoggedEvent, type LoggedEvent } from './stream-entry.js'

export type RawEntries = [id: string, fields: string[]][]

/** Entries parsed; any not written by the delivery store are skipped (there are none unless hand-edited). */
export function parseEntries(entries: RawEntries): LoggedEvent[] {
  const events: LoggedEvent[] = []
  for (const [id, fields] of entries) {
    const event = parseLoggedEvent(id, fields)
    if (event) events.push(event)
  }
  return events
}

export class EventLog {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  key(tenantId: string): string {
    return this.#keys.tenantEventLog(tenantId, 0)
  }

  /** Up to `count` entries strictly after `cursor`, oldest first. */
  async readAfter(tenantId: string, cursor: string, count: number): Promise<{ events: LoggedEvent[]; raw: number; last: string | undefined }> {
    const entries = (await this.#redis.xrange(this.key(tenantId), `(${cursor}`, '+', 'COUNT', count)) as RawEntries
    return { events: parseEntries(entries), raw: entries.length, last: entries.at(-1)?.[0] }
  }

  /** The newest entry's id, or `0-0` for an empty log. */
  async lastCursor(tenantId: string): Promise<string> {
    const [last] = (await this.#redis.xrevrange(this.key(tenantId), '+', '-', 'COUNT', 1)) as RawEntries
    return last?.[0] ?? '0-0'
  }
}
