/**
 * The watches of one chain, kept in a sink (the chain's matching indexes): loaded with
 * `WatchStore.loadChain`, then followed on the change feed from the snapshot's position, so no
 * change falls between the two. Every change re-reads the watch by id (a replayed or stale entry
 * is harmless) and checks its stored filter against the same schemas the API uses: a rule that
 * does not validate is logged and skipped, never allowed to break matching for everyone.
 */
import type { RedisClient } from '../storage/redis.js'
import type { Logger } from 'pino'
import type { ChainType } from '../config/config.js'
import { filterError } from '../api/validation.js'
import { chainTypeOf, WATCH_TYPES, type Watch } from '../domain/watch-types.js'
import type { WatchChange, WatchStore } from '../storage/watch-store.js'

export interface WatchSink {
  /** A watch to (re)index as it now is; the sink ignores any that is not active. */
  upsert(watch: Watch): void
  remove(watchId: string): void
}

/** Stream ids `<ms>-<seq>` in order. */
function positionAtLeast(position: string, target: string): boolean {
  const [pm = 0, ps = 0] = position.split('-').map(Number)
  const [tm = 0, ts = 0] = target.split('-').map(Number)
  return pm > tm || (pm === tm && ps >= ts)
}

export interface WatchSetOptions {
  store: WatchStore
  /** A connection of its own: XREAD BLOCK holds it. Closed by the owner. */
  reader: RedisClient
  chain: string
  chainType: ChainType
  sink: WatchSink
  logger: Logger
}

export class WatchSet {
  readonly #o: WatchSetOptions
  readonly #abort = new AbortController()
  #position = '0-0'
  #following: Promise<void> | undefined
  readonly #waiters = new Set<{ position: string; resolve: () => void }>()

  constructor(options: WatchSetOptions) {
    this.#o = options
  }

  /** Loads every watch of the chain into the sink and starts following changes. */
  async start(): Promise<void> {
    const { watches, position } = await this.#o.store.loadChain(this.#o.chain)
    for (const watch of watches) this.#apply(watch.id, watch)
    this.#position = position
    this.#o.logger.info({ watches: watches.length }, 'watches loaded')
    this.#following = this.#follow()
  }

  async #follow(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        await this.#o.store.followChanges(this.#o.reader, this.#position, this.#abort.signal, (changes) => this.#onChanges(changes))
      } catch (err) {
        if (this.#abort.signal.aborted) return
        this.#o.logger.warn({ err }, 'watch change feed failed, resuming')
        await new Promise((resolve) => setTimeout(resolve, 1000).unref())
      }
    }
  }

  async #onChanges(changes: WatchChange[]): Promise<void> {
    const ids = [...new Set(changes.filter((c) => c.chain === this.#o.chain).map((c) => c.watchId))]
    if (ids.length > 0) {
      const current = new Map((await this.#o.store.getMany(ids)).map((w) => [w.id, w]))
      for (const id of ids) this.#apply(id, current.get(id))
    }
    this.#position = changes[changes.length - 1]!.position
    for (const waiter of this.#waiters) {
      if (positionAtLeast(this.#position, waiter.position)) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  #apply(watchId: string, watch: Watch | undefined): void {
    if (!watch || watch.chain !== this.#o.chain || !WATCH_TYPES.includes(watch.type) || chainTypeOf(watch.type) !== this.#o.chainType) {
      this.#o.sink.remove(watchId)
      return
    }
    const error = filterError(watch.type, watch.filter, 'filter')
    if (error !== undefined) {
      this.#o.logger.warn({ watchId, error }, 'stored watch has an invalid filter, skipped')
      this.#o.sink.remove(watchId)
      return
    }
    try {
      this.#o.sink.upsert(watch)
    } catch (err) {
      this.#o.logger.warn({ watchId, err }, 'watch could not be indexed, skipped')
      this.#o.sink.remove(watchId)
    }
  }

  /** Resolves once every change up to the feed entry `position` has been applied. */
  whenApplied(position: string): Promise<void> {
    if (positionAtLeast(this.#position, position)) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add({ position, resolve }))
  }

  async stop(): Promise<void> {
    this.#abort.abort()
    await this.#following
    for (const waiter of this.#waiters) waiter.resolve()
    this.#waiters.clear()
  }
}
