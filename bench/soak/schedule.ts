/**
 * The soak's fault schedule, drawn from the seed alone (so `--seed` replays it): a fault every
 * 0.5–1.5 × `meanGapMs`, between a warm-up and a quiet tail. The first faults are every kind
 * once, in a seeded order, so even a short run tries each; the rest are drawn by weight. Pauses
 * never overlap: the next one comes at least `PAUSE_SPACING_MS` after the previous resume, the
 * time the runner needs to read where the subscriber stood after it.
 */
import { rng } from './random.js'

export type Fault =
  | { kind: 'link-cut' }
  | { kind: 'link-freeze' }
  | { kind: 'kill-subscriber'; restartAfterMs: number }
  | { kind: 'kill-worker'; worker: number; restartAfterMs: number }
  | { kind: 'kill-redis'; restartAfterMs: number }
  | { kind: 'reorg'; depth: number; replacementTransfers: number }
  | { kind: 'pause'; resumeAfterMs: number }
  | { kind: 'receiver-down'; forMs: number }
  | { kind: 'chain-halt'; forMs: number }

export type FaultKind = Fault['kind']

export interface ScheduledFault { atMs: number; fault: Fault }

export const FAULT_KINDS: readonly FaultKind[] = [
  'link-cut', 'link-freeze', 'kill-subscriber', 'kill-worker', 'kill-redis', 'reorg', 'pause', 'receiver-down', 'chain-halt',
]

const WEIGHTS: Record<FaultKind, number> = {
  'link-cut': 3, 'link-freeze': 2, 'kill-subscriber': 2, 'kill-worker': 3, 'kill-redis': 1, reorg: 4, pause: 1, 'receiver-down': 1, 'chain-halt': 1,
}

/** After a resume, the runner reads the subscriber's cursor this much later (see oracle.ts). */
export const RESUME_SETTLE_MS = 30_000
const PAUSE_SPACING_MS = RESUME_SETTLE_MS + 5_000

export interface ScheduleOptions {
  seed: number
  durationMs: number
  warmupMs: number
  quietTailMs: number
  meanGapMs: number
  workers: number
}

function draw(kind: FaultKind, r: ReturnType<typeof rng>, workers: number): Fault {
  switch (kind) {
    case 'link-cut': return { kind }
    case 'link-freeze': return { kind }
    case 'kill-subscriber': return { kind, restartAfterMs: r.int(0, 5_000) }
    case 'kill-worker': return { kind, worker: r.int(0, workers - 1), restartAfterMs: r.int(0, 5_000) }
    case 'kill-redis': return { kind, restartAfterMs: r.int(500, 3_000) }
    case 'reorg': return { kind, depth: r.int(1, 5), replacementTransfers: r.int(0, 3) }
    case 'pause': return { kind, resumeAfterMs: r.int(10_000, 30_000) }
    case 'receiver-down': return { kind, forMs: r.int(3_000, 15_000) }
    // Longer than the 30 s without a head after which the chain counts as stalled (alerts, watchdog).
    case 'chain-halt': return { kind, forMs: r.int(40_000, 50_000) }
  }
}

export function faultSchedule(o: ScheduleOptions): ScheduledFault[] {
  const r = rng(o.seed ^ 0x5eed)
  const first = [...FAULT_KINDS]
  for (let i = first.length - 1; i > 0; i--) {
    const j = r.int(0, i)
    ;[first[i], first[j]] = [first[j]!, first[i]!]
  }
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0)
  const weighted = (): FaultKind => {
    let x = r.next() * total
    for (const kind of FAULT_KINDS) {
      x -= WEIGHTS[kind]
      if (x < 0) return kind
    }
    return 'reorg'
  }
  const end = o.durationMs - o.quietTailMs
  const schedule: ScheduledFault[] = []
  let pauseAllowedAt = 0
  for (let at = o.warmupMs; at < end; at += Math.round(o.meanGapMs * (0.5 + r.next()))) {
    let kind = first.shift() ?? weighted()
    if (kind === 'pause' && at < pauseAllowedAt) kind = 'reorg'
    const fault = draw(kind, r, o.workers)
    if (fault.kind === 'pause') pauseAllowedAt = at + fault.resumeAfterMs + PAUSE_SPACING_MS
    schedule.push({ atMs: at, fault })
  }
  return schedule
}
