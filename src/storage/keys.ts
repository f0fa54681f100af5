import { compactWebhookId, sha256Hex } from '../domain/ids.js'
import { CLUSTER_SLOTS, keySlot } from './key-slot.js'

/** Delivery shards on a Redis Cluster: 2 per master of a 3-master cluster, 1 per master of 6. */
export const CLUSTER_DELIVERY_SHARDS = 6

export interface KeyLayout {
  /** A Redis Cluster: keys are spread over hash tags (see below); a single Redis keeps one tag. */
  cluster: boolean
  /** Delivery shards; CLUSTER_DELIVERY_SHARDS on a cluster and 1 on a single Redis unless given. */
  shards?: number
}

/** What names a webhook URL in its keys (`urlInFlight`): 128 bits of its SHA-256, a short fixed-length name for any URL (one may be long and carry a token). */
export function urlKeyHash(webhookUrl: string): string {
  return sha256Hex(webhookUrl).slice(0, 32)
}

/** FNV-1a (32 bits) of a watch id: cheap, stable across processes and versions, spreads ids evenly. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash
}

/**
 * Shard k's hash tag falls in the k-th of `shards` equal slot ranges: redis-cli gives each
 * master an equal run of slots, so with 6 shards a 3-master cluster holds 2 per master, a
 * 2-master one 3 and a 6-master one 1. The tag is `{prefix:s<k>}`, or `{prefix:s<k>.<n>}` with
 * the first n that lands in range (a few tries: a tag hits a range 1 time in `shards`).
 */
function shardTags(prefix: string, shards: number): string[] {
  if (shards === 1) return [`{${prefix}}`]
  return Array.from({ length: shards }, (_, k) => {
    const from = Math.floor((k * CLUSTER_SLOTS) / shards)
    const to = Math.floor(((k + 1) * CLUSTER_SLOTS) / shards)
    for (let n = 0; ; n++) {
      const tag = n === 0 ? `{${prefix}:s${k}}` : `{${prefix}:s${k}.${n}}`
      const slot = keySlot(tag)
      if (slot >= from && slot < to) return tag
    }
  })
}

/**
 * Every Redis key blockhook uses comes from here (bullmq's queue-keys style). Keys that a script
 * or a transaction touches together share a hash tag, so they share a cluster slot.
 *
 * On a single Redis every key is under one tag, `{prefix}`, with one delivery shard: the names
 * are those blockhook always used. On a Redis Cluster (README, "Redis Cluster"):
 * - the control plane stays under `{prefix}`: tenants, API keys, rate limits, watches, their
 *   secrets and indexes, the watch-changes feed, replays, alerts;
 * - a chain's own keys (cursor, lease, status, recent blocks, gap markers) under
 *   `{prefix:chain:<id>}`, so each chain's subscriber writes to a master of its own choosing;
 * - a webhook URL's in-flight slots under `{prefix:url:<hash>}`;
 * - everything of a delivery under its watch's shard tag (shardTag): the record and payload,
 *   the watch's sequence, stats, minute buckets, log, pending and ordered sets, failing-since,
 *   the shard's oldest-pending index, stream-only markers, a tenant's event log for the shard,
 *   and the shard's BullMQ queue. A watch lives on one shard, so its deliveries stay in order.
 */
export function redisKeys(prefix: string, layout: KeyLayout = { cluster: false }) {
  const p = `{${prefix}}`
  const shards = layout.shards ?? (layout.cluster ? CLUSTER_DELIVERY_SHARDS : 1)
  if (!Number.isSafeInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`)
  const tags = shardTags(prefix, shards)
  const shardTag = (shard: number) => {
    const tag = tags[shard]
    if (tag === undefined) throw new RangeError(`no delivery shard ${shard} (there are ${shards})`)
    return tag
  }
  const shardOf = (watchId: string) => (shards === 1 ? 0 : fnv1a(watchId) % shards)
  const w = (watchId: string) => `${shardTag(shardOf(watchId))}:watch:${watchId}`
  // On a single Redis these come out as `{prefix}:chain:<id>` and `{prefix}:url:<hash>`, today's names.
  const chain = (chainId: string) => (layout.cluster ? `{${prefix}:chain:${chainId}}` : `${p}:chain:${chainId}`)
  const url = (urlHash: string) => (layout.cluster ? `{${prefix}:url:${urlHash}}` : `${p}:url:${urlHash}`)
  // A record key costs its name's bytes (rounded up by the allocator) once per delivery: with the
  // compact id, `{blockhook}:d:<27>` is 41 bytes, within the allocator's 48-byte class (a shard
  // tag adds 3 to 5). An id webhookId() did not make keeps its full name, apart from every compact one.
  const record = (deliveryId: string, shard: number) => {
    const compact = compactWebhookId(deliveryId)
    return compact === undefined ? `${shardTag(shard)}:delivery:${deliveryId}` : `${shardTag(shard)}:d:${compact}`
  }
  return {
    cluster: layout.cluster,
    /** The control plane's tag, `{prefix}`; also what the process metrics snapshots are kept under. */
    controlTag: p,
    /** How many delivery shards there are, each with its own BullMQ queue. */
    deliveryShards: shards,
    /** The shard a watch's deliveries live on. */
    shardOf,
    /** Shard `shard`'s hash tag, also the BullMQ `prefix` of its queue: its keys become `<tag>:<queue>:…`. */
    shardTag,

    tenant: (tenantId: string) => `${p}:tenant:${tenantId}`,
    tenants: `${p}:tenants`,
    /** Hash: field = SHA-256 of an API key, value = `<tenantId> <prefix>`. */
    apiKeys: `${p}:api-keys`,
    tenantApiKeys: (tenantId: string) => `${p}:tenant:${tenantId}:api-keys`,
    rateLimit: (keyHash: string, second: number) => `${p}:rate:${keyHash}:${second}`,

    watch: (watchId: string) => `${p}:watch:${watchId}`,
    /** Sorted set (all scores 0) of `<createdAt> <watchId>`, so ZRANGE BYLEX pages in creation order. */
    watchesByTenant: (tenantId: string) => `${p}:tenant:${tenantId}:watches`,
    /** Set of the ids of every watch, any status, on a chain. */
    watchesByChain: (chain: string) => `${p}:chain:${chain}:watches`,
    /** Hash: current, previous, previousExpiresAt (ms). Values sealed by SecretBox. */
    watchSecrets: (watchId: string) => `${p}:watch:${watchId}:secrets`,
    watchSequence: (watchId: string) => `${w(watchId)}:sequence`,
    /** Hash: matched, delivered, failed, pending, lastDeliveredAt. */
    watchStats: (watchId: string) => `${w(watchId)}:stats`,
    /** Hash of a watch's delivery attempts in one minute (index since the epoch), see delivery/delivery-minutes.ts. */
    watchMinute: (watchId: string, minute: number) => `${w(watchId)}:minute:${minute}`,
    /**
     * The watch's delivery log, in time buckets (see delivery-store.ts): a sorted set of the
     * buckets' start times (ms), and per bucket a list of compact delivery ids in creation order,
     * which expires whole once its newest record may be gone.
     */
    watchLog: (watchId: string) => `${w(watchId)}:log`,
    watchLogBucket: (watchId: string, bucketStartMs: number | string) => `${w(watchId)}:log:${bucketStartMs}`,
    /** Stream of watch changes: { op: upsert | delete, watchId, chain }. */
    watchChanges: `${p}:watch-changes`,

    /**
     * Stream of a tenant's matched events of watches on one shard (a reader merges every shard's), for GET /events/stream and the payloads of delivered
     * records: one entry per new event (fields id, watchId, body: the stored webhook body, see
     * delivery-record.ts), trimmed by age (MINID).
     */
    tenantEventLog: (tenantId: string, shard: number) => `${shardTag(shard)}:tenant:${tenantId}:event-log`,
    /** Sorted set: open event-stream connection id → last heartbeat (ms), for maxConnectionsPerTenant. */
    tenantStreamConnections: (tenantId: string) => `${p}:tenant:${tenantId}:stream-connections`,

    /** String marker, on its watch's shard: an event of a watch without a url went to the event log (kept as long as the log). */
    streamOnlyEvent: (eventId: string, shard: number) => `${shardTag(shard)}:stream-only:${eventId}`,

    /** String on its watch's shard: the delivery record without its payload, one packed value (see delivery-record.ts). */
    delivery: record,
    /**
     * String: the stored webhook body while the record is pending or failed, or delivered and no
     * longer in its tenant's event log; it expires before the record (delivery.payloadRetention).
     */
    deliveryPayload: (deliveryId: string, shard: number) => `${record(deliveryId, shard)}:p`,
    /**
     * Strings with a short expiry written by /readyz and the memory watch: whether Redis accepts
     * writes (it refuses them when out of memory). One under the control plane's tag and one under
     * each shard's, so on a cluster every master holding blockhook's data is asked, not one of them.
     */
    writeProbes: [...new Set([p, ...tags])].map((tag) => `${tag}:write-probe`),

    /** Hash: number, hash of the last block whose deliveries are all queued. */
    chainCursor: (chainId: string) => `${chain(chainId)}:cursor`,
    chainLease: (chainId: string) => `${chain(chainId)}:lease`,
    /** Hash written by the subscriber holding the lease, read by /admin/status. */
    chainStatus: (chainId: string) => `${chain(chainId)}:status`,
    /** List of the tenants with replay requests queued on the chain, turned round by its subscriber (see replay-requests.ts). */
    chainReplayTenants: (chain: string) => `${p}:chain:${chain}:replay-tenants`,
    /** List of a tenant's replay request ids on a chain, first come first served. */
    tenantReplays: (tenantId: string, chain: string) => `${p}:tenant:${tenantId}:replays:${chain}`,
    /** Hash: blocks and replays a tenant's unfinished replay requests still hold (its quota). */
    tenantReplayQuota: (tenantId: string) => `${p}:tenant:${tenantId}:replay-quota`,
    /** Hash: one replay request and its progress (replay-requests.ts). */
    replay: (replayId: string) => `${p}:replay:${replayId}`,
    /**
     * Hash: field = block hash, value = JSON {number, parentHash, emitted: [webhook-id]} of the
     * unfinalized blocks the EVM follower keeps, so a reorg found after a restart can still retract.
     */
    chainRecentBlocks: (chainId: string) => `${chain(chainId)}:recent-blocks`,
    /**
     * Hash per Solana chain: field = SHA-256 of a subscription's key, value = what gap recovery
     * resumes from (the last logs signature, or the hash of the last account state, delivered).
     */
    solanaGapMarkers: (chainId: string) => `${chain(chainId)}:solana-gap`,

    /** Per-URL in-flight counter for maxConcurrencyPerUrl across worker processes, by `urlKeyHash(url)`. */
    urlInFlight: (urlHash: string) => `${url(urlHash)}:in-flight`,
    /**
     * Sorted set of a watch's delivery ids still pending (queued or retrying), scored by when each
     * became pending (ms): for cancelling them, and for the oldest one.
     */
    watchPendingDeliveries: (watchId: string) => `${w(watchId)}:pending-deliveries`,
    /** Sorted set per shard: id of each watch of the shard with pending deliveries → when its oldest became pending (ms); the backlog alert reads every shard's. */
    oldestPending: (shard: number) => `${shardTag(shard)}:oldest-pending`,
    /**
     * Sorted set (score = sequence) of an ordered watch's deliveries not yet finished; only the
     * first has a BullMQ job, and finishing it queues the next (see delivery-queue.ts).
     */
    watchOrderedDeliveries: (watchId: string) => `${w(watchId)}:ordered-deliveries`,
    /** Operator alerts: the lease of the one process that sends them, what held at the last check, and the list waiting to be sent. */
    alertsLease: `${p}:alerts:lease`,
    alertsConditions: `${p}:alerts:conditions`,
    alertsOutbox: `${p}:alerts:outbox`,
    /** Unix ms of the first failed attempt since the watch's last 2xx (expires while quiet). */
    watchFailingSince: (watchId: string) => `${w(watchId)}:failing-since`,
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>
