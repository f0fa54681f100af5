/**
 * Rate-limited warnings for input that is skipped: a node that sends one bad frame after another
 * must not write one log line per frame. The first skip of a kind is logged at once; later ones
 * within `intervalMs` are only counted, and the next line of that kind carries the count.
 */
import type { Logger } from 'pino'

interface KindState {
  /** Skips not yet reported in a log line. */
  unreported: number
  lastLoggedAt: number
}

export class SkipLog {
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #kinds = new Map<string, KindState>()

  constructor(logger: Logger, intervalMs = 60_000, now: () => number = Date.now) {
    this.#log = logger
    this.#intervalMs = intervalMs
    this.#now = now
  }

  /** Counts one skip of `kind`; logs it (with the count since the last line) at most once per interval. */
  skip(kind: string, fields: Record<string, unknown> = {}): void {
    const now = this.#now()
    const state = this.#kinds.get(kind) ?? { unreported: 0, lastLoggedAt: Number.NEGATIVE_INFINITY }
    state.unreported++
    this.#kinds.set(kind, state)
    if (now - state.lastLoggedAt < this.#intervalMs) return
    this.#log.warn({ ...fields, skipped: state.unreported }, kind)
    state.unreported = 0
    state.lastLoggedAt = now
  }
}
