/**
 * Watches in Redis: the rule (JSON), its indexes by tenant and by chain, its signing secrets, and
 * the change feed that tells subscribers about every create, update and delete within a second.
 *
 * The feed is a Redis stream. `loadChain` reads the feed's last id in the same MULTI as the
 * chain's watch ids, so a follower that starts from that id sees every change made after the
 * snapshot and nothing in between is lost; replaying a change twice is harmless because a
 * follower re-reads the watch by id.
 */
import { pipelinePerSlot, type RedisClient } from './redis.js'
import { BlockhookError } from '../domain/errors.js'
import type { Watch, WatchStatus, WatchType } from '../domain/watch-types.js'
import type { RedisKeys } from './keys.js'
import { compareAndSetWatch, readWatchesToSend, type StoredWatchToSend } from './redis-scripts.js'
import type { SecretBox } from './secret-box.js'

export type WatchChangeOp = 'upsert' | 'delete'

export interface WatchChange {
  /** Stream entry id: pass the last one seen back to `followChanges` to resume. */
  position: string
  op: WatchChangeOp
  watchId: string
  chain: string
}

export interface WatchListQuery {
  chain?: string
  type?: WatchType
  status?: WatchStatus
  limit: number
  cursor?: string
}

/** Feed entries kept; a follower further behind than this reloads its chain (see followChanges). */
const FEED_MAX_LENGTH = 100_000
const MAX_UPDATE_ATTEMPTS = 20
/** Watches whose last read `toSend` keeps decoded; past it the cache starts again (it only saves CPU). */
const MAX_DECODED_TO_SEND = 10_000

/** A watch as a delivery needs it: the rule and the secrets to sign with now (see signingSecrets). */
export interface WatchToSend {
  /** Shared between reads of the same stored value: read-only. */
  watch: Watch
  secrets: readonly string[]
}

interface DecodedToSend {
  stored: StoredWatchToSend
  watch: Watch
  current: string
  previous: string | undefined
}

export const watchNotFound = () => new BlockhookError('BH_WATCH_NOT_FOUND', 'watch not found', 404)

function listMember(watch: Pick<Watch, 'id' | 'createdAt'>): string {
  return `${watch.createdAt} ${watch.id}`
}

export class WatchStore {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  readonly #secrets: SecretBox
  /** By watch id, the last value `toSend` read and what it decoded to: the same bytes are not parsed or decrypted again. */
  readonly #decoded = new Map<string, DecodedToSend>()

  constructor(redis: RedisClient, keys: RedisKeys, secrets: SecretBox) {
    this.#redis = redis
    this.#keys = keys
    this.#secrets = secrets
  }

  async create(watch: Watch, secret: string): Promise<void> {
    const k = this.#keys
    await this.#redis
      .multi()
      .set(k.watch(watch.id), JSON.stringify(watch))
      .zadd(k.watchesByTenant(watch.tenantId), 0, listMember(watch))
      .sadd(k.watchesByChain(watch.chain), watch.id)
      .hset(k.watchSecrets(watch.id), 'current', this.#secrets.seal(secret))
      .xadd(k.watchChanges, 'MAXLEN', '~', FEED_MAX_LENGTH, '*', 'op', 'upsert', 'watchId', watch.id, 'chain', watch.chain)
      .exec()
  }

  async get(watchId: string): Promise<Watch | undefined> {
    const raw = await this.#redis.get(this.#keys.watch(watchId))
    return raw === null ? undefined : (JSON.parse(raw) as Watch)
  }

  async getMany(watchIds: readonly string[]): Promise<Watch[]> {
    if (watchIds.length === 0) return []
    const raws = await this.#redis.mget(watchIds.map((id) => this.#keys.watch(id)))
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as Watch)
  }

  /** A tenant sees only its own watches: another tenant's id reads as not found. */
  async getForTenant(tenantId: string, watchId: string): Promise<Watch> {
    const watch = await this.get(watchId)
    if (!watch || watch.tenantId !== tenantId) throw watchNotFound()
    return watch
  }

  async list(tenantId: string, query: WatchListQuery): Promise<{ items: Watch[]; nextCursor: string | null }> {
    const key = this.#keys.watchesByTenant(tenantId)
    const items: Watch[] = []
    let from = query.cursor ? `(${Buffer.from(query.cursor, 'base64url').toString('utf8')}` : '-'
    const page = Math.max(query.limit, 100)
    for (;;) {
      const members = await this.#redis.zrangebylex(key, from, '+', 'LIMIT', 0, page)
      if (members.length === 0) return { items, nextCursor: null }
      const watches = await this.getMany(members.map((m) => m.slice(m.indexOf(' ') + 1)))
      for (const watch of watches) {
        if (query.chain && watch.chain !== query.chain) continue
        if (query.type && watch.type !== query.type) continue
        if (query.status && watch.status !== query.status) continue
        items.push(watch)
        if (items.length === query.limit) {
          return { items, nextCursor: Buffer.from(listMember(watch)).toString('base64url') }
        }
      }
      if (members.length < page) return { items, nextCursor: null }
      from = `(${members[members.length - 1]}`
    }
  }

  /**
   * Read-modify-write with compare-and-set: the write happens only if the stored JSON is still
   * what `change` saw, so concurrent PATCHes from several api processes (and a worker disabling
   * the watch) never overwrite each other. Not WATCH/MULTI: that would need a connection per
   * request. `change` may throw to refuse.
   */
  async update(watchId: string, change: (watch: Watch) => Watch): Promise<Watch> {
    const key = this.#keys.watch(watchId)
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const raw = await this.#redis.get(key)
      if (raw === null) throw watchNotFound()
      const next = change(JSON.parse(raw) as Watch)
      const written = await compareAndSetWatch(this.#redis, {
        watch: key, changes: this.#keys.watchChanges,
        expected: raw, next: JSON.stringify(next), feedMaxLength: FEED_MAX_LENGTH, watchId: next.id, chain: next.chain,
      })
      if (written) return next
    }
    throw new BlockhookError('BH_CONFLICT', 'the watch is being changed by another request, try again', 409)
  }

  /**
   * The watch and its indexes go in one transaction; then its sequence and stats, which are on its
   * delivery shard (another slot on a cluster). Once the stats are gone, late delivery writes
   * leave the counters alone (delivery-store.ts).
   */
  async delete(watch: Watch): Promise<void> {
    const k = this.#keys
    await this.#redis
      .multi()
      .del(k.watch(watch.id), k.watchSecrets(watch.id))
      .zrem(k.watchesByTenant(watch.tenantId), listMember(watch))
      .srem(k.watchesByChain(watch.chain), watch.id)
      .xadd(k.watchChanges, 'MAXLEN', '~', FEED_MAX_LENGTH, '*', 'op', 'delete', 'watchId', watch.id, 'chain', watch.chain)
      .exec()
    await this.#redis.del(k.watchSequence(watch.id), k.watchStats(watch.id))
  }

  /** The delivery counters of watches as stored (matched, delivered, failed, pending, lastDeliveredAt), in order, in one round trip (per shard). */
  async stats(watchIds: readonly string[]): Promise<Record<string, string>[]> {
    const keys = watchIds.map((id) => this.#keys.watchStats(id))
    return (await pipelinePerSlot(this.#redis, keys, (key) => key, (pipeline, key) => pipeline.hgetall(key))) as Record<string, string>[]
  }

  /** Every watch id, any status, on a chain. */
  async idsOfChain(chain: string): Promise<string[]> {
    return this.#redis.smembers(this.#keys.watchesByChain(chain))
  }

  /** Every watch id of a tenant, for deleting the tenant. */
  async idsOfTenant(tenantId: string): Promise<string[]> {
    const members = await this.#redis.zrange(this.#keys.watchesByTenant(tenantId), '0', '-1')
    return members.map((m) => m.slice(m.indexOf(' ') + 1))
  }

  // --- secrets --------------------------------------------------------------------------------

  async currentSecret(watchId: string): Promise<string> {
    const sealed = await this.#redis.hget(this.#keys.watchSecrets(watchId), 'current')
    if (sealed === null) throw watchNotFound()
    return this.#secrets.open(sealed)
  }

  /** The secrets a webhook is signed with now: the current one, then the one rotated out if still in grace. */
  async signingSecrets(watchId: string, nowMs = Date.now()): Promise<string[]> {
    const stored = await this.#redis.hgetall(this.#keys.watchSecrets(watchId))
    if (!stored.current) throw watchNotFound()
    const secrets = [this.#secrets.open(stored.current)]
    if (stored.previous && previousStillSigns(stored.previousExpiresAt, nowMs)) secrets.push(this.#secrets.open(stored.previous))
    return secrets
  }

  /**
   * Each watch with its signing secrets, read now in one command (undefined for a deleted one), in
   * the order of `watchIds`; a watch whose stored value cannot be decoded is rejected alone. What
   * is decoded is kept per watch and reused while the stored value is the same, so a delivery pays
   * for reading a watch, not for parsing and decrypting it.
   */
  async toSend(watchIds: readonly string[], nowMs = Date.now()): Promise<PromiseSettledResult<WatchToSend | undefined>[]> {
    const k = this.#keys
    const stored = await readWatchesToSend(this.#redis, watchIds.map((id) => ({ watch: k.watch(id), secrets: k.watchSecrets(id) })))
    return watchIds.map((id, i) => {
      try {
        return { status: 'fulfilled', value: this.#decodeToSend(id, stored[i]!, nowMs) }
      } catch (reason) {
        return { status: 'rejected', reason }
      }
    })
  }

  #decodeToSend(watchId: string, value: StoredWatchToSend, nowMs: number): WatchToSend | undefined {
    if (value.json === null || value.current === null) return undefined
    let decoded = this.#decoded.get(watchId)
    if (!decoded || !sameStoredWatch(decoded.stored, value)) {
      if (this.#decoded.size >= MAX_DECODED_TO_SEND) this.#decoded.clear()
      decoded = {
        stored: value, watch: JSON.parse(value.json) as Watch, current: this.#secrets.open(value.current),
        previous: value.previous === null ? undefined : this.#secrets.open(value.previous),
      }
      this.#decoded.set(watchId, decoded)
    }
    const inGrace = decoded.previous !== undefined && previousStillSigns(value.previousExpiresAt, nowMs)
    return { watch: decoded.watch, secrets: inGrace ? [decoded.current, decoded.previous!] : [decoded.current] }
  }

  async rotateSecret(watchId: string, next: string, graceMs: number, nowMs = Date.now()): Promise<void> {
    const key = this.#keys.watchSecrets(watchId)
    const current = await this.#redis.hget(key, 'current')
    if (current === null) throw watchNotFound()
    await this.#redis.hset(key, {
      current: this.#secrets.seal(next),
      previous: current,
      previousExpiresAt: String(nowMs + graceMs),
    })
  }

  // --- the change feed --------------------------------------------------------------------------

  /** Every watch of a chain (any status) and the feed position to follow changes from. */
  async loadChain(chain: string): Promise<{ watches: Watch[]; position: string }> {
    const result = await this.#redis
      .multi()
      .xrevrange(this.#keys.watchChanges, '+', '-', 'COUNT', 1)
      .smembers(this.#keys.watchesByChain(chain))
      .exec()
    if (!result) throw new Error('loadChain: transaction aborted')
    const [[feedErr, last], [idsErr, ids]] = result as [[Error | null, [string, string[]][]], [Error | null, string[]]]
    if (feedErr) throw feedErr
    if (idsErr) throw idsErr
    const position = last[0]?.[0] ?? '0-0'
    return { watches: await this.getMany(ids), position }
  }

  /**
   * Calls `onChanges` with every change after `position` until `signal` aborts. Uses its own
   * connection, because XREAD BLOCK holds the one it runs on.
   */
  async followChanges(
    reader: RedisClient,
    position: string,
    signal: AbortSignal,
    onChanges: (changes: WatchChange[]) => Promise<void>,
  ): Promise<void> {
    let from = position
    while (!signal.aborted) {
      const reply = (await reader.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', this.#keys.watchChanges, from)) as
        | [string, [string, string[]][]][]
        | null
      const entries = reply?.[0]?.[1] ?? []
      if (entries.length === 0) continue
      const changes: WatchChange[] = []
      for (const [id, fields] of entries) {
        const record: Record<string, string> = {}
        for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
        if ((record.op === 'upsert' || record.op === 'delete') && record.watchId && record.chain) {
          changes.push({ position: id, op: record.op, watchId: record.watchId, chain: record.chain })
        }
      }
      from = entries[entries.length - 1]![0]
      if (changes.length > 0) await onChanges(changes)
    }
  }
}

/** After a rotation the previous secret signs beside the new one until `previousExpiresAt` (ms, as stored). */
function previousStillSigns(previousExpiresAt: string | null | undefined, nowMs: number): boolean {
  return Number(previousExpiresAt) > nowMs
}

function sameStoredWatch(a: StoredWatchToSend, b: StoredWatchToSend): boolean {
  return a.json === b.json && a.current === b.current && a.previous === b.previous && a.previousExpiresAt === b.previousExpiresAt
}
