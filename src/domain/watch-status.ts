/**
 * Every rule about a watch's status, as pure functions the watch service applies inside its
 * compare-and-set update (see docs/architecture.md, "Watch status"):
 *
 * - a user moves a watch to `active` or `paused`; `active` also re-enables a watch blockhook
 *   disabled, and clears the reason it was disabled for;
 * - blockhook disables only an `active` watch (410 Gone, or failing for `disableAfter`), so a
 *   user's pause is never overwritten by a worker that saw an old copy;
 * - a one-shot watch (solana.signature) becomes `completed` once it fired.
 */
import { BlockhookError } from './errors.js'
import type { Watch } from './watch-types.js'

export type UserStatus = 'active' | 'paused'

/** The watch as a user's PATCH leaves it; `changes` are the validated body fields. */
export function applyUserChange(watch: Watch, changes: Partial<Watch> & { status?: UserStatus }, nowIso: string): Watch {
  const next = { ...watch, ...changes, updatedAt: nowIso } as Watch
  if (changes.status === 'active') delete next.disabledReason
  return next
}

/** Throws BH_WATCH_NOT_ACTIVE when the watch is no longer active (paused, disabled or completed meanwhile). */
export function disabled(watch: Watch, reason: string, nowIso: string): Watch {
  if (watch.status !== 'active') throw new BlockhookError('BH_WATCH_NOT_ACTIVE', 'already not active', 409)
  return { ...watch, status: 'disabled', disabledReason: reason, updatedAt: nowIso }
}

export function completed(watch: Watch, nowIso: string): Watch {
  return { ...watch, status: 'completed', updatedAt: nowIso }
}
