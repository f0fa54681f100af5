/**
 * The follower's reconcile step, as a pure function: given what blockhook holds (the cursor and
 * the recent blocks behind it) and what the node has answered so far, it either names the case or
 * asks for the one more answer it needs. The follower does the I/O and calls it again, so every
 * case is tested with scripted answers (test/reconcile.test.ts). How a reorg is told from a node
 * that lags or contradicts itself is explained in docs/reorgs.md.
 *
 * - `idle`: the node's head is our cursor.
 * - `extend`: the block after the cursor has the cursor as its parent.
 * - `reorg`: the node has shown, by hash, a different block at the height of one of ours; walking
 *   the new blocks' parents by hash down to one we hold (the common ancestor) proves every one of
 *   ours above it replaced. Only these blocks are ever retracted.
 * - `node-behind`: the head, or a block by number, is missing or below the cursor: wait (and fail
 *   over), never retract.
 * - `node-inconsistent`: an answer that contradicts itself (a zero parent hash, a parent the node
 *   does not have, a block whose number is not the height it was asked for): back off, retry.
 */
import type { Cursor } from '../../subscriber/cursor-store.js'

/** The fields of a node's block that reconciling needs. */
export interface HeaderAnswer { number: number; hash: string; parentHash: string }

/** A block we hold (in the window, linked by parent hash up to the cursor). */
export interface HeldBlock { number: number; hash: string }

export interface ReconcileInput {
  cursor: Cursor
  /** Blocks we hold, oldest first, the last one being the cursor's (may be empty on a fresh start). */
  window: readonly HeldBlock[]
  /** The node's latest block; null when it has none. */
  head: HeaderAnswer | null
  /** The node's answers by number so far (null: the node has no block there). */
  byNumber: ReadonlyMap<number, HeaderAnswer | null>
  /** The node's answers by hash so far. */
  byHash: ReadonlyMap<string, HeaderAnswer | null>
}

export type Reconcile =
  | { case: 'need-number'; number: number }
  | { case: 'need-hash'; hash: string; number: number }
  | { case: 'idle' }
  | { case: 'extend'; head: number }
  | { case: 'reorg'; ancestor: Cursor; replaced: string[]; deeperThanKept: boolean }
  | { case: 'node-behind'; reason: string }
  | { case: 'node-inconsistent'; reason: string }

const ZERO_HASH = /^0x0{64}$/

export function reconcile(input: ReconcileInput): Reconcile {
  const { cursor, head, byNumber } = input
  if (!head) return { case: 'node-behind', reason: 'the node has no latest block' }
  if (ZERO_HASH.test(head.parentHash) && head.number > 0) return { case: 'node-inconsistent', reason: `head ${head.number} has a zero parent hash` }
  if (head.number < cursor.number) return { case: 'node-behind', reason: `the node's head ${head.number} is below the cursor ${cursor.number}` }
  if (head.number === cursor.number) {
    if (head.hash === cursor.hash) return { case: 'idle' }
    // A different block at the cursor's height: the node has shown ours replaced, if its parents agree.
    return walkBack(input, head)
  }
  const nextNumber = cursor.number + 1
  if (!byNumber.has(nextNumber)) return { case: 'need-number', number: nextNumber }
  const next = byNumber.get(nextNumber)!
  if (!next) return { case: 'node-behind', reason: `the node has no block ${nextNumber} below its head ${head.number}` }
  if (next.number !== nextNumber) return { case: 'node-inconsistent', reason: `asked for block ${nextNumber}, got ${next.number}` }
  if (next.parentHash === cursor.hash) return { case: 'extend', head: head.number }
  if (ZERO_HASH.test(next.parentHash)) return { case: 'node-inconsistent', reason: `block ${nextNumber} has a zero parent hash` }
  return walkBack(input, next)
}

/**
 * From `top`, a node block at or just above the cursor that does not link to it, reads parents by
 * hash until one is a block we hold. Every block of ours at a height passed on the way has been
 * shown replaced by a different block.
 */
function walkBack(input: ReconcileInput, top: HeaderAnswer): Reconcile {
  const { cursor, window, byHash } = input
  const held = new Map<number, string>(window.map((b) => [b.number, b.hash]))
  held.set(cursor.number, cursor.hash)
  const oldest = Math.min(cursor.number, ...window.map((b) => b.number))
  const replaced: string[] = []
  let at = top
  for (;;) {
    const ours = held.get(at.number)
    if (ours === at.hash) {
      return { case: 'reorg', ancestor: { number: at.number, hash: at.hash }, replaced, deeperThanKept: false }
    }
    if (ours !== undefined) replaced.push(ours)
    if (at.number <= oldest) {
      // Below every block we hold: nothing older to compare with, go on from here.
      return { case: 'reorg', ancestor: { number: at.number, hash: at.hash }, replaced, deeperThanKept: true }
    }
    if (ZERO_HASH.test(at.parentHash)) return { case: 'node-inconsistent', reason: `block ${at.number} has a zero parent hash` }
    if (!byHash.has(at.parentHash)) return { case: 'need-hash', hash: at.parentHash, number: at.number - 1 }
    const parent = byHash.get(at.parentHash)!
    if (!parent) return { case: 'node-inconsistent', reason: `the node has no parent ${at.parentHash} of its block ${at.number}` }
    if (parent.hash !== at.parentHash || parent.number !== at.number - 1) {
      return { case: 'node-inconsistent', reason: `the parent of block ${at.number} does not match its hash and height` }
    }
    at = parent
  }
}
