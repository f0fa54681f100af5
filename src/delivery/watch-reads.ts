/**
 * The worker's reads of watches (the rule as it is now, and the secrets to sign with): every job
 * that asks within one turn of the event loop is answered by one command read after all of them
 * asked, each watch once. Jobs start in bursts (one Redis reply often carries several next jobs),
 * so under load many deliveries share a read; alone, a job waits only for the turn to end.
 *
 * Nothing is served from an earlier read: a watch paused, deleted or given a new secret before a
 * job asked is seen by that job, exactly as with a read of its own.
 */
import type { WatchToSend } from '../storage/watch-store.js'

/** One read of the watches, in their order; a watch that cannot be decoded is rejected alone. */
export type ReadWatchesToSend = (watchIds: readonly string[]) => Promise<PromiseSettledResult<WatchToSend | undefined>[]>

export class WatchReads {
  readonly #read: ReadWatchesToSend
  /** The watches asked for since the last read went out, each with the jobs waiting for it. */
  #asked = new Map<string, { resolve: (value: WatchToSend | undefined) => void; reject: (err: unknown) => void }[]>()

  constructor(read: ReadWatchesToSend) {
    this.#read = read
  }

  get(watchId: string): Promise<WatchToSend | undefined> {
    return new Promise((resolve, reject) => {
      if (this.#asked.size === 0) setImmediate(() => this.#flush())
      const waiting = this.#asked.get(watchId)
      if (waiting) waiting.push({ resolve, reject })
      else this.#asked.set(watchId, [{ resolve, reject }])
    })
  }

  #flush(): void {
    const asked = this.#asked
    this.#asked = new Map()
    const ids = [...asked.keys()]
    this.#read(ids).then(
      (found) => ids.forEach((id, i) => {
        const result = found[i]!
        for (const { resolve, reject } of asked.get(id)!) {
          if (result.status === 'fulfilled') resolve(result.value)
          else reject(result.reason)
        }
      }),
      (err: unknown) => { for (const waiting of asked.values()) for (const { reject } of waiting) reject(err) },
    )
  }
}
