/**
 * blockhook's Lua scripts, registered on a connection as named commands (ioredis `defineCommand`:
 * sent once, then run by EVALSHA), each behind a typed wrapper whose arguments have names. The
 * scripts bind KEYS and ARGV to locals on their first lines, so a script reads like its wrapper.
 *
 * The delivery record's scripts keep a record, its watch's pending set and its watch's stats
 * moving together (src/delivery/delivery-store.ts says what each status change means).
 */
import type { Redis } from 'ioredis'

/**
 * The lease fence, written once: a script that starts with it does nothing and returns 0 unless
 * `lease` still holds `owner`, so a process that paused and lost the chain cannot write.
 */
const LEASE_FENCE = `
local lease, owner = KEYS[1], ARGV[1]
if redis.call('GET', lease) ~= owner then return 0 end
`

/**
 * A delivery becomes pending: it joins its watch's pending set, scored by now (ms), and lowers
 * the watch's score in the oldest-pending index (`oldest`) if needed. Leaving pending does not
 * touch the index (it would cost every delivery a read of the set's head), so a score may be
 * stale-early, and whoever reads it puts it right first (bhOldestPendingRefresh).
 */
const PENDING_LUA = `
local function becomePending(oldest, pending, id, watchId, nowMs)
  redis.call('ZADD', pending, nowMs, id)
  redis.call('ZADD', oldest, 'LT', nowMs, watchId)
end
`

const SCRIPTS = {
  bhLeaseRenew: {
    numberOfKeys: 1,
    lua: `${LEASE_FENCE}
local ttlMs = ARGV[2]
return redis.call('PEXPIRE', lease, ttlMs)`,
  },
  bhLeaseRelease: {
    numberOfKeys: 1,
    lua: `${LEASE_FENCE}
return redis.call('DEL', lease)`,
  },
  bhFencedCursorSave: {
    numberOfKeys: 2,
    lua: `${LEASE_FENCE}
local cursor, number, hash = KEYS[2], ARGV[2], ARGV[3]
redis.call('HSET', cursor, 'number', number, 'hash', hash)
-- then field value pairs kept with the cursor (the chain it was built on)
for i = 4, #ARGV, 2 do redis.call('HSET', cursor, ARGV[i], ARGV[i + 1]) end
return 1`,
  },
  /** ARGV after the owner: 'set' field value | 'del' field... */
  bhFencedMarkerWrite: {
    numberOfKeys: 2,
    lua: `${LEASE_FENCE}
local markers, op = KEYS[2], ARGV[2]
if op == 'set' then
  redis.call('HSET', markers, ARGV[3], ARGV[4])
else
  redis.call('HDEL', markers, unpack(ARGV, 3))
end
return 1`,
  },
  bhWatchCompareAndSet: {
    numberOfKeys: 2,
    lua: `
local watch, changes = KEYS[1], KEYS[2]
local expected, nextJson, feedMaxLength, watchId, chain = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', watch) ~= expected then return 0 end
redis.call('SET', watch, nextJson)
redis.call('XADD', changes, 'MAXLEN', '~', feedMaxLength, '*', 'op', 'upsert', 'watchId', watchId, 'chain', chain)
return 1`,
  },
  /** Returns 1 (taken), 0 (URL full) or -1 (the delivery is no longer pending). */
  bhUrlSlotAcquire: {
    numberOfKeys: 2,
    lua: `
local slots, delivery = KEYS[1], KEYS[2]
local nowMs, expiresAtMs, cap, token, keyTtlMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if redis.call('HGET', delivery, 'status') ~= 'pending' then return -1 end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', nowMs)
if redis.call('ZCARD', slots) >= cap then return 0 end
redis.call('ZADD', slots, expiresAtMs, token)
redis.call('PEXPIRE', slots, keyTtlMs)
return 1`,
  },
  /** Returns 1 when the stream connection took a slot, 0 when the tenant has `max` live ones. */
  bhStreamSlotTake: {
    numberOfKeys: 1,
    lua: `
local slots = KEYS[1]
local connectionId, nowMs, staleMs, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', slots, '-inf', nowMs - staleMs)
if redis.call('ZCARD', slots) >= max then return 0 end
redis.call('ZADD', slots, nowMs, connectionId)
redis.call('PEXPIRE', slots, staleMs)
return 1`,
  },
  /** Returns the ordered set's first member after the removal, or false when it is empty. */
  bhOrderedNext: {
    numberOfKeys: 1,
    lua: `
local ordered = KEYS[1]
local finishedId = ARGV[1]
redis.call('ZREM', ordered, finishedId)
return redis.call('ZRANGE', ordered, 0, 0)[1] or false`,
  },
  /**
   * Queues a replay request unless `maxBlocks` > 0 and the tenant's unfinished ones would then
   * hold more than `maxBlocks` blocks or `maxReplays` requests. Returns {} when queued, else
   * {blocks, replays} they hold now.
   */
  bhReplayAccept: {
    numberOfKeys: 4,
    lua: `
local replay, quota, queue, tenants = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local replayId, tenantId, blocks, maxBlocks, maxReplays = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if maxBlocks > 0 then
  local heldBlocks = tonumber(redis.call('HGET', quota, 'blocks') or '0')
  local heldReplays = tonumber(redis.call('HGET', quota, 'replays') or '0')
  if heldBlocks + blocks > maxBlocks or heldReplays + 1 > maxReplays then return {heldBlocks, heldReplays} end
end
-- then field value pairs of the request's hash
redis.call('HSET', replay, unpack(ARGV, 6))
redis.call('HINCRBY', quota, 'blocks', blocks)
redis.call('HINCRBY', quota, 'replays', 1)
if redis.call('RPUSH', queue, replayId) == 1 then redis.call('RPUSH', tenants, tenantId) end
return {}`,
  },
  /**
   * Moves a request forward to `nextBlock` (never back) with `events` more matches, releasing the
   * blocks passed from the quota; with `finished` ('1') it completes, releases the rest, leaves
   * its tenant's list, and its tenant leaves the chain's list when that was its last. A request
   * whose hash is gone only leaves the lists.
   */
  bhReplayAdvance: {
    numberOfKeys: 4,
    lua: `
local replay, quota, queue, tenants = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local replayId, tenantId, nextBlock, events, finished, now, keptMs =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6], ARGV[7]
local current = tonumber(redis.call('HGET', replay, 'nextBlock'))
local status = redis.call('HGET', replay, 'status')
if current and status ~= 'completed' then
  if nextBlock > current then
    redis.call('HSET', replay, 'nextBlock', nextBlock, 'status', 'running', 'updatedAt', now)
    redis.call('HINCRBY', replay, 'eventsQueued', events)
    redis.call('HINCRBY', quota, 'blocks', current - nextBlock)
    current = nextBlock
  end
  if finished then
    local toBlock = tonumber(redis.call('HGET', replay, 'toBlock'))
    if toBlock and toBlock + 1 > current then redis.call('HINCRBY', quota, 'blocks', current - toBlock - 1) end
    redis.call('HINCRBY', quota, 'replays', -1)
    redis.call('HSET', replay, 'status', 'completed', 'updatedAt', now, 'completedAt', now)
    redis.call('PEXPIRE', replay, keptMs)
  end
end
if finished or not current then
  redis.call('LREM', queue, 0, replayId)
  if redis.call('LLEN', queue) == 0 then redis.call('LREM', tenants, 0, tenantId) end
end
return 1`,
  },
  /** Takes the tenant off the chain's list if its own list is empty. */
  bhReplayTenantIdle: {
    numberOfKeys: 2,
    lua: `
local queue, tenants = KEYS[1], KEYS[2]
local tenantId = ARGV[1]
if redis.call('LLEN', queue) == 0 then redis.call('LREM', tenants, 0, tenantId) end
return 1`,
  },
  /** Returns the pending set's oldest score (ms), or false when it is empty. */
  bhOldestPendingRefresh: {
    numberOfKeys: 2,
    lua: `
local oldest, pending = KEYS[1], KEYS[2]
local watchId = ARGV[1]
local first = redis.call('ZRANGE', pending, 0, 0, 'WITHSCORES')
if not first[1] then
  redis.call('ZREM', oldest, watchId)
  return false
end
redis.call('ZADD', oldest, first[2], watchId)
return first[2]`,
  },
  /**
   * Stores a batch of events, each as the one-event case did: KEYS[1] is the oldest-pending
   * index, then 10 per event, and after 3 ARGV for the batch 13 per event (see storeDeliveries).
   * A new record is also appended to its tenant's event log (GET /events/stream) in the same
   * script, so the log holds each event once and in sequence order whatever crashes when;
   * entries older than the retention (by Redis's clock, which also makes the entry ids) are
   * trimmed. An ordered watch's pending record joins its ordered set by sequence, and is
   * answered `held` (no job) unless it is the set's first. A replay writes the payload again (it
   * may have expired) and keeps it until the record is final. Returns {outcome, jobId} per
   * event, flattened.
   */
  bhDeliveryStore: {
    lua: `${PENDING_LUA}
local oldest = KEYS[1]
local createdAt, nowMs, eventLogRetentionMs = ARGV[1], ARGV[2], ARGV[3]
local replies = {}
local time = redis.call('TIME')
local minId = (tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)) - tonumber(eventLogRetentionMs)
for e = 0, (#KEYS - 1) / 10 - 1 do
  local record, sequenceKey, log, stats, pending, watch, payloadKey, eventLog, orderedSet, streamOnlyMarker = unpack(KEYS, 1 + e * 10 + 1, 1 + e * 10 + 10)
  local id, watchId, tenantId, chain, type, payload, firstSeenAt, replayJobId, blockNumber, blockHash, eventKey, ordered, streamOnly =
    unpack(ARGV, 3 + e * 13 + 1, 3 + e * 13 + 13)
  local status = redis.call('HGET', record, 'status')
  local outcome, jobId
  if streamOnly == '1' then
    -- A watch without a url: no record and no job, only the event log, once (the marker key).
    jobId = ''
    outcome = 'streamed'
    if redis.call('SET', streamOnlyMarker, '1', 'NX', 'PX', eventLogRetentionMs) then
      local sequence = redis.call('INCR', sequenceKey)
      redis.call('XADD', eventLog, 'MINID', '~', minId, '*', 'id', id, 'watchId', watchId, 'chain', chain,
        'type', type, 'sequence', sequence, 'payload', payload)
      redis.call('PEXPIRE', eventLog, eventLogRetentionMs)
    end
  elseif status then
    if replayJobId == '' or status == 'pending' then
      outcome = status
      jobId = redis.call('HGET', record, 'jobId') or id
    else
      redis.call('HSET', record, 'status', 'pending', 'nextAttemptAt', '', 'jobId', replayJobId)
      redis.call('PERSIST', record)
      redis.call('SET', payloadKey, payload)
      becomePending(oldest, pending, id, watchId, nowMs)
      if redis.call('EXISTS', watch) == 1 then redis.call('HINCRBY', stats, 'pending', 1) end
      outcome = 'replayed'
      jobId = replayJobId
    end
  else
    jobId = replayJobId
    if jobId == '' then jobId = id end
    local sequence = redis.call('INCR', sequenceKey)
    redis.call('HSET', record, 'id', id, 'watchId', watchId, 'tenantId', tenantId, 'chain', chain,
      'type', type, 'firstSeenAt', firstSeenAt, 'createdAt', createdAt,
      'sequence', sequence, 'status', 'pending', 'attempts', '[]', 'jobId', jobId)
    if blockNumber ~= '' then redis.call('HSET', record, 'blockNumber', blockNumber) end
    if blockHash ~= '' then redis.call('HSET', record, 'blockHash', blockHash) end
    if eventKey ~= '' then redis.call('HSET', record, 'eventKey', eventKey) end
    if ordered == '1' then redis.call('HSET', record, 'ordered', '1') end
    redis.call('SET', payloadKey, payload)
    redis.call('ZADD', log, nowMs, id)
    becomePending(oldest, pending, id, watchId, nowMs)
    redis.call('HINCRBY', stats, 'matched', 1)
    redis.call('HINCRBY', stats, 'pending', 1)
    redis.call('XADD', eventLog, 'MINID', '~', minId, '*', 'id', id, 'watchId', watchId, 'chain', chain,
      'type', type, 'sequence', sequence, 'payload', payload)
    redis.call('PEXPIRE', eventLog, eventLogRetentionMs)
    outcome = 'new'
  end
  if ordered == '1' and (outcome == 'new' or outcome == 'replayed' or outcome == 'pending') then
    redis.call('ZADD', orderedSet, redis.call('HGET', record, 'sequence'), id)
    if redis.call('ZRANGE', orderedSet, 0, 0)[1] ~= id then outcome = 'held' end
  end
  replies[#replies + 1] = outcome
  replies[#replies + 1] = jobId
end
return replies`,
  },
  /**
   * failed → pending under `jobId`. Returns the status it had, or `held` for a failed record of
   * an ordered watch that now waits behind an earlier one (no job yet).
   */
  bhDeliveryRequeue: {
    numberOfKeys: 7,
    lua: `${PENDING_LUA}
local record, pending, stats, watch, payloadKey, orderedSet, oldest = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, jobId, nowMs, watchId = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', record, 'status')
if status ~= 'failed' then return status or false end
redis.call('HSET', record, 'status', 'pending', 'nextAttemptAt', '', 'jobId', jobId)
redis.call('PERSIST', record)
redis.call('PERSIST', payloadKey)
becomePending(oldest, pending, id, watchId, nowMs)
if redis.call('EXISTS', watch) == 1 then redis.call('HINCRBY', stats, 'pending', 1) end
if redis.call('HGET', record, 'ordered') == '1' then
  redis.call('ZADD', orderedSet, redis.call('HGET', record, 'sequence'), id)
  if redis.call('ZRANGE', orderedSet, 0, 0)[1] ~= id then return 'held' end
end
return 'failed'`,
  },
  /** pending → cancelled. Returns the job id to remove, or false if it was not pending. */
  bhDeliveryCancel: {
    numberOfKeys: 5,
    lua: `
local record, pending, stats, watch, payloadKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, recordRetentionMs, payloadRetentionMs = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREM', pending, id)
if redis.call('HGET', record, 'status') ~= 'pending' then return false end
redis.call('HSET', record, 'status', 'cancelled', 'nextAttemptAt', '')
redis.call('PEXPIRE', record, recordRetentionMs)
redis.call('PEXPIRE', payloadKey, payloadRetentionMs)
if redis.call('EXISTS', watch) == 1 then redis.call('HINCRBY', stats, 'pending', -1) end
return redis.call('HGET', record, 'jobId') or id`,
  },
  /**
   * Appends an attempt and applies its outcome (`delivered`, `retrying`, `failed`) to a pending
   * record, counting it in the watch's minute bucket (src/delivery/delivery-minutes.ts: field
   * increment pairs after the 13 named ARGV), in the same call, so the chart costs no extra round
   * trip. The log is trimmed here, by score, a few entries per final outcome: never a scan of it.
   * Returns {status after, failing-since ms or false}.
   */
  bhDeliveryAttempt: {
    numberOfKeys: 8,
    lua: `
local record, pending, stats, watch, failingSince, log, payloadKey, minute = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id, attempt, outcome, nextAttemptAt, nowMs, recordRetentionMs, maxAttemptsKept, failingTtlMs, failureCounts,
  payloadRetentionMs, logRetentionMs, attemptAt, minuteRetentionMs = unpack(ARGV, 1, 13)
local status = redis.call('HGET', record, 'status')
if not status then return {false, false} end
local attempts = cjson.decode(redis.call('HGET', record, 'attempts') or '[]')
table.insert(attempts, cjson.decode(attempt))
while #attempts > tonumber(maxAttemptsKept) do table.remove(attempts, 1) end
redis.call('HSET', record, 'attempts', cjson.encode(attempts))
if status ~= 'pending' then return {status, false} end
local watchExists = redis.call('EXISTS', watch) == 1
if watchExists then
  for i = 14, #ARGV, 2 do redis.call('HINCRBY', minute, ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', minute, minuteRetentionMs)
end
if outcome == 'delivered' then
  redis.call('DEL', failingSince)
elseif failureCounts == '1' then
  redis.call('SET', failingSince, nowMs, 'NX')
  redis.call('PEXPIRE', failingSince, failingTtlMs)
end
if outcome == 'retrying' then
  redis.call('HSET', record, 'nextAttemptAt', nextAttemptAt)
  return {status, redis.call('GET', failingSince)}
end
redis.call('HSET', record, 'status', outcome, 'nextAttemptAt', '')
redis.call('HDEL', record, 'jobId')
redis.call('PEXPIRE', record, recordRetentionMs)
redis.call('PEXPIRE', payloadKey, payloadRetentionMs)
redis.call('ZREM', pending, id)
redis.call('ZREMRANGEBYSCORE', log, '-inf', tonumber(nowMs) - tonumber(logRetentionMs))
if watchExists then
  redis.call('HINCRBY', stats, 'pending', -1)
  redis.call('HINCRBY', stats, outcome, 1)
  if outcome == 'delivered' then redis.call('HSET', stats, 'lastDeliveredAt', attemptAt) end
end
return {outcome, redis.call('GET', failingSince)}`,
  },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptArg = string | number
type WithScripts = Redis & Record<ScriptName, (...keysAndArgs: ScriptArg[]) => Promise<unknown>>
type ScriptDefinition = { numberOfKeys?: number; lua: string }

const registered = new WeakSet<Redis>()

/** The connection with every script defined on it (once per connection, whoever created it). */
function scripted(redis: Redis): WithScripts {
  if (!registered.has(redis)) {
    // A script without numberOfKeys takes the number of its keys as its first argument.
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS) as [string, ScriptDefinition][]) {
      redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua })
    }
    registered.add(redis)
  }
  return redis as WithScripts
}

export interface LeaseRef {
  /** The lease key. */
  lease: string
  owner: string
}

/** Renews the lease if `owner` holds it; false when it does not. */
export async function renewLease(redis: Redis, { lease, owner, ttlMs }: LeaseRef & { ttlMs: number }): Promise<boolean> {
  return (await scripted(redis).bhLeaseRenew(lease, owner, ttlMs)) === 1
}

/** Frees the lease if `owner` holds it. */
export async function releaseLease(redis: Redis, { lease, owner }: LeaseRef): Promise<void> {
  await scripted(redis).bhLeaseRelease(lease, owner)
}

/** Writes the cursor hash if `owner` holds the lease; false when it does not. */
export async function saveCursorFenced(
  redis: Redis,
  { lease, owner, cursor, number, hash, chain }: LeaseRef & { cursor: string; number: number; hash: string; chain?: Record<'chainId' | 'genesisHash', string> | undefined },
): Promise<boolean> {
  const fields = chain ? ['chainId', chain.chainId, 'genesisHash', chain.genesisHash] : []
  return (await scripted(redis).bhFencedCursorSave(lease, cursor, owner, number, hash, ...fields)) === 1
}

/** Sets one marker field, or deletes fields, if `owner` holds the lease; false when it does not. */
export async function writeMarkersFenced(
  redis: Redis,
  { lease, owner, markers, change }: LeaseRef & { markers: string; change: { set: [field: string, value: string] } | { del: string[] } },
): Promise<boolean> {
  const args = 'set' in change ? ['set', ...change.set] : ['del', ...change.del]
  return (await scripted(redis).bhFencedMarkerWrite(lease, markers, owner, ...args)) === 1
}

/** Replaces the watch JSON only if it is still `expected`, and announces the change on the feed. */
export async function compareAndSetWatch(
  redis: Redis,
  { watch, changes, expected, next, feedMaxLength, watchId, chain }:
    { watch: string; changes: string; expected: string; next: string; feedMaxLength: number; watchId: string; chain: string },
): Promise<boolean> {
  return (await scripted(redis).bhWatchCompareAndSet(watch, changes, expected, next, feedMaxLength, watchId, chain)) === 1
}

/** Takes a slot of the URL unless it has `cap` live ones or the delivery is no longer pending. */
export async function acquireUrlSlot(
  redis: Redis,
  { slots, delivery, nowMs, expiresAtMs, cap, token, keyTtlMs }:
    { slots: string; delivery: string; nowMs: number; expiresAtMs: number; cap: number; token: string; keyTtlMs: number },
): Promise<'taken' | 'full' | 'not-pending'> {
  const reply = await scripted(redis).bhUrlSlotAcquire(slots, delivery, nowMs, expiresAtMs, cap, token, keyTtlMs)
  return reply === 1 ? 'taken' : reply === -1 ? 'not-pending' : 'full'
}

/** Takes an event-stream connection slot of a tenant unless `max` live ones (heartbeat within `staleMs`) are taken. */
export async function takeStreamSlot(
  redis: Redis,
  { slots, connectionId, nowMs, staleMs, max }: { slots: string; connectionId: string; nowMs: number; staleMs: number; max: number },
): Promise<boolean> {
  return (await scripted(redis).bhStreamSlotTake(slots, connectionId, nowMs, staleMs, max)) === 1
}

/**
 * An ordered watch's delivery is finished (delivered, failed, cancelled): it leaves the watch's
 * ordered set. Returns the set's first member now (the next to send), if any.
 */
export async function takeNextOrdered(redis: Redis, { ordered, finishedId }: { ordered: string; finishedId: string }): Promise<string | undefined> {
  const next = (await scripted(redis).bhOrderedNext(ordered, finishedId)) as string | null
  return next ?? undefined
}

/**
 * Puts a watch's entry in the oldest-pending index right (see delivery-store.ts): the score of
 * its oldest pending delivery, or no entry when it has none. Returns that score, if any.
 */
export async function refreshOldestPending(
  redis: Redis, { oldest, pending, watchId }: { oldest: string; pending: string; watchId: string },
): Promise<number | undefined> {
  const score = (await scripted(redis).bhOldestPendingRefresh(oldest, pending, watchId)) as string | null
  return score === null ? undefined : Number(score)
}

interface ReplayQueueKeys {
  /** The request's hash, the tenant's quota hash, its list on the chain, the chain's list of tenants. */
  replay: string
  quota: string
  queue: string
  tenants: string
}

/**
 * Queues a replay request (its hash `fields`) unless `limits` are given and the tenant's
 * unfinished requests would pass them. Returns undefined when queued, else what they hold now.
 */
export async function acceptReplay(
  redis: Redis,
  { replay, quota, queue, tenants, replayId, tenantId, blocks, limits, fields }: ReplayQueueKeys & {
    replayId: string; tenantId: string; blocks: number; limits: { blocks: number; replays: number } | undefined
    fields: Record<string, string | number>
  },
): Promise<{ blocks: number; replays: number } | undefined> {
  const reply = (await scripted(redis).bhReplayAccept(
    replay, quota, queue, tenants, replayId, tenantId, blocks, limits?.blocks ?? 0, limits?.replays ?? 0, ...Object.entries(fields).flat(),
  )) as number[]
  return reply.length === 0 ? undefined : { blocks: reply[0]!, replays: reply[1]! }
}

/** Moves a replay request forward, and completes it with `finished` (see the script). */
export async function advanceReplay(
  redis: Redis,
  { replay, quota, queue, tenants, replayId, tenantId, nextBlock, events, finished, now, keptMs }: ReplayQueueKeys & {
    replayId: string; tenantId: string; nextBlock: number; events: number; finished: boolean; now: string; keptMs: number
  },
): Promise<void> {
  await scripted(redis).bhReplayAdvance(replay, quota, queue, tenants, replayId, tenantId, nextBlock, events, finished ? '1' : '', now, keptMs)
}

/** Takes a tenant whose list on the chain is empty off the chain's list. */
export async function dropIdleReplayTenant(
  redis: Redis, { queue, tenants, tenantId }: Pick<ReplayQueueKeys, 'queue' | 'tenants'> & { tenantId: string },
): Promise<void> {
  await scripted(redis).bhReplayTenantIdle(queue, tenants, tenantId)
}

/** The keys of one delivery record and of its watch, as the delivery scripts take them. */
export interface DeliveryRecordKeys {
  record: string
  payload: string
  /** The watch's pending deliveries, scored by when each became pending. */
  pending: string
  stats: string
  /** The watch itself: stats are touched only while it exists. */
  watch: string
}

export interface StoredEventKeys extends DeliveryRecordKeys {
  sequence: string
  log: string
  eventLog: string
  ordered: string
  streamOnlyMarker: string
}

export interface StoredEventArgs {
  id: string
  watchId: string
  tenantId: string
  chain: string
  type: string
  payload: string
  firstSeenAt: number
  /** '' when not a replay. */
  replayJobId: string
  /** The next three are '' when the event has none. */
  blockNumber: string
  blockHash: string
  eventKey: string
  ordered: boolean
  /** A watch without a url: the event goes to the event log once, nothing else. */
  streamOnly: boolean
}

/** Stores a batch of events (see bhDeliveryStore); one reply per event: its outcome and job id. */
export async function storeDeliveries(
  redis: Redis,
  { oldestPending, createdAt, nowMs, eventLogRetentionMs, events }: {
    /** The oldest-pending index (keys.oldestPending). */
    oldestPending: string
    createdAt: string
    /** When the new pending ones became pending. */
    nowMs: number
    eventLogRetentionMs: number
    events: readonly { keys: StoredEventKeys; args: StoredEventArgs }[]
  },
): Promise<{ outcome: string; jobId: string }[]> {
  const keys: string[] = [oldestPending]
  const args: ScriptArg[] = [createdAt, nowMs, eventLogRetentionMs]
  for (const { keys: k, args: a } of events) {
    keys.push(k.record, k.sequence, k.log, k.stats, k.pending, k.watch, k.payload, k.eventLog, k.ordered, k.streamOnlyMarker)
    args.push(
      a.id, a.watchId, a.tenantId, a.chain, a.type, a.payload, a.firstSeenAt, a.replayJobId,
      a.blockNumber, a.blockHash, a.eventKey, a.ordered ? '1' : '', a.streamOnly ? '1' : '',
    )
  }
  const flat = (await scripted(redis).bhDeliveryStore(keys.length, ...keys, ...args)) as string[]
  const replies: { outcome: string; jobId: string }[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) replies.push({ outcome: flat[i]!, jobId: flat[i + 1]! })
  return replies
}

/** failed → pending under `jobId`; the status it had (`held`: it waits behind an earlier ordered one), null without a record. */
export async function requeueFailedDelivery(
  redis: Redis,
  { keys, ordered, oldestPending, deliveryId, watchId, jobId, nowMs }:
    { keys: DeliveryRecordKeys; ordered: string; oldestPending: string; deliveryId: string; watchId: string; jobId: string; nowMs: number },
): Promise<string | null> {
  return (await scripted(redis).bhDeliveryRequeue(
    keys.record, keys.pending, keys.stats, keys.watch, keys.payload, ordered, oldestPending, deliveryId, jobId, nowMs, watchId,
  )) as string | null
}

/** pending → cancelled; the job id to remove, or null when it was not pending. */
export async function cancelPendingDelivery(
  redis: Redis,
  { keys, deliveryId, recordRetentionMs, payloadRetentionMs }:
    { keys: DeliveryRecordKeys; deliveryId: string; recordRetentionMs: number; payloadRetentionMs: number },
): Promise<string | null> {
  return (await scripted(redis).bhDeliveryCancel(
    keys.record, keys.pending, keys.stats, keys.watch, keys.payload, deliveryId, recordRetentionMs, payloadRetentionMs,
  )) as string | null
}

export interface AttemptArgs {
  deliveryId: string
  attemptJson: string
  /** When the attempt was made (ISO): the stats' lastDeliveredAt. */
  attemptAt: string
  outcome: 'delivered' | 'retrying' | 'failed'
  /** ISO, or '' when no retry follows. */
  nextAttemptAt: string
  nowMs: number
  /** How long the record and its payload are kept once this outcome is final. */
  recordRetentionMs: number
  payloadRetentionMs: number
  maxAttemptsKept: number
  failingTtlMs: number
  /** Whether a failure counts towards disabling the watch (false when no request was made). */
  failureCounts: boolean
  logRetentionMs: number
}

/** Records an attempt (see bhDeliveryAttempt): the status after (null without a record) and failing-since ms. */
export async function recordDeliveryAttempt(
  redis: Redis,
  { keys, failingSince, log, minute, minuteRetentionMs, minuteIncrements, attempt: a }: {
    keys: DeliveryRecordKeys
    failingSince: string
    log: string
    /** The watch's bucket for this minute, how long it lives, and what to add to its fields. */
    minute: string
    minuteRetentionMs: number
    minuteIncrements: readonly [field: string, by: number][]
    attempt: AttemptArgs
  },
): Promise<[status: string | null, failingSince: string | null]> {
  return (await scripted(redis).bhDeliveryAttempt(
    keys.record, keys.pending, keys.stats, keys.watch, failingSince, log, keys.payload, minute,
    a.deliveryId, a.attemptJson, a.outcome, a.nextAttemptAt, a.nowMs, a.recordRetentionMs, a.maxAttemptsKept,
    a.failingTtlMs, a.failureCounts ? '1' : '0', a.payloadRetentionMs, a.logRetentionMs, a.attemptAt, minuteRetentionMs,
    ...minuteIncrements.flat(),
  )) as [string | null, string | null]
}
