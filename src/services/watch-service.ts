/**
 * The watch rules in one place: what a create or a change must satisfy beyond its JSON Schema,
 * every status transition (the routes', the delivery worker's 410 and disable-after, the Solana
 * leader's completed; the rules are in domain/watch-status.ts), deletion with its queued
 * deliveries, stats and counts. Routes, the delivery worker and the chains call it; it is the
 * only writer of watches besides tests.
 */
import type { RedisClient } from '../storage/redis.js'
import type { AlertOutbox } from '../alerts/alert-outbox.js'
import type { ChainConfig, Commitment, Config } from '../config/config.js'
import type { DeliveryQueue } from '../delivery/delivery-queue.js'
import { ReplayQueue } from '../delivery/replay-requests.js'
import { badRequest, hasCode } from '../domain/errors.js'
import { newId, newWebhookSecret } from '../domain/ids.js'
import { checkWebhookUrl, type Resolver } from '../domain/url-policy.js'
import { applyUserChange, completed, disabled, type UserStatus } from '../domain/watch-status.js'
import { WATCH_STATUSES, type Watch, type WatchStatus, type WatchType } from '../domain/watch-types.js'
import { filterError } from '../api/validation.js'
import {
  addedAddresses, backfillRange, changeAddresses, checkBatchable, chainSettings, checkChainSettings, checkTypeFitsChain, findChain, normalizeFilter,
} from '../api/watch-input.js'
import type { RedisKeys } from '../storage/keys.js'
import { watchNotFound, type WatchListQuery, type WatchStore, type WatchToSend } from '../storage/watch-store.js'
import { readKnownHead } from '../subscriber/chain-status.js'

/** The old secret keeps signing beside the new one for 24 h (README, "Secrets"). */
export const SECRET_ROTATION_GRACE_MS = 24 * 60 * 60 * 1000
/** Watches read per MGET while counting statuses: bounded memory however many there are. */
const COUNT_BATCH = 500

export interface CreateWatchInput {
  chain: string
  type: WatchType
  filter: Watch['filter']
  /** Without one the watch sends no webhooks: its events reach only the event stream. */
  url?: string
  confirmations?: number
  commitment?: Commitment
  description?: string
  metadata?: Record<string, unknown>
  /** EVM: `block` sends one evm.batch webhook per block with matches instead of one per event. */
  batch?: 'none' | 'block'
  /** One webhook of the watch in flight at a time, in sequence order. */
  ordered?: boolean
  /** EVM: also deliver every match from this block on (a backfill request queued for the chain's subscriber). */
  fromBlock?: number
}

export type UpdateWatchInput = Partial<Omit<CreateWatchInput, 'chain' | 'type' | 'fromBlock' | 'batch' | 'ordered'>> & { status?: UserStatus }

export interface AddressChange { add?: string[]; remove?: string[]; fromBlock?: number }

export interface WatchStats {
  matched: number
  delivered: number
  failed: number
  pending: number
  lastDeliveredAt: string | null
}

export interface WatchServiceDeps {
  chains: readonly ChainConfig[]
  allowPrivateUrls: Config['allowPrivateUrls']
  /** Reads the head a chain's subscriber reported and queues backfill requests for it. */
  redis: RedisClient
  keys: RedisKeys
  store: WatchStore
  deliveryQueue: DeliveryQueue
  /** DNS for the webhook URL policy; the system resolver when absent (tests inject one). */
  resolve?: Resolver
  /** Where `alert.watch_disabled` goes when operator alerts are configured. */
  alerts?: AlertOutbox
  now?: () => number
}

function toCount(text: string | undefined): number {
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : 0
}

function watchStats(stored: Record<string, string>): WatchStats {
  return {
    matched: toCount(stored.matched),
    delivered: toCount(stored.delivered),
    failed: toCount(stored.failed),
    pending: toCount(stored.pending),
    lastDeliveredAt: stored.lastDeliveredAt || null,
  }
}

export class WatchService {
  readonly #d: WatchServiceDeps
  readonly #now: () => number
  /** Where `fromBlock` backfills are queued for the chain's subscriber. */
  readonly #replays: ReplayQueue

  /** The service over `store` and `deliveryQueue` with the chains and URL policy of `config`. */
  static forConfig(
    config: Config, redis: RedisClient, keys: RedisKeys, store: WatchStore, deliveryQueue: DeliveryQueue, resolve?: Resolver, alerts?: AlertOutbox,
  ): WatchService {
    return new WatchService({ chains: config.chains, allowPrivateUrls: config.allowPrivateUrls, redis, keys, store, deliveryQueue, resolve, alerts })
  }

  constructor(deps: WatchServiceDeps) {
    this.#d = deps
    this.#now = deps.now ?? Date.now
    this.#replays = new ReplayQueue(deps.redis, deps.keys)
  }

  #nowIso(): string {
    return new Date(this.#now()).toISOString()
  }

  async #checkUrl(text: string): Promise<void> {
    const verdict = await checkWebhookUrl(text, { allowPrivateUrls: this.#d.allowPrivateUrls, resolve: this.#d.resolve })
    if (!verdict.ok) throw badRequest(verdict.code, `body/url ${verdict.reason}`)
  }

  // --- reads ------------------------------------------------------------------------------------

  get(watchId: string): Promise<Watch | undefined> {
    return this.#d.store.get(watchId)
  }

  /** A tenant sees only its own watches: another tenant's id reads as not found. */
  getForTenant(tenantId: string, watchId: string): Promise<Watch> {
    return this.#d.store.getForTenant(tenantId, watchId)
  }

  /** A page of the tenant's watches, each with its stats (the dashboard's list shows them). */
  async list(tenantId: string, query: WatchListQuery): Promise<{ items: (Watch & { stats: WatchStats })[]; nextCursor: string | null }> {
    const page = await this.#d.store.list(tenantId, query)
    const stats = await this.#d.store.stats(page.items.map((watch) => watch.id))
    return { items: page.items.map((watch, i) => ({ ...watch, stats: watchStats(stats[i] ?? {}) })), nextCursor: page.nextCursor }
  }

  async stats(watchId: string): Promise<WatchStats> {
    const [stats] = await this.#d.store.stats([watchId])
    return watchStats(stats ?? {})
  }

  /** How many watches of the configured chains are in each status. */
  async countByStatus(): Promise<Record<WatchStatus, number>> {
    const counts = Object.fromEntries(WATCH_STATUSES.map((s) => [s, 0])) as Record<WatchStatus, number>
    for (const chain of this.#d.chains) {
      const ids = await this.#d.store.idsOfChain(chain.id)
      for (let i = 0; i < ids.length; i += COUNT_BATCH) {
        for (const watch of await this.#d.store.getMany(ids.slice(i, i + COUNT_BATCH))) counts[watch.status] += 1
      }
    }
    return counts
  }

  // --- changes by a tenant ----------------------------------------------------------------------

  /**
   * A new EVM watch starts after the head blockhook knows now (`startBlock`): blocks up to it are
   * older than the watch, and only a `fromBlock` backfill delivers them. Returns the backfill's
   * replay id when one was requested.
   */
  async create(tenantId: string, input: CreateWatchInput): Promise<{ watch: Watch; secret: string; replayId?: string }> {
    const chain = findChain(this.#d.chains, input.chain)
    checkTypeFitsChain(input.type, chain)
    const settings = chainSettings(input.type, chain, input)
    const filter = normalizeFilter(input.type, input.filter)
    if (input.batch === 'block') checkBatchable(input.type)
    if (input.url !== undefined) await this.#checkUrl(input.url)
    const head = chain.type === 'evm' ? await readKnownHead(this.#d.redis, this.#d.keys, chain.id) : undefined
    const backfill = input.fromBlock === undefined ? undefined : backfillRange(input.type, input.fromBlock, head)
    const now = this.#nowIso()
    const watch = {
      id: newId('wch'),
      tenantId,
      chain: chain.id,
      type: input.type,
      filter,
      ...(input.url !== undefined && { url: input.url }),
      status: 'active',
      ...(head !== undefined && { startBlock: head + 1 }),
      ...settings,
      ...(input.description !== undefined && { description: input.description }),
      ...(input.metadata !== undefined && { metadata: input.metadata }),
      ...(input.batch !== undefined && { batch: input.batch }),
      ...(input.ordered !== undefined && { ordered: input.ordered }),
      createdAt: now,
      updatedAt: now,
    } as Watch
    const secret = newWebhookSecret()
    await this.#d.store.create(watch, secret)
    if (!backfill) return { watch, secret }
    const replayId = await this.#replays.request({ watchId: watch.id, tenantId, chain: watch.chain, ...backfill, backfill: {} })
    return { watch, secret, replayId }
  }

  async update(tenantId: string, watchId: string, input: UpdateWatchInput): Promise<Watch> {
    const current = await this.#d.store.getForTenant(tenantId, watchId)
    checkChainSettings(current.type, input)
    let filter: Watch['filter'] | undefined
    if (input.filter !== undefined) {
      const error = filterError(current.type, input.filter)
      if (error) throw badRequest('BH_VALIDATION', error)
      filter = normalizeFilter(current.type, input.filter)
    }
    if (input.url !== undefined) await this.#checkUrl(input.url)
    return this.#d.store.update(current.id, (watch) => {
      if (watch.tenantId !== tenantId) throw watchNotFound()
      return applyUserChange(watch, { ...input, ...(filter && { filter }) } as Partial<Watch> & { status?: UserStatus }, this.#nowIso())
    })
  }

  /**
   * Adds and removes addresses of every address list of the filter; returns how many it now holds.
   * With `fromBlock`, the matches the added addresses bring from that block to the head are
   * requested as a backfill (returned), the other addresses' are not sent again.
   */
  async changeAddresses(
    tenantId: string, watchId: string, change: AddressChange,
  ): Promise<{ count: number; backfill?: { replayId: string; fromBlock: number; toBlock: number; added: number } }> {
    let range: { fromBlock: number; toBlock: number } | undefined
    if (change.fromBlock !== undefined) {
      const current = await this.#d.store.getForTenant(tenantId, watchId)
      range = backfillRange(current.type, change.fromBlock, await readKnownHead(this.#d.redis, this.#d.keys, current.chain))
    }
    let count = 0
    let added: string[] = []
    const updated = await this.#d.store.update(watchId, (watch) => {
      if (watch.tenantId !== tenantId) throw watchNotFound()
      const changed = changeAddresses(watch, change)
      count = changed.count
      added = addedAddresses(watch, changed.filter)
      return { ...watch, filter: changed.filter, updatedAt: this.#nowIso() } as Watch
    })
    if (!range || added.length === 0) return { count }
    const replayId = await this.#replays.request({ watchId: updated.id, tenantId, chain: updated.chain, ...range, backfill: { addresses: added } })
    return { count, backfill: { replayId, ...range, added: added.length } }
  }

  /**
   * Removes the watch (the change feed tells subscribers to stop matching it), then cancels its
   * queued deliveries. Returns how many were cancelled.
   */
  async delete(watch: Watch): Promise<number> {
    await this.#d.store.delete(watch)
    return this.#d.deliveryQueue.cancelWatch(watch.id)
  }

  /** Deletes every watch of a tenant; returns how many there were. */
  async deleteAllOfTenant(tenantId: string): Promise<number> {
    const watches = await this.#d.store.getMany(await this.#d.store.idsOfTenant(tenantId))
    for (const watch of watches) await this.delete(watch)
    return watches.length
  }

  // --- secrets ----------------------------------------------------------------------------------

  async currentSecret(tenantId: string, watchId: string): Promise<string> {
    const watch = await this.#d.store.getForTenant(tenantId, watchId)
    return this.#d.store.currentSecret(watch.id)
  }

  async rotateSecret(tenantId: string, watchId: string): Promise<string> {
    const watch = await this.#d.store.getForTenant(tenantId, watchId)
    const secret = newWebhookSecret()
    await this.#d.store.rotateSecret(watch.id, secret, SECRET_ROTATION_GRACE_MS, this.#now())
    return secret
  }

  /** The secrets a webhook is signed with now; undefined when the watch was deleted. */
  async signingSecrets(watchId: string): Promise<string[] | undefined> {
    try {
      return await this.#d.store.signingSecrets(watchId, this.#now())
    } catch (err) {
      if (hasCode(err, 'BH_WATCH_NOT_FOUND')) return undefined
      throw err
    }
  }

  /** Each watch with the secrets to sign with now, in one read (undefined for a deleted one); for the delivery worker. */
  toSend(watchIds: readonly string[]): Promise<PromiseSettledResult<WatchToSend | undefined>[]> {
    return this.#d.store.toSend(watchIds, this.#now())
  }

  // --- transitions by blockhook -----------------------------------------------------------------

  /**
   * Disables an active watch and clears its failing-since mark. Returns false when there was
   * nothing to disable: deleted, paused, disabled or completed meanwhile.
   */
  async disable(watchId: string, reason: string): Promise<boolean> {
    let watch: Watch
    try {
      watch = await this.#d.store.update(watchId, (current) => disabled(current, reason, this.#nowIso()))
    } catch (err) {
      if (hasCode(err, 'BH_WATCH_NOT_ACTIVE') || hasCode(err, 'BH_WATCH_NOT_FOUND')) return false
      throw err
    }
    await this.#d.deliveryQueue.store.clearFailingSince(watchId)
    await this.#d.alerts?.push({
      type: 'alert.watch_disabled',
      data: { watchId, tenantId: watch.tenantId, chain: watch.chain, url: watch.url ?? null, reason },
    })
    return true
  }

  /** A one-shot watch fired; a watch deleted meanwhile is left deleted. */
  async complete(watchId: string): Promise<void> {
    try {
      await this.#d.store.update(watchId, (current) => completed(current, this.#nowIso()))
    } catch (err) {
      if (!hasCode(err, 'BH_WATCH_NOT_FOUND')) throw err
    }
  }
}
