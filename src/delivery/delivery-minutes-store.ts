/** Reads a watch's per-minute delivery buckets (layout in delivery-minutes.ts; written by the delivery store). */
import type { RedisClient } from '../storage/redis.js'
import type { RedisKeys } from '../storage/keys.js'
import { summarizeMinute, type DeliveryMinute } from './delivery-minutes.js'

export class DeliveryMinutesStore {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  /** `count` minutes ending with `lastMinute` (indexes since the epoch), oldest first, every minute present. */
  async read(watchId: string, lastMinute: number, count: number): Promise<DeliveryMinute[]> {
    const minutes = Array.from({ length: count }, (_, i) => lastMinute - count + 1 + i)
    const pipeline = this.#redis.pipeline()
    for (const minute of minutes) pipeline.hgetall(this.#keys.watchMinute(watchId, minute))
    const replies = (await pipeline.exec()) ?? []
    return minutes.map((minute, i) => {
      const [err, hash] = replies[i] ?? [new Error('no reply')]
      if (err) throw err
      return summarizeMinute(minute, hash as Record<string, string>)
    })
  }
}
