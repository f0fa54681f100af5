/**
 * Operator alerts as pure decisions (README, "Operations: alerts"): from what the monitor observed
 * (each chain's last head, Redis memory, the URLs with old pending deliveries) the set of
 * conditions that hold now, and from the
 * conditions that held at the last check, the alerts to send. One alert per change of state, never
 * one per check.
 */
export type AlertType =
  | 'alert.chain_stalled' | 'alert.chain_recovered' | 'alert.watch_disabled' | 'alert.backlog' | 'alert.redis_memory'

export interface AlertEvent {
  type: AlertType
  data: Record<string, unknown>
}

export interface ChainObservation {
  id: string
  /** Unix ms of the last head its subscriber saw; null before any. */
  lastHeadAtMs: number | null
  /** No new head for this long is a stall: 3 × blockTimeMs, at least 30 s. */
  stallAfterMs: number
}

export interface MemoryObservation {
  usedBytes: number
  /** 0: no maxmemory set. */
  maxBytes: number
  /** Redis refused a write for lack of memory (its message). */
  refusedWrite: string | undefined
}

/** Above this share of maxmemory, Redis is reported near its limit. */
export const MEMORY_ALERT_RATIO = 0.8

/** A URL whose oldest pending delivery has been pending longer than this is backlogged. */
export const BACKLOG_AFTER_MS = 10 * 60_000
/** Watch ids named in one `alert.backlog` (the count says how many there are). */
const BACKLOG_WATCHES_NAMED = 20

export interface BacklogObservation {
  /** Each URL of an active watch with a delivery pending since `BACKLOG_AFTER_MS` ago or longer. */
  urls: readonly { url: string; oldestPendingAtMs: number; watches: readonly { id: string; tenantId: string }[] }[]
  /** False when the read stopped at its bound: a URL backlogged before and not seen now may still be. */
  complete: boolean
}

/** Condition name → whether it holds, with what an alert about it says. */
export type Conditions = Record<string, { holds: boolean; data: Record<string, unknown> }>

export function currentConditions(nowMs: number, chains: readonly ChainObservation[], memory: MemoryObservation | undefined): Conditions {
  const conditions: Conditions = {}
  for (const chain of chains) {
    // A chain never seen moving has nothing to stall from (no subscriber has led it yet).
    if (chain.lastHeadAtMs === null) continue
    const silentMs = nowMs - chain.lastHeadAtMs
    conditions[`chain:${chain.id}`] = {
      holds: silentMs > chain.stallAfterMs,
      data: { chain: chain.id, lastHeadAt: new Date(chain.lastHeadAtMs).toISOString(), silentSec: Math.round(silentMs / 1000) },
    }
  }
  if (memory) {
    const ratio = memory.maxBytes > 0 ? memory.usedBytes / memory.maxBytes : 0
    conditions.redis_memory = {
      holds: memory.refusedWrite !== undefined || ratio > MEMORY_ALERT_RATIO,
      data: {
        usedMemory: memory.usedBytes, maxMemory: memory.maxBytes,
        ...(memory.refusedWrite !== undefined && { refusedWrite: memory.refusedWrite }),
      },
    }
  }
  return conditions
}

const BACKLOG = 'backlog:'

/**
 * One condition per URL (`backlog:<url>`) seen backlogged now, and, when the observation is
 * complete, a cleared one for each URL backlogged at the last check and not any more. A URL is
 * named by the watch's url as it is now: that is where its pending deliveries go.
 */
export function backlogConditions(nowMs: number, observation: BacklogObservation, previous: Readonly<Record<string, boolean>>): Conditions {
  const conditions: Conditions = {}
  for (const { url, oldestPendingAtMs, watches } of observation.urls) {
    const pendingMs = nowMs - oldestPendingAtMs
    if (pendingMs <= BACKLOG_AFTER_MS) continue
    conditions[BACKLOG + url] = {
      holds: true,
      data: {
        url, oldestPendingAt: new Date(oldestPendingAtMs).toISOString(), pendingSec: Math.round(pendingMs / 1000),
        watches: watches.length, watchIds: watches.slice(0, BACKLOG_WATCHES_NAMED).map((w) => w.id),
        tenantIds: [...new Set(watches.map((w) => w.tenantId))].slice(0, BACKLOG_WATCHES_NAMED),
      },
    }
  }
  for (const [name, held] of Object.entries(previous)) {
    if (!held || !name.startsWith(BACKLOG) || name in conditions) continue
    // Not seen in a cut-short read: unknown, so as it was.
    conditions[name] = observation.complete ? { holds: false, data: { url: name.slice(BACKLOG.length) } } : { holds: true, data: {} }
  }
  return conditions
}

/** What to send for the conditions that changed since `previous` (name → held then). */
export function alertsForChanges(previous: Readonly<Record<string, boolean>>, now: Conditions): AlertEvent[] {
  const alerts: AlertEvent[] = []
  for (const [name, { holds, data }] of Object.entries(now)) {
    const held = previous[name] ?? false
    if (held === holds) continue
    if (name.startsWith('chain:')) alerts.push({ type: holds ? 'alert.chain_stalled' : 'alert.chain_recovered', data })
    else if (name === 'redis_memory') alerts.push({ type: 'alert.redis_memory', data: { state: holds ? 'over' : 'ok', ...data } })
    else if (name.startsWith(BACKLOG)) alerts.push({ type: 'alert.backlog', data: { state: holds ? 'over' : 'ok', ...data } })
  }
  return alerts
}
