/**
 * blockhook's Lua scripts, registered on a connection as named commands (ioredis `defineCommand`:
 * sent once, then run by EVALSHA), each behind a typed wrapper whose arguments have names. The
 * scripts bind KEYS and ARGV to locals on their first lines, so a script reads like its wrapper.
 *
 * The delivery record's scripts keep a record, its watch's pending set and its watch's stats
 * moving together (src/delivery/delivery-store.ts says what each status change means).
 *
 * Every script's KEYS share one hash tag (src/storage/keys.ts), so on a Redis Cluster each runs
 * on one master: a lease with its chain's cursor or markers, a watch with the control plane's
 * change feed, a delivery with the rest of its watch's shard, a URL's slots alone. The delivery
 * scripts count stats only while the watch's stats hash exists (it goes when the watch is
 * deleted), a test on the shard itself, since the watch's own key is on the control plane.
 */
import { FIRST_ATTEMPT_FIELD, RECORD_FIELD as F, RECORD_SEPARATOR, STATUS_CODE } from '../delivery/delivery-record.js'
import type { RedisClient } from './redis.js'

/**
 * The lease fence, written once: a script that starts with it does nothing and returns 0 unless
 * `lease` still holds `owner`, so a process that paused and lost the chain cannot write.
 */
const LEASE_FENCE = `
local lease, owner = KEYS[1], ARGV[1]
if redis.call('GET', lease) ~= owner then return 0 end
`

/**
 * What the delivery scripts share: the packed record's fields (src/delivery/delivery-record.ts
 * names their positions), status codes, base 36 and Redis's clock in ms.
 */
const RECORD_LUA = `
local SEPARATOR = '\\${RECORD_SEPARATOR.charCodeAt(0)}'
local PENDING, DELIVERED, FAILED, CANCELLED = '${STATUS_CODE.pending}', '${STATUS_CODE.delivered}', '${STATUS_CODE.failed}', '${STATUS_CODE.cancelled}'
local function fields(value)
  local f = {}
  for part in string.gmatch(value .. SEPARATOR, '(.-)' .. SEPARATOR) do f[#f + 1] = part end
  return f
end
local function packed(f) return table.concat(f, SEPARATOR) end
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function base36(n)
  local sign, text = '', ''
  if n < 0 then sign, n = '-', -n end
  repeat
    local d = n % 36
    text = string.sub(DIGITS, d + 1, d + 1) .. text
    n = (n - d) / 36
  until n == 0
  return sign .. text
end
local function redisTimeMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
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
  /**
   * For each watch (KEYS: its JSON and its secrets hash, in pairs): the JSON, then the secrets'
   * current, previous and previousExpiresAt; false (nil) where there is none.
   */
  bhWatchesToSend: {
    lua: `
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call('GET', KEYS[i])
  local secrets = redis.call('HMGET', KEYS[i + 1], 'current', 'previous', 'previousExpiresAt')
  for j = 1, 3 do out[#out + 1] = secrets[j] end
end
return out`,
  },
  /** Returns 1 (taken) or 0 (URL full). */
  bhUrlSlotAcquire: {
    numberOfKeys: 1,
    lua: `
local slots = KEYS[1]
local nowMs, expiresAtMs, cap, token, keyTtlMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
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
   * Stores a batch of events of one shard: KEYS[1] is the shard's oldest-pending index, then 10
   * per event, and after the batch's 5 ARGV 11 per event (see storeDeliveries). Outcomes: `new`, `replayed`, `held` (an ordered watch's record waiting for
   * an earlier one: no job for now), `streamed` (a watch without a url), or the status code of a
   * record that was there. A new event gets its watch's next sequence and is appended to its
   * tenant's event log (GET /events/stream) in the same script, so the log holds each event once
   * and in sequence order whatever crashes when; log entries older than the retention (by
   * Redis's clock, which also makes the entry ids and so `createdAt`) are trimmed. The body is
   * written to the payload key too, which keeps it while the record may need it. A replay writes
   * the body again (it may have expired) and keeps it until the record is final. Returns
   * {outcome, jobId} per event, flattened.
   */
  bhDeliveryStore: {
    lua: `${RECORD_LUA}${PENDING_LUA}
local oldest = KEYS[1]
local eventLogRetentionMs, bucketStartMs, bucketTtlMs, bucketsKeptFromMs, nowMs = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local minId = redisTimeMs() - tonumber(eventLogRetentionMs)
local replies = {}
for e = 0, (#KEYS - 1) / 10 - 1 do
  local record, payloadKey, pending, stats, sequenceKey, logBucket, logIndex, eventLog, orderedSet, streamOnlyMarker =
    unpack(KEYS, 1 + e * 10 + 1, 1 + e * 10 + 10)
  local id, logEntry, watchId, bodyHead, bodyTail, firstSeenAt, replayJobId, staticFields, ordered, streamOnly, tenantId =
    unpack(ARGV, 5 + e * 11 + 1, 5 + e * 11 + 11)
  local outcome, jobId, sequence
  local value = redis.call('GET', record)
  if streamOnly == '1' then
    -- A watch without a url: no record and no job, only the event log, once. The marker key holds
    -- "<tenantId> <entry id>", so that a reorg can read the event back to retract it.
    outcome, jobId = 'streamed', ''
    if redis.call('EXISTS', streamOnlyMarker) == 0 then
      sequence = redis.call('INCR', sequenceKey)
      local entry = redis.call('XADD', eventLog, 'MINID', '~', minId, '*', 'id', id, 'watchId', watchId, 'body', bodyHead .. sequence .. bodyTail)
      redis.call('PEXPIRE', eventLog, eventLogRetentionMs)
      redis.call('SET', streamOnlyMarker, tenantId .. ' ' .. entry, 'PX', eventLogRetentionMs)
    end
  elseif value then
    local f = fields(value)
    sequence = tonumber(f[${F.sequence}], 36)
    if replayJobId == '' or f[${F.status}] == PENDING then
      outcome = f[${F.status}]
      jobId = f[${F.jobId}] ~= '' and f[${F.jobId}] or id
    else
      -- The body written again is this event's now: the log's copy no longer stands for it.
      f[${F.status}], f[${F.jobId}], f[${F.nextAttemptAt}], f[${F.logSeq}] = PENDING, replayJobId, '', ''
      redis.call('SET', record, packed(f))
      redis.call('SET', payloadKey, bodyHead .. string.format('%d', sequence) .. bodyTail)
      becomePending(oldest, pending, id, watchId, nowMs)
      if redis.call('EXISTS', stats) == 1 then redis.call('HINCRBY', stats, 'pending', 1) end
      outcome, jobId = 'replayed', replayJobId
    end
  else
    sequence = redis.call('INCR', sequenceKey)
    local body = bodyHead .. sequence .. bodyTail
    local entry = redis.call('XADD', eventLog, 'MINID', '~', minId, '*', 'id', id, 'watchId', watchId, 'body', body)
    redis.call('PEXPIRE', eventLog, eventLogRetentionMs)
    local dash = string.find(entry, '-', 1, true)
    local createdAt = tonumber(string.sub(entry, 1, dash - 1))
    redis.call('SET', record, packed({
      PENDING, replayJobId, '', base36(createdAt), base36(tonumber(string.sub(entry, dash + 1))), base36(sequence), ordered,
      base36(createdAt - tonumber(firstSeenAt)), staticFields,
    }))
    redis.call('SET', payloadKey, body)
    -- A bucket's first entry: it expires whole once its newest record may be gone; the index
    -- of buckets loses, here and never by a scan, those already gone.
    if redis.call('RPUSH', logBucket, logEntry) == 1 then
      redis.call('PEXPIRE', logBucket, bucketTtlMs)
      redis.call('ZADD', logIndex, bucketStartMs, bucketStartMs)
      redis.call('ZREMRANGEBYSCORE', logIndex, '-inf', '(' .. bucketsKeptFromMs)
      redis.call('PEXPIRE', logIndex, bucketTtlMs)
    end
    becomePending(oldest, pending, id, watchId, nowMs)
    redis.call('HINCRBY', stats, 'matched', 1)
    redis.call('HINCRBY', stats, 'pending', 1)
    outcome = 'new'
    jobId = replayJobId ~= '' and replayJobId or id
  end
  if ordered == '1' and (outcome == 'new' or outcome == 'replayed' or outcome == PENDING) then
    redis.call('ZADD', orderedSet, sequence, id)
    if redis.call('ZRANGE', orderedSet, 0, 0)[1] ~= id then outcome = 'held' end
  end
  replies[#replies + 1] = outcome
  replies[#replies + 1] = jobId
end
return replies`,
  },
  /**
   * failed → pending under `jobId`. Returns the status code it had, or `held` for a failed
   * record of an ordered watch that now waits behind an earlier one (no job yet).
   */
  bhDeliveryRequeue: {
    numberOfKeys: 6,
    lua: `${RECORD_LUA}${PENDING_LUA}
local record, payloadKey, pending, stats, orderedSet, oldest = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, jobId, nowMs, watchId = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local value = redis.call('GET', record)
if not value then return false end
local f = fields(value)
if f[${F.status}] ~= FAILED then return f[${F.status}] end
f[${F.status}], f[${F.jobId}], f[${F.nextAttemptAt}] = PENDING, jobId, ''
redis.call('SET', record, packed(f))
redis.call('PERSIST', payloadKey)
becomePending(oldest, pending, id, watchId, nowMs)
if redis.call('EXISTS', stats) == 1 then redis.call('HINCRBY', stats, 'pending', 1) end
if f[${F.ordered}] == '1' then
  redis.call('ZADD', orderedSet, tonumber(f[${F.sequence}], 36), id)
  if redis.call('ZRANGE', orderedSet, 0, 0)[1] ~= id then return 'held' end
end
return FAILED`,
  },
  /**
   * pending → cancelled for some deliveries of one watch. KEYS: the watch's pending set and
   * stats, then record and payload per delivery; ARGV: the two retentions, then the ids.
   * Returns the job ids to remove (of those that were pending).
   */
  bhDeliveryCancel: {
    lua: `${RECORD_LUA}
local pending, stats = KEYS[1], KEYS[2]
local recordRetentionMs, payloadRetentionMs = ARGV[1], ARGV[2]
local watchExists = redis.call('EXISTS', stats) == 1
local jobIds = {}
for i = 0, (#KEYS - 2) / 2 - 1 do
  local record, payloadKey, id = KEYS[3 + i * 2], KEYS[4 + i * 2], ARGV[3 + i]
  redis.call('ZREM', pending, id)
  local value = redis.call('GET', record)
  local f = value and fields(value)
  if f and f[${F.status}] == PENDING then
    jobIds[#jobIds + 1] = f[${F.jobId}] ~= '' and f[${F.jobId}] or id
    f[${F.status}], f[${F.jobId}], f[${F.nextAttemptAt}], f[${F.firstSeenAt}] = CANCELLED, '', '', ''
    redis.call('SET', record, packed(f), 'PX', recordRetentionMs)
    redis.call('PEXPIRE', payloadKey, payloadRetentionMs)
    if watchExists then redis.call('HINCRBY', stats, 'pending', -1) end
  end
end
return jobIds`,
  },
  /**
   * Appends an attempt (its time as ms since createdAt, then `attemptTail`), keeping the newest
   * `maxAttemptsKept`, and applies its outcome (`delivered`, `retrying`, `failed`) to a pending
   * record, counting it in the watch's minute bucket (src/delivery/delivery-minutes.ts: field
   * increment pairs after the 14 named ARGV) in the same call, so the chart costs no extra round
   * trip. A delivered record drops its payload key when its tenant's event log holds the same
   * body for at least the payload retention from now (the common case: delivered soon after it
   * was stored), so the body is kept once. Returns {status code after, failing-since ms or false}.
   */
  bhDeliveryAttempt: {
    numberOfKeys: 6,
    lua: `${RECORD_LUA}
local record, payloadKey, pending, stats, failingSince, minute = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, attemptAtMs, attemptTail, outcome, nextAttemptAt, nowMs, recordRetentionMs, payloadRetentionMs, eventLogRetentionMs,
  maxAttemptsKept, failingTtlMs, failureCounts, attemptAt, minuteRetentionMs = unpack(ARGV, 1, 14)
local value = redis.call('GET', record)
if not value then return {false, false} end
local f = fields(value)
f[#f + 1] = string.format('%d', tonumber(attemptAtMs) - tonumber(f[${F.createdAt}], 36)) .. ',' .. attemptTail
while #f - ${FIRST_ATTEMPT_FIELD - 1} > tonumber(maxAttemptsKept) do table.remove(f, ${FIRST_ATTEMPT_FIELD}) end
local status = f[${F.status}]
if status ~= PENDING then
  redis.call('SET', record, packed(f), 'KEEPTTL')
  return {status, false}
end
local watchExists = redis.call('EXISTS', stats) == 1
if watchExists then
  for i = 15, #ARGV, 2 do redis.call('HINCRBY', minute, ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', minute, minuteRetentionMs)
end
if outcome == 'delivered' then
  redis.call('DEL', failingSince)
elseif failureCounts == '1' then
  redis.call('SET', failingSince, nowMs, 'NX')
  redis.call('PEXPIRE', failingSince, failingTtlMs)
end
if outcome == 'retrying' then
  f[${F.nextAttemptAt}] = nextAttemptAt
  redis.call('SET', record, packed(f))
  return {status, redis.call('GET', failingSince)}
end
local final = outcome == 'delivered' and DELIVERED or FAILED
f[${F.status}], f[${F.jobId}], f[${F.nextAttemptAt}], f[${F.firstSeenAt}] = final, '', '', ''
redis.call('SET', record, packed(f), 'PX', recordRetentionMs)
local logHoldsBody = f[${F.logSeq}] ~= ''
  and tonumber(f[${F.createdAt}], 36) + tonumber(eventLogRetentionMs) >= redisTimeMs() + tonumber(payloadRetentionMs)
if final == DELIVERED and logHoldsBody then
  redis.call('DEL', payloadKey)
else
  redis.call('PEXPIRE', payloadKey, payloadRetentionMs)
end
redis.call('ZREM', pending, id)
if watchExists then
  redis.call('HINCRBY', stats, 'pending', -1)
  redis.call('HINCRBY', stats, outcome, 1)
  if final == DELIVERED then redis.call('HSET', stats, 'lastDeliveredAt', attemptAt) end
end
return {final, redis.call('GET', failingSince)}`,
  },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptArg = string | number
type WithScripts = RedisClient & Record<ScriptName, (...keysAndArgs: ScriptArg[]) => Promise<unknown>>
type ScriptDefinition = { numberOfKeys?: number; lua: string }

const registered = new WeakSet<RedisClient>()

/** The connection with every script defined on it (once per connection, whoever created it). */
function scripted(redis: RedisClient): WithScripts {
  if (!registered.has(redis)) {
    // A script without numberOfKeys takes the number of its keys as its first argument. ioredis's
    // auto-pipelining routes a call by its first argument, which for these is that number, not a
    // key: calls on different masters would share a pipeline, which the cluster client refuses.
    // They are sent on their own (one call already carries a whole batch).
    const ignored = redis.options.autoPipeliningIgnoredCommands ??= []
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS) as [string, ScriptDefinition][]) {
      redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua })
      if (numberOfKeys === undefined && !ignored.includes(name)) ignored.push(name)
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
export async function renewLease(redis: RedisClient, { lease, owner, ttlMs }: LeaseRef & { ttlMs: number }): Promise<boolean> {
  return (await scripted(redis).bhLeaseRenew(lease, owner, ttlMs)) === 1
}

/** Frees the lease if `owner` holds it. */
export async function releaseLease(redis: RedisClient, { lease, owner }: LeaseRef): Promise<void> {
  await scripted(redis).bhLeaseRelease(lease, owner)
}

/** Writes the cursor hash if `owner` holds the lease; false when it does not. */
export async function saveCursorFenced(
  redis: RedisClient,
  { lease, owner, cursor, number, hash, chain }: LeaseRef & { cursor: string; number: number; hash: string; chain?: Record<'chainId' | 'genesisHash', string> | undefined },
): Promise<boolean> {
  const fields = chain ? ['chainId', chain.chainId, 'genesisHash', chain.genesisHash] : []
  return (await scripted(redis).bhFencedCursorSave(lease, cursor, owner, number, hash, ...fields)) === 1
}

/** Sets one marker field, or deletes fields, if `owner` holds the lease; false when it does not. */
export async function writeMarkersFenced(
  redis: RedisClient,
  { lease, owner, markers, change }: LeaseRef & { markers: string; change: { set: [field: string, value: string] } | { del: string[] } },
): Promise<boolean> {
  const args = 'set' in change ? ['set', ...change.set] : ['del', ...change.del]
  return (await scripted(redis).bhFencedMarkerWrite(lease, markers, owner, ...args)) === 1
}

/** Replaces the watch JSON only if it is still `expected`, and announces the change on the feed. */
export async function compareAndSetWatch(
  redis: RedisClient,
  { watch, changes, expected, next, feedMaxLength, watchId, chain }:
    { watch: string; changes: string; expected: string; next: string; feedMaxLength: number; watchId: string; chain: string },
): Promise<boolean> {
  return (await scripted(redis).bhWatchCompareAndSet(watch, changes, expected, next, feedMaxLength, watchId, chain)) === 1
}

/** What bhWatchesToSend read of one watch: its JSON and sealed secrets, null where there is none. */
export interface StoredWatchToSend {
  json: string | null
  current: string | null
  previous: string | null
  previousExpiresAt: string | null
}

/** The JSON and the sealed secrets of every watch in `watches` (keys of each), in order, in one command. */
export async function readWatchesToSend(redis: RedisClient, watches: readonly { watch: string; secrets: string }[]): Promise<StoredWatchToSend[]> {
  const keys = watches.flatMap(({ watch, secrets }) => [watch, secrets])
  const flat = (await scripted(redis).bhWatchesToSend(keys.length, ...keys)) as (string | null)[]
  return watches.map((_, i) => ({
    json: flat[4 * i] ?? null, current: flat[4 * i + 1] ?? null, previous: flat[4 * i + 2] ?? null, previousExpiresAt: flat[4 * i + 3] ?? null,
  }))
}

/** Takes a slot of the URL unless it has `cap` live ones. */
export async function acquireUrlSlot(
  redis: RedisClient,
  { slots, nowMs, expiresAtMs, cap, token, keyTtlMs }:
    { slots: string; nowMs: number; expiresAtMs: number; cap: number; token: string; keyTtlMs: number },
): Promise<boolean> {
  return (await scripted(redis).bhUrlSlotAcquire(slots, nowMs, expiresAtMs, cap, token, keyTtlMs)) === 1
}

/** Takes an event-stream connection slot of a tenant unless `max` live ones (heartbeat within `staleMs`) are taken. */
export async function takeStreamSlot(
  redis: RedisClient,
  { slots, connectionId, nowMs, staleMs, max }: { slots: string; connectionId: string; nowMs: number; staleMs: number; max: number },
): Promise<boolean> {
  return (await scripted(redis).bhStreamSlotTake(slots, connectionId, nowMs, staleMs, max)) === 1
}

/**
 * An ordered watch's delivery is finished (delivered, failed, cancelled): it leaves the watch's
 * ordered set. Returns the set's first member now (the next to send), if any.
 */
export async function takeNextOrdered(redis: RedisClient, { ordered, finishedId }: { ordered: string; finishedId: string }): Promise<string | undefined> {
  const next = (await scripted(redis).bhOrderedNext(ordered, finishedId)) as string | null
  return next ?? undefined
}

/**
 * Puts a watch's entry in the oldest-pending index right (see delivery-store.ts): the score of
 * its oldest pending delivery, or no entry when it has none. Returns that score, if any.
 */
export async function refreshOldestPending(
  redis: RedisClient, { oldest, pending, watchId }: { oldest: string; pending: string; watchId: string },
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
  redis: RedisClient,
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
  redis: RedisClient,
  { replay, quota, queue, tenants, replayId, tenantId, nextBlock, events, finished, now, keptMs }: ReplayQueueKeys & {
    replayId: string; tenantId: string; nextBlock: number; events: number; finished: boolean; now: string; keptMs: number
  },
): Promise<void> {
  await scripted(redis).bhReplayAdvance(replay, quota, queue, tenants, replayId, tenantId, nextBlock, events, finished ? '1' : '', now, keptMs)
}

/** Takes a tenant whose list on the chain is empty off the chain's list. */
export async function dropIdleReplayTenant(
  redis: RedisClient, { queue, tenants, tenantId }: Pick<ReplayQueueKeys, 'queue' | 'tenants'> & { tenantId: string },
): Promise<void> {
  await scripted(redis).bhReplayTenantIdle(queue, tenants, tenantId)
}

/** The keys of one delivery record and of its watch, as the delivery scripts take them. */
export interface DeliveryRecordKeys {
  record: string
  payload: string
  /** The watch's pending deliveries, scored by when each became pending. */
  pending: string
  /** The watch's stats: touched only while the hash exists (it goes with the watch). */
  stats: string
}

export interface StoredEventKeys extends DeliveryRecordKeys {
  sequence: string
  /** The watch's log bucket for now, and its index of buckets. */
  logBucket: string
  logIndex: string
  eventLog: string
  ordered: string
  streamOnlyMarker: string
}

export interface StoredEventArgs {
  id: string
  /** What the log bucket holds for it (its compact id). */
  logEntry: string
  watchId: string
  /** The stored body around its sequence number. */
  bodyHead: string
  bodyTail: string
  firstSeenAt: number
  /** '' when not a replay. */
  replayJobId: string
  /** The record's fields only JavaScript writes (staticRecordFields). */
  staticFields: string
  ordered: boolean
  /** A watch without a url: the event goes to the event log once, nothing else. */
  streamOnly: boolean
  /** Kept in a stream-only event's marker, beside its log entry. */
  tenantId: string
}

export interface LogBucketArgs {
  bucketStartMs: number
  /** The bucket lives this long when it is created: until its end plus the log's retention. */
  bucketTtlMs: number
  /** Buckets that started before this are gone (by their expiry): they leave the index. */
  bucketsKeptFromMs: number
}

/** Stores a batch of events (see bhDeliveryStore); one reply per event: its outcome and job id. */
export async function storeDeliveries(
  redis: RedisClient,
  { oldestPending, nowMs, eventLogRetentionMs, bucket, events }: {
    /** The shard's oldest-pending index (keys.oldestPending); every event of the batch is on that shard. */
    oldestPending: string
    /** When the new pending ones became pending. */
    nowMs: number
    eventLogRetentionMs: number
    bucket: LogBucketArgs
    events: readonly { keys: StoredEventKeys; args: StoredEventArgs }[]
  },
): Promise<{ outcome: string; jobId: string }[]> {
  const keys: string[] = [oldestPending]
  const args: ScriptArg[] = [eventLogRetentionMs, bucket.bucketStartMs, bucket.bucketTtlMs, bucket.bucketsKeptFromMs, nowMs]
  for (const { keys: k, args: a } of events) {
    keys.push(k.record, k.payload, k.pending, k.stats, k.sequence, k.logBucket, k.logIndex, k.eventLog, k.ordered, k.streamOnlyMarker)
    args.push(
      a.id, a.logEntry, a.watchId, a.bodyHead, a.bodyTail, a.firstSeenAt, a.replayJobId, a.staticFields,
      a.ordered ? '1' : '', a.streamOnly ? '1' : '', a.tenantId,
    )
  }
  const flat = (await scripted(redis).bhDeliveryStore(keys.length, ...keys, ...args)) as string[]
  const replies: { outcome: string; jobId: string }[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) replies.push({ outcome: flat[i]!, jobId: flat[i + 1]! })
  return replies
}

/** failed → pending under `jobId`; the status code it had (`held`: it waits behind an earlier ordered one), null without a record. */
export async function requeueFailedDelivery(
  redis: RedisClient,
  { keys, ordered, oldestPending, deliveryId, watchId, jobId, nowMs }:
    { keys: DeliveryRecordKeys; ordered: string; oldestPending: string; deliveryId: string; watchId: string; jobId: string; nowMs: number },
): Promise<string | null> {
  return (await scripted(redis).bhDeliveryRequeue(
    keys.record, keys.payload, keys.pending, keys.stats, ordered, oldestPending, deliveryId, jobId, nowMs, watchId,
  )) as string | null
}

/** pending → cancelled for deliveries of one watch; the job ids to remove (of those that were pending). */
export async function cancelPendingDeliveries(
  redis: RedisClient,
  { watch, deliveries, recordRetentionMs, payloadRetentionMs }: {
    watch: Pick<DeliveryRecordKeys, 'pending' | 'stats'>
    deliveries: readonly { id: string; keys: Pick<DeliveryRecordKeys, 'record' | 'payload'> }[]
    recordRetentionMs: number
    payloadRetentionMs: number
  },
): Promise<string[]> {
  if (deliveries.length === 0) return []
  const keys = [watch.pending, watch.stats, ...deliveries.flatMap(({ keys: k }) => [k.record, k.payload])]
  return (await scripted(redis).bhDeliveryCancel(
    keys.length, ...keys, recordRetentionMs, payloadRetentionMs, ...deliveries.map(({ id }) => id),
  )) as string[]
}

export interface AttemptArgs {
  deliveryId: string
  /** When the attempt was made, in ms and ISO (the stats' lastDeliveredAt). */
  attemptAtMs: number
  attemptAt: string
  /** The attempt after its time (storedAttemptTail). */
  attemptTail: string
  outcome: 'delivered' | 'retrying' | 'failed'
  /** Unix ms in base 36, or '' when no retry follows. */
  nextAttemptAt: string
  /** The worker's clock: where a run of failures starts. */
  nowMs: number
  /** How long the record and its payload are kept once this outcome is final. */
  recordRetentionMs: number
  payloadRetentionMs: number
  /** How long the tenant's event log keeps an entry. */
  eventLogRetentionMs: number
  maxAttemptsKept: number
  failingTtlMs: number
  /** Whether a failure counts towards disabling the watch (false when no request was made). */
  failureCounts: boolean
}

/** Records an attempt (see bhDeliveryAttempt): the status code after (null without a record) and failing-since ms. */
export async function recordDeliveryAttempt(
  redis: RedisClient,
  { keys, failingSince, minute, minuteRetentionMs, minuteIncrements, attempt: a }: {
    keys: DeliveryRecordKeys
    failingSince: string
    /** The watch's bucket for this minute, how long it lives, and what to add to its fields. */
    minute: string
    minuteRetentionMs: number
    minuteIncrements: readonly [field: string, by: number][]
    attempt: AttemptArgs
  },
): Promise<[status: string | null, failingSince: string | null]> {
  return (await scripted(redis).bhDeliveryAttempt(
    keys.record, keys.payload, keys.pending, keys.stats, failingSince, minute,
    a.deliveryId, a.attemptAtMs, a.attemptTail, a.outcome, a.nextAttemptAt, a.nowMs, a.recordRetentionMs, a.payloadRetentionMs,
    a.eventLogRetentionMs, a.maxAttemptsKept, a.failingTtlMs, a.failureCounts ? '1' : '0', a.attemptAt, minuteRetentionMs,
    ...minuteIncrements.flat(),
  )) as [string | null, string | null]
}
