/**
 * One blocking reader per delivery shard per api process, for every tenant that has a caught-up
 * stream client: `XREAD BLOCK` over those tenants' logs on that shard, each batch handed to every
 * waiting client of its tenant (each event signed once, see stream-entry.ts), so N
 * clients of a tenant cost one Redis read per batch, not N. One XREAD per shard because a shard's
 * logs share a hash tag and those of two shards do not: on a cluster one command cannot read both.
 *
 * A client waits with the position it has reached in each log. A shard's reader hands it a batch
 * only when it is not behind the batch's start (its position is at or after where the reader's
 * previous read ended), keeping only entries after its position: nothing missed, nothing
 * repeated. A client that is behind on any shard is told so at once and pages through the logs
 * itself (EventLog.readAfter) first. A wait ends with the first shard's batch.
 */
import type { Logger } from '../logger.js'
import type { RedisKeys } from '../storage/keys.js'
import { parseEntries } from './event-log.js'
import { compareEntryIds, type LoggedEvent, type Positions } from './stream-entry.js'
import type { BlockingReader, OpenReader } from './tail-reader.js'

/** What a wait ends with: the events of one shard's log after the waiter's position there, `behind`, or `closed`. */
export type TailResult = { shard: number; events: LoggedEvent[] } | 'behind' | 'closed'
type ShardResult = LoggedEvent[] | 'behind' | 'closed'

interface Wait<T> {
  result: Promise<T>
  cancel(): void
}

interface Waiter {
  cursor: string
  resolve(result: ShardResult): void
}

interface TenantTail {
  /** Where the reader's next XREAD starts for this tenant. */
  readFrom: string
  waiters: Set<Waiter>
}

const BLOCK_MS = 5_000
const READ_COUNT = 1_000
const RETRY_MS = 1_000

const ended = <T>(result: T): Wait<T> => ({ result: Promise.resolve(result), cancel: () => {} })

export class LiveTail {
  readonly #shards: ShardTail[]
  #closed = false

  /** `open` gives each shard's reader (a connection of its own: it blocks). */
  constructor(keys: RedisKeys, open: OpenReader, logger: Logger) {
    this.#shards = Array.from({ length: keys.deliveryShards }, (_, shard) => new ShardTail(shard, keys, open, logger))
  }

  start(): void {
    for (const tail of this.#shards) tail.start()
  }

  /**
   * The next events after `positions` in the tenant's logs (see the module comment); `cancel`
   * ends the wait with `closed` (the client's socket closed while it waited).
   */
  next(tenantId: string, positions: Positions): Wait<TailResult> {
    if (this.#closed) return ended('closed')
    const waits = this.#shards.map((tail, shard) => tail.next(tenantId, positions[shard]!))
    const cancel = () => { for (const wait of waits) wait.cancel() }
    const result = new Promise<TailResult>((resolve) => {
      waits.forEach((wait, shard) => void wait.result.then((r) => {
        resolve(Array.isArray(r) ? { shard, events: r } : r)
        // The others end with `closed`, ignored: this one came first. Their tenants stay in the
        // readers' XREADs for the client's next wait, which usually comes before those end.
        cancel()
      }))
    })
    return { result, cancel }
  }

  async close(): Promise<void> {
    this.#closed = true
    await Promise.all(this.#shards.map((tail) => tail.close()))
  }
}

/** The reader of one shard's logs. */
class ShardTail {
  readonly #shard: number
  readonly #keys: RedisKeys
  readonly #open: OpenReader
  readonly #log: Logger
  readonly #tenants = new Map<string, TenantTail>()
  #reader: BlockingReader
  #wake: (() => void) | undefined
  #closed = false
  #loop: Promise<void> | undefined

  constructor(shard: number, keys: RedisKeys, open: OpenReader, logger: Logger) {
    this.#shard = shard
    this.#keys = keys
    this.#open = open
    this.#log = logger
    this.#reader = open(shard)
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  next(tenantId: string, cursor: string): Wait<ShardResult> {
    if (this.#closed) return ended('closed')
    let tail = this.#tenants.get(tenantId)
    const added = !tail
    if (!tail) {
      tail = { readFrom: cursor, waiters: new Set() }
      this.#tenants.set(tenantId, tail)
    } else if (compareEntryIds(cursor, tail.readFrom) < 0) {
      return ended('behind')
    }
    const known = tail
    let waiter!: Waiter
    const result = new Promise<ShardResult>((resolve) => { waiter = { cursor, resolve } })
    known.waiters.add(waiter)
    if (added) this.#interrupt()
    return {
      result,
      // The tenant leaves the XREAD once the read under way ends with nobody waiting (#prune).
      cancel: () => {
        if (known.waiters.delete(waiter)) waiter.resolve('closed')
      },
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const tail of this.#tenants.values()) for (const waiter of tail.waiters) waiter.resolve('closed')
    this.#tenants.clear()
    this.#interrupt()
    // Ends a blocked XREAD at once.
    this.#reader.close()
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
    this.#reader.interrupt()
  }

  #prune(): void {
    for (const [tenantId, tail] of this.#tenants) if (tail.waiters.size === 0) this.#tenants.delete(tenantId)
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#prune()
      if (this.#tenants.size === 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        continue
      }
      try {
        await this.#readOnce()
      } catch (err) {
        if (this.#closed) return
        this.#log.warn({ err, shard: this.#shard }, 'reading the event logs failed; retrying')
        this.#reader.close()
        this.#reader = this.#open(this.#shard)
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref())
      }
    }
  }

  async #readOnce(): Promise<void> {
    const tenants = [...this.#tenants.keys()]
    const keys = tenants.map((id) => this.#keys.tenantEventLog(id, this.#shard))
    const starts = tenants.map((id) => this.#tenants.get(id)!.readFrom)
    const reply = await this.#reader.read(keys, starts, READ_COUNT, BLOCK_MS)
    if (!reply) return
    const byKey = new Map(reply)
    tenants.forEach((tenantId, i) => {
      const entries = byKey.get(keys[i]!)
      const tail = this.#tenants.get(tenantId)
      if (!entries || entries.length === 0 || !tail || tail.readFrom !== starts[i]) return
      this.#dispatch(tail, starts[i]!, parseEntries(this.#shard, entries), entries.at(-1)![0])
    })
  }

  #dispatch(tail: TenantTail, start: string, events: readonly LoggedEvent[], last: string): void {
    tail.readFrom = last
    for (const waiter of tail.waiters) {
      tail.waiters.delete(waiter)
      if (compareEntryIds(waiter.cursor, start) < 0) {
        waiter.resolve('behind')
        continue
      }
      // Possibly empty: it had read these itself; it waits again from its position.
      waiter.resolve(events.filter((e) => compareEntryIds(e.entryId, waiter.cursor) > 0))
    }
  }
}
