/**
 * One blocking reader per api process for every tenant that has a caught-up stream client:
 * `XREAD BLOCK` over those tenants' event logs, each batch handed to every waiting client of its
 * tenant (the frames are rendered once, see stream-entry.ts), so N clients of a tenant cost one
 * Redis read per batch, not N.
 *
 * A client waits with the cursor it has reached. The reader hands it a batch only when it is not
 * behind the batch's start (its cursor is at or after where the reader's previous read ended),
 * keeping only entries after its cursor: nothing missed, nothing repeated. A client that is
 * behind is told so at once and pages through the log itself (EventLog.readAfter) first.
 */
import type { RedisClient } from '../storage/redis.js'
import type { Logger } from '../logger.js'
import { parseEntries, type RawEntries } from './event-log.js'
import { compareCursors, type LoggedEvent } from './stream-entry.js'
import type { RedisKeys } from '../storage/keys.js'

/** What a wait ends with: the events after the waiter's cursor, `behind`, or `closed`. */
export type TailResult = LoggedEvent[] | 'behind' | 'closed'

interface Waiter {
  cursor: string
  resolve(result: TailResult): void
}

interface TenantTail {
  /** Where the reader's next XREAD starts for this tenant. */
  readFrom: string
  waiters: Set<Waiter>
}

const BLOCK_MS = 5_000
const READ_COUNT = 1_000
const RETRY_MS = 1_000

export class LiveTail {
  readonly #reader: RedisClient
  readonly #commands: RedisClient
  readonly #keys: RedisKeys
  readonly #log: Logger
  readonly #tenants = new Map<string, TenantTail>()
  #clientId: number | undefined
  #blocked = false
  #wake: (() => void) | undefined
  #closed = false
  #loop: Promise<void> | undefined

  /** `reader` is a connection of its own (it blocks); `commands` sends CLIENT UNBLOCK to it. */
  constructor(reader: RedisClient, commands: RedisClient, keys: RedisKeys, logger: Logger) {
    this.#reader = reader
    this.#commands = commands
    this.#keys = keys
    this.#log = logger
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  /**
   * The next events after `cursor` in the tenant's log (see the module comment); `cancel` ends
   * the wait with `closed` (the client's socket closed while it waited).
   */
  next(tenantId: string, cursor: string): { result: Promise<TailResult>; cancel(): void } {
    if (this.#closed) return { result: Promise.resolve('closed'), cancel: () => {} }
    let tail = this.#tenants.get(tenantId)
    const added = !tail
    if (!tail) {
      tail = { readFrom: cursor, waiters: new Set() }
      this.#tenants.set(tenantId, tail)
    } else if (compareCursors(cursor, tail.readFrom) < 0) {
      return { result: Promise.resolve('behind'), cancel: () => {} }
    }
    const known = tail
    let waiter!: Waiter
    const result = new Promise<TailResult>((resolve) => { waiter = { cursor, resolve } })
    known.waiters.add(waiter)
    if (added) this.#interrupt()
    return {
      result,
      cancel: () => {
        if (!known.waiters.delete(waiter)) return
        waiter.resolve('closed')
        if (known.waiters.size === 0 && this.#tenants.get(tenantId) === known) this.#tenants.delete(tenantId)
      },
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const tail of this.#tenants.values()) for (const waiter of tail.waiters) waiter.resolve('closed')
    this.#tenants.clear()
    this.#interrupt()
    await this.#loop
  }

  /** A tenant joined: the blocked XREAD does not cover it yet, so end it early. */
  #interrupt(): void {
    if (this.#wake) {
      const wake = this.#wake
      this.#wake = undefined
      wake()
      return
    }
    if (this.#blocked && this.#clientId !== undefined) {
      this.#commands.client('UNBLOCK', this.#clientId).catch((err: unknown) => this.#log.warn({ err }, 'could not interrupt the event-log reader'))
    }
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#tenants.size === 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        continue
      }
      try {
        await this.#readOnce()
      } catch (err) {
        if (this.#closed) return
        this.#log.warn({ err }, 'reading the event logs failed; retrying')
        this.#clientId = undefined
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref())
      }
    }
  }

  async #readOnce(): Promise<void> {
    this.#clientId ??= (await this.#reader.client('ID')) as number
    const tenants = [...this.#tenants.keys()]
    const starts = tenants.map((id) => this.#tenants.get(id)!.readFrom)
    this.#blocked = true
    let reply: [key: string, entries: RawEntries][] | null
    try {
      reply = (await this.#reader.xread(
        'COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS',
        ...tenants.map((id) => this.#keys.tenantEventLog(id, 0)), ...starts,
      )) as [string, RawEntries][] | null
    } finally {
      this.#blocked = false
    }
    if (!reply) return
    const byKey = new Map(reply)
    tenants.forEach((tenantId, i) => {
      const entries = byKey.get(this.#keys.tenantEventLog(tenantId, 0))
      const tail = this.#tenants.get(tenantId)
      if (!entries || entries.length === 0 || !tail || tail.readFrom !== starts[i]) return
      this.#dispatch(tail, starts[i]!, parseEntries(entries), entries.at(-1)![0])
      if (tail.waiters.size === 0) this.#tenants.delete(tenantId)
    })
  }

  #dispatch(tail: TenantTail, start: string, events: readonly LoggedEvent[], last: string): void {
    tail.readFrom = last
    for (const waiter of tail.waiters) {
      tail.waiters.delete(waiter)
      if (compareCursors(waiter.cursor, start) < 0) {
        waiter.resolve('behind')
        continue
      }
      // Possibly empty: it had read these itself; it waits again from its cursor.
      waiter.resolve(events.filter((e) => compareCursors(e.cursor, waiter.cursor) > 0))
    }
  }
}
