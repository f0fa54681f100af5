/**
 * The chain's entry of /admin/status (README, "API tour"), written by the subscriber that leads the chain to
 * the hash `keys.chainStatus(chain)`: type, connected ('true'/'false'), endpoint (scheme and host
 * only), headNumber, headHash, lastHeadAt (ISO), reconnects, subscriptions, and updatedAt (Unix
 * ms). Heads arrive often, so writes are coalesced to at most one per interval. While the status
 * says connected it is rewritten every few seconds even when nothing changed: a heartbeat, so that
 * a subscriber that died without a word (SIGKILL) stops looking connected (see
 * `STATUS_STALE_AFTER_MS`).
 */
import type { RedisClient } from '../storage/redis.js'
import type { Logger } from 'pino'

export interface ChainStatus {
  type: string
  connected: boolean
  endpoint: string
  headNumber?: number
  headHash?: string
  lastHeadAt?: string
  reconnects: number
  subscriptions: number
}

const WRITE_INTERVAL_MS = 500
/** A connected chain's status is rewritten this often. */
export const HEARTBEAT_MS = 5_000
/** A status not rewritten for this long is a dead subscriber's: shown as not connected. */
export const STATUS_STALE_AFTER_MS = 15_000

export class ChainStatusPublisher {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #log: Logger
  #status: ChainStatus
  #timer: NodeJS.Timeout | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()

  constructor(redis: RedisClient, key: string, initial: ChainStatus, logger: Logger) {
    this.#redis = redis
    this.#key = key
    this.#status = initial
    this.#log = logger
  }

  update(change: Partial<ChainStatus>): void {
    this.#status = { ...this.#status, ...change }
    if (this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.flush()
    }, WRITE_INTERVAL_MS)
    this.#timer.unref()
  }

  /** Writes now; resolves when written (errors are logged: status is best effort). */
  flush(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearTimeout(this.#heartbeat)
    this.#heartbeat = undefined
    const s = this.#status
    if (s.connected) {
      this.#heartbeat = setTimeout(() => void this.flush(), HEARTBEAT_MS)
      this.#heartbeat.unref()
    }
    const fields: Record<string, string> = {
      type: s.type,
      connected: String(s.connected),
      endpoint: s.endpoint,
      reconnects: String(s.reconnects),
      subscriptions: String(s.subscriptions),
      updatedAt: String(Date.now()),
    }
    if (s.headNumber !== undefined) fields.headNumber = String(s.headNumber)
    if (s.headHash !== undefined) fields.headHash = s.headHash
    if (s.lastHeadAt !== undefined) fields.lastHeadAt = s.lastHeadAt
    this.#writing = this.#writing
      .then(() => this.#redis.hset(this.#key, fields))
      .then(() => undefined, (err: unknown) => this.#log.warn({ err }, 'could not write the chain status'))
    return this.#writing
  }
}

/**
 * The newest block blockhook knows of on a chain: the head its subscriber last reported, or the
 * cursor if that is further (a status write is coalesced, a cursor write is not). Undefined before
 * any subscriber has followed the chain (its first start begins at the node's head anyway).
 */
export async function readKnownHead(redis: RedisClient, keys: { chainStatus(chain: string): string; chainCursor(chain: string): string }, chain: string): Promise<number | undefined> {
  const [head, cursor] = await Promise.all([redis.hget(keys.chainStatus(chain), 'headNumber'), redis.hget(keys.chainCursor(chain), 'number')])
  const known = [head, cursor].filter((n): n is string => n !== null && /^[0-9]+$/.test(n)).map(Number)
  return known.length > 0 ? Math.max(...known) : undefined
}
