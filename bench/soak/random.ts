/**
 * Seeded randomness for the soak, so a failing run can be replayed with its `--seed`: a small
 * PRNG (mulberry32) for schedules drawn in order, and a keyed draw (a hash of the seed and a key)
 * for choices that must not depend on the order things happen in, such as the receiver's answer
 * to the n-th attempt of a given webhook-id.
 */
import { createHash } from 'node:crypto'

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [min, max]. */
  int(min: number, max: number): number
  pick<T>(items: readonly T[]): T
}

export function rng(seed: number): Rng {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  }
}

/** A draw in [0, 1) fixed by the seed and the key alone. */
export function keyedDraw(seed: number, key: string): number {
  return createHash('sha256').update(`${seed}\u0000${key}`).digest().readUInt32BE(0) / 4294967296
}
