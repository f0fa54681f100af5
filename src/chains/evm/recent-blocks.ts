/**
 * The follower's window in Redis (`keys.chainRecentBlocks`) with the ids of what its blocks
 * emitted (DeliveryStore.storedEvents reads those events back): what a reorg noticed after a
 * restart needs to retract, even when the node has already forgotten the dropped blocks.
 */
import type { RedisClient } from '../../storage/redis.js'
import type { Logger } from 'pino'
import type { RecentBlock, RecentBlockStore } from './block-follower.js'

export class RedisRecentBlocks implements RecentBlockStore {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #log: Logger

  constructor(redis: RedisClient, key: string, logger: Logger) {
    this.#redis = redis
    this.#key = key
    this.#log = logger
  }

  async load(): Promise<Map<string, RecentBlock>> {
    const blocks = new Map<string, RecentBlock>()
    for (const [hash, raw] of Object.entries(await this.#redis.hgetall(this.#key))) {
      try {
        const b = JSON.parse(raw) as RecentBlock
        if (Number.isSafeInteger(b.number) && typeof b.parentHash === 'string' && Array.isArray(b.emitted)) {
          blocks.set(hash, { ...b, hash })
          continue
        }
      } catch {
        // fall through: logged below
      }
      this.#log.warn({ hash }, 'unreadable recent block entry skipped')
    }
    return blocks
  }

  async save(blocks: readonly RecentBlock[], forget: readonly string[]): Promise<void> {
    const multi = this.#redis.multi()
    if (forget.length > 0) multi.hdel(this.#key, ...forget)
    for (const b of blocks) {
      multi.hset(this.#key, b.hash, JSON.stringify({ number: b.number, parentHash: b.parentHash, emitted: b.emitted }))
    }
    await multi.exec()
  }
}
