import { compactWebhookId } from '../domain/ids.js'

/**
 * Every Redis key blockhook uses comes from here (bullmq's queue-keys style). The prefix is wrapped
 * in braces, a Redis Cluster hash tag, so every key (BullMQ's too) lands in one slot and the
 * multi-key scripts work on a cluster.
 */
export function redisKeys(prefix: string) {
  const p = `{${prefix}}`
  // A record key costs its name's bytes (rounded up by the allocator) once per delivery: with the
  // compact id, `{blockhook}:d:<27>` is 41 bytes, within the allocator's 48-byte class. An id
  // webhookId() did not make keeps its full name, apart from every compact one.
  const record = (deliveryId: string) => {
    const compact = compactWebhookId(deliveryId)
    return compact === undefined ? `${p}:delivery:${deliveryId}` : `${p}:d:${compact}`
  }
  return {
    /** BullMQ's `prefix` option: queue keys become `{prefix}:<queue>:…`. */
    queuePrefix: p,

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
    watchSequence: (watchId: string) => `${p}:watch:${watchId}:sequence`,
    /** Hash: matched, delivered, failed, pending, lastDeliveredAt. */
    watchStats: (watchId: string) => `${p}:watch:${watchId}:stats`,
    /** Hash of a watch's delivery attempts in one minute (index since the epoch), see delivery/delivery-minutes.ts. */
    watchMinute: (watchId: string, minute: number) => `${p}:watch:${watchId}:minute:${minute}`,
    /**
     * The watch's delivery log, in time buckets (see delivery-store.ts): a sorted set of the
     * buckets' start times (ms), and per bucket a list of compact delivery ids in creation order,
     * which expires whole once its newest record may be gone.
     */
    watchLog: (watchId: string) => `${p}:watch:${watchId}:log`,
    watchLogBucket: (watchId: string, bucketStartMs: number | string) => `${p}:watch:${watchId}:log:${bucketStartMs}`,
    /** Stream of watch changes: { op: upsert | delete, watchId, chain }. */
    watchChanges: `${p}:watch-changes`,

    /**
     * Stream of a tenant's matched events, for GET /events/stream and the payloads of delivered
     * records: one entry per new event (fields id, watchId, body: the stored webhook body, see
     * delivery-record.ts), trimmed by age (MINID).
     */
    tenantEventLog: (tenantId: string) => `${p}:tenant:${tenantId}:event-log`,
    /** Sorted set: open event-stream connection id → last heartbeat (ms), for maxConnectionsPerTenant. */
    tenantStreamConnections: (tenantId: string) => `${p}:tenant:${tenantId}:stream-connections`,

    /** String marker: an event of a watch without a url went to the event log (kept as long as the log). */
    streamOnlyEvent: (eventId: string) => `${p}:stream-only:${eventId}`,

    /** String: the delivery record without its payload, one packed value (see delivery-record.ts). */
    delivery: record,
    /**
     * String: the stored webhook body while the record is pending or failed, or delivered and no
     * longer in its tenant's event log; it expires before the record (delivery.payloadRetention).
     */
    deliveryPayload: (deliveryId: string) => `${record(deliveryId)}:p`,
    /** String with a short expiry written by /readyz: whether Redis accepts writes (it refuses them when out of memory). */
    writeProbe: `${p}:write-probe`,

    /** Hash: number, hash of the last block whose deliveries are all queued. */
    chainCursor: (chain: string) => `${p}:chain:${chain}:cursor`,
    chainLease: (chain: string) => `${p}:chain:${chain}:lease`,
    /** Hash written by the subscriber holding the lease, read by /admin/status. */
    chainStatus: (chain: string) => `${p}:chain:${chain}:status`,
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
    chainRecentBlocks: (chain: string) => `${p}:chain:${chain}:recent-blocks`,
    /**
     * Hash per Solana chain: field = SHA-256 of a subscription's key, value = what gap recovery
     * resumes from (the last logs signature, or the hash of the last account state, delivered).
     */
    solanaGapMarkers: (chain: string) => `${p}:chain:${chain}:solana-gap`,

    /** Per-URL in-flight counter for maxConcurrencyPerUrl across worker processes. */
    urlInFlight: (urlHash: string) => `${p}:url:${urlHash}:in-flight`,
    /**
     * Sorted set of a watch's delivery ids still pending (queued or retrying), scored by when each
     * became pending (ms): for cancelling them, and for the oldest one.
     */
    watchPendingDeliveries: (watchId: string) => `${p}:watch:${watchId}:pending-deliveries`,
    /** Sorted set: id of each watch with pending deliveries → when its oldest became pending (ms); the backlog alert reads it. */
    oldestPending: `${p}:oldest-pending`,
    /**
     * Sorted set (score = sequence) of an ordered watch's deliveries not yet finished; only the
     * first has a BullMQ job, and finishing it queues the next (see delivery-queue.ts).
     */
    watchOrderedDeliveries: (watchId: string) => `${p}:watch:${watchId}:ordered-deliveries`,
    /** Operator alerts: the lease of the one process that sends them, what held at the last check, and the list waiting to be sent. */
    alertsLease: `${p}:alerts:lease`,
    alertsConditions: `${p}:alerts:conditions`,
    alertsOutbox: `${p}:alerts:outbox`,
    /** Unix ms of the first failed attempt since the watch's last 2xx (expires while quiet). */
    watchFailingSince: (watchId: string) => `${p}:watch:${watchId}:failing-since`,
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>
