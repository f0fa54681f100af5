/**
 * The Redis Cluster slot of a key, computed here (with `cluster-key-slot`, the function ioredis's
 * Cluster client routes by) so the key layout can pick shard tags that fall into chosen slot
 * ranges, and a batch of keys can be split by slot without asking the cluster.
 */
import { createRequire } from 'node:module'

export const CLUSTER_SLOTS = 16_384

/** CRC16 of the key's hash tag (or of the whole key without one) mod 16384; the package ships no types. */
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

export function keySlot(key: string): number {
  return calculateSlot(key)
}
