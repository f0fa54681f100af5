/**
 * blockhook's Lua scripts, registered on a connection as named commands (ioredis `defineCommand`:
 * sent once, then run by EVALSHA), each behind a typed wrapper whose arguments have names. The
 * scripts bind KEYS and ARGV to locals on their first lines, so a script reads like its wrapper.
 *
 * Scripts of the delivery record (delivery-store.ts) are not here yet: that file's layout is
 * being reworked, and they move once it settles.
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
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptArg = string | number
type WithScripts = Redis & Record<ScriptName, (...keysAndArgs: ScriptArg[]) => Promise<unknown>>

const registered = new WeakSet<Redis>()

/** The connection with every script defined on it (once per connection, whoever created it). */
function scripted(redis: Redis): WithScripts {
  if (!registered.has(redis)) {
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys, lua })
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
