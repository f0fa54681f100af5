/**
 * Operator alerts as pure decisions (README, "Operations: alerts"): from what the monitor observed
 * (each chain's last head, Redis memory) the set of conditions that hold now, and from the
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

/** What to send for the conditions that changed since `previous` (name → held then). */
export function alertsForChanges(previous: Readonly<Record<string, boolean>>, now: Conditions): AlertEvent[] {
  const alerts: AlertEvent[] = []
  for (const [name, { holds, data }] of Object.entries(now)) {
    const held = previous[name] ?? false
    if (held === holds) continue
    if (name.startsWith('chain:')) alerts.push({ type: holds ? 'alert.chain_stalled' : 'alert.chain_recovered', data })
    else if (name === 'redis_memory') alerts.push({ type: 'alert.redis_memory', data: { state: holds ? 'over' : 'ok', ...data } })
  }
  return alerts
}
