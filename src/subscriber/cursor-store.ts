/**
 * A chain's cursor `(number, hash)` in Redis (for Solana: the slot, hash empty). The write is
 * fenced by the lease: only its holder moves the cursor, so a paused process that lost the lease
 * cannot move it back behind the new holder.
 */
import type { RedisClient } from '../storage/redis.js'
import { BlockhookError } from '../domain/errors.js'
import { saveCursorFenced } from '../storage/redis-scripts.js'
import type { ChainLease } from './lease.js'

export interface Cursor { number: number; hash: string }

/** The chain a cursor was built on (EVM: chain id and genesis hash), kept in the cursor's hash. */
export type CursorChain = Record<'chainId' | 'genesisHash', string>

export const leaseLost = () => new BlockhookError('BH_LEASE_LOST', 'this process no longer holds the chain lease')

export class RedisCursorStore {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #lease: ChainLease

  constructor(redis: RedisClient, key: string, lease: ChainLease) {
    this.#redis = redis
    this.#key = key
    this.#lease = lease
  }

  async load(): Promise<Cursor | undefined> {
    const stored = await this.#redis.hgetall(this.#key)
    const number = Number(stored.number)
    if (stored.number === undefined || !Number.isSafeInteger(number) || number < 0) return undefined
    return { number, hash: stored.hash ?? '' }
  }

  /** The chain the saved cursor was built on, if it was recorded. */
  async loadChain(): Promise<CursorChain | undefined> {
    const [chainId, genesisHash] = await this.#redis.hmget(this.#key, 'chainId', 'genesisHash')
    return chainId && genesisHash ? { chainId, genesisHash } : undefined
  }

  /** Moves the cursor (and records the chain it is on, when given), if this process holds the lease. */
  async save(cursor: Cursor, chain?: CursorChain): Promise<void> {
    const { key: lease, owner } = this.#lease
    if (!(await saveCursorFenced(this.#redis, { lease, owner, cursor: this.#key, number: cursor.number, hash: cursor.hash, chain }))) throw leaseLost()
  }
}
