/**
 * What the worker reads per job (the delivery record, the watch as it is now), read for every job
 * that asks within one turn of the event loop by one command made after all of them asked, each
 * id once. Jobs start in bursts (one Redis reply often carries several next jobs), so under load
 * many deliveries share a read; alone, a job waits only for the turn to end.
 *
 * Nothing is served from an earlier read: a watch paused, deleted or given a new secret, or a
 * delivery cancelled, before a job asked is seen by that job, exactly as with a read of its own.
 */

/** One read of `ids`, in their order; an entry that cannot be decoded is rejected alone. */
export type ReadMany<V> = (ids: readonly string[]) => Promise<PromiseSettledResult<V>[]>

type Waiting<V> = { resolve: (value: V) => void; reject: (err: unknown) => void }

export class BatchedReads<V> {
  readonly #read: ReadMany<V>
  /** The ids asked for since the last read went out, each with the jobs waiting for it. */
  #asked = new Map<string, Waiting<V>[]>()

  constructor(read: ReadMany<V>) {
    this.#read = read
  }

  get(id: string): Promise<V> {
    return new Promise((resolve, reject) => {
      if (this.#asked.size === 0) setImmediate(() => this.#flush())
      const waiting = this.#asked.get(id)
      if (waiting) waiting.push({ resolve, reject })
      else this.#asked.set(id, [{ resolve, reject }])
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
