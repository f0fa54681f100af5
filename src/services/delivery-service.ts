/**
 * The delivery rules a tenant reaches through the API: read one delivery with its payload, list a
 * watch's deliveries and its attempts per minute, retry a failed one, replay a block range and
 * follow its progress, send a test event now, and the queue's job counts for /admin/status.
 * Routes call it and never see the store or the queue.
 */
import type { RedisClient } from '../storage/redis.js'
import { MAX_MINUTES, minuteOf, type DeliveryMinute } from '../delivery/delivery-minutes.js'
import { DeliveryMinutesStore } from '../delivery/delivery-minutes-store.js'
import type { DeliveryQueue } from '../delivery/delivery-queue.js'
import type { DeliveryRecord, DeliverySummary } from '../delivery/delivery-record.js'
import type { DeliveryListQuery } from '../delivery/delivery-store.js'
import type { WebhookHttpClient } from '../delivery/http-client.js'
import { MAX_REPLAY_BLOCKS, ReplayQueue, type ReplayProgress } from '../delivery/replay-requests.js'
import { sendTestWebhook, type TestSendResult } from '../delivery/test-send.js'
import { badRequest, BlockhookError } from '../domain/errors.js'
import { chainTypeOf } from '../domain/watch-types.js'
import type { RedisKeys } from '../storage/keys.js'
import { watchNotFound } from '../storage/watch-store.js'
import type { WatchService } from './watch-service.js'

export interface DeliveryServiceDeps {
  /** Attempts per minute, and where replay requests are queued for the chains' subscribers. */
  redis: RedisClient
  keys: RedisKeys
  deliveryQueue: DeliveryQueue
  watches: WatchService
  /** Sends test events: the same URL policy, timeout and agents as the worker's. */
  httpClient: WebhookHttpClient
  now?: () => number
}

export interface QueueCounts {
  waiting: number
  active: number
  delayed: number
  failed: number
}

export class DeliveryService {
  readonly #d: DeliveryServiceDeps
  readonly #minutes: DeliveryMinutesStore
  readonly #replays: ReplayQueue
  readonly #now: () => number

  constructor(deps: DeliveryServiceDeps) {
    this.#d = deps
    this.#minutes = new DeliveryMinutesStore(deps.redis, deps.keys)
    this.#replays = new ReplayQueue(deps.redis, deps.keys)
    this.#now = deps.now ?? Date.now
  }

  /** A tenant sees only deliveries of its own watches. */
  getForTenant(tenantId: string, deliveryId: string): Promise<DeliveryRecord> {
    return this.#d.deliveryQueue.store.getForTenant(tenantId, deliveryId)
  }

  /** The webhook body as sent, parsed; null once delivery.payloadRetention has passed. */
  payloadOf(record: DeliveryRecord): { payload: unknown; payloadExpired: boolean } {
    if (record.body === null) return { payload: null, payloadExpired: true }
    return { payload: JSON.parse(record.body) as unknown, payloadExpired: false }
  }

  async listForWatch(tenantId: string, watchId: string, query: DeliveryListQuery): Promise<{ items: DeliverySummary[]; nextCursor: string | null }> {
    const watch = await this.#d.watches.getForTenant(tenantId, watchId)
    return this.#d.deliveryQueue.store.listByWatch(watch.id, query)
  }

  /** The watch's attempts (delivered, failed) and event-to-delivery latency in each of the last `minutes` minutes, this one included. */
  async minutesForWatch(tenantId: string, watchId: string, minutes: number): Promise<DeliveryMinute[]> {
    const watch = await this.#d.watches.getForTenant(tenantId, watchId)
    return this.#minutes.read(watch.id, minuteOf(this.#now()), Math.min(Math.max(minutes, 1), MAX_MINUTES))
  }

  /** A failed delivery of a watch that still exists goes back to the queue with fresh attempts. */
  async retry(tenantId: string, deliveryId: string): Promise<DeliveryRecord> {
    const record = await this.getForTenant(tenantId, deliveryId)
    if (!(await this.#d.watches.get(record.watchId))) {
      throw new BlockhookError('BH_WATCH_DELETED', 'the watch of this delivery was deleted', 409)
    }
    const previous = await this.#d.deliveryQueue.requeueFailed(record.id, record.watchId)
    if (previous !== 'failed') {
      throw new BlockhookError('BH_DELIVERY_NOT_FAILED', `only a failed delivery can be retried; this one is ${previous ?? 'gone'}`, 409)
    }
    return record
  }

  /** Asks the chain's subscriber to scan the range again; returns the replay id (429 past the tenant's quota). */
  async replay(tenantId: string, watchId: string, fromBlock: number, toBlock: number): Promise<string> {
    const watch = await this.#d.watches.getForTenant(tenantId, watchId)
    if (chainTypeOf(watch.type) !== 'evm') throw badRequest('BH_REPLAY_UNSUPPORTED', `replay is for EVM watches; this one is ${watch.type}`)
    if (toBlock < fromBlock) throw badRequest('BH_VALIDATION', 'body/toBlock must be at least body/fromBlock')
    if (toBlock - fromBlock + 1 > MAX_REPLAY_BLOCKS) {
      throw badRequest('BH_VALIDATION', `body/toBlock must be within ${MAX_REPLAY_BLOCKS} blocks of body/fromBlock`)
    }
    return this.#replays.request({ watchId: watch.id, tenantId, chain: watch.chain, fromBlock, toBlock })
  }

  /** A replay (or backfill) of the tenant's watch, with how far it got. */
  async replayProgress(tenantId: string, watchId: string, replayId: string): Promise<ReplayProgress> {
    const watch = await this.#d.watches.getForTenant(tenantId, watchId)
    const progress = await this.#replays.get(replayId)
    if (!progress || progress.watchId !== watch.id) throw new BlockhookError('BH_REPLAY_NOT_FOUND', 'replay not found', 404)
    return progress
  }

  /** One webhook.test event to the watch URL now, outside the queue. */
  async sendTest(tenantId: string, watchId: string): Promise<TestSendResult> {
    const watch = await this.#d.watches.getForTenant(tenantId, watchId)
    if (watch.url === undefined) throw badRequest('BH_WATCH_HAS_NO_URL', 'the watch has no url to send a test webhook to; set one with PATCH /watches/:id')
    const secrets = await this.#d.watches.signingSecrets(watch.id)
    if (!secrets) throw watchNotFound() // deleted between the two reads
    return sendTestWebhook(this.#d.httpClient, { ...watch, url: watch.url }, secrets)
  }

  async queueCounts(): Promise<QueueCounts> {
    return this.#d.deliveryQueue.jobCounts()
  }

  close(): void {
    this.#d.httpClient.close()
  }
}
