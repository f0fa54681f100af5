/**
 * Filling the gap a reconnect or a restart leaves (docs/architecture.md, "The follower's invariants"). A resubscription is not continuity:
 * for `logsSubscribe` with `mentions`, the transactions that mention the account since the last
 * signature delivered are read back with getSignaturesForAddress (paging back to that signature)
 * and getTransaction; for `accountSubscribe`, the account is read once with getAccountInfo and
 * delivered only if it differs from the last state delivered; for `signatureSubscribe`, whose
 * one notification may have been sent while away, the status is read with getSignatureStatuses.
 * What to resume from is kept per subscription in Redis (`keys.solanaGapMarkers`).
 */
import type { RedisClient } from '../../storage/redis.js'
import type { Commitment } from '../../config/config.js'
import { sha256Hex } from '../../domain/ids.js'
import { mapBounded } from '../../domain/map-bounded.js'
import { writeMarkersFenced } from '../../storage/redis-scripts.js'
import type { RedisKeys } from '../../storage/keys.js'
import { leaseLost } from '../../subscriber/cursor-store.js'
import type { ChainLease } from '../../subscriber/lease.js'
import { RpcError } from '../rpc-socket.js'
import type { SolanaRpc } from './http-client.js'
import type { SolanaNotification } from './notifications.js'
import { canonicalJson, type SolanaSubscription } from './subscriptions.js'

/** getSignaturesForAddress returns at most this many per call. */
const SIGNATURE_PAGE = 1000
/** A gap deeper than this many signatures is cut to its newest part (and logged by the caller). */
export const MAX_SIGNATURE_PAGES = 10
const TRANSACTION_READ_CONCURRENCY = 8

interface SignatureInfo {
  signature: string
  slot: number
}

/**
 * Where a logs history resumes: the last signature delivered and its slot. The slot bounds the
 * paging when the signature itself is not in the node's list (a `processed` one on a dropped
 * fork, or one not yet at the commitment the HTTP methods serve): nothing older is read.
 */
export interface LogsMarker {
  signature: string
  slot: number
}

export function formatLogsMarker({ slot, signature }: LogsMarker): string {
  return `${slot} ${signature}`
}

export function parseLogsMarker(text: string): LogsMarker | undefined {
  const [slot, signature] = text.split(' ')
  return signature && Number.isSafeInteger(Number(slot)) ? { slot: Number(slot), signature } : undefined
}

interface TransactionResult {
  slot: number
  blockTime?: number | null
  meta: { err: unknown; logMessages?: string[] | null } | null
}

/** The HTTP methods refuse `processed`; `confirmed` is the nearest they serve. */
export function httpCommitment(commitment: Commitment): Commitment {
  return commitment === 'processed' ? 'confirmed' : commitment
}

function checkSignaturePage(page: unknown): SignatureInfo[] {
  if (!Array.isArray(page) || page.length > SIGNATURE_PAGE ||
    !page.every((s) => typeof s?.signature === 'string' && Number.isSafeInteger(s?.slot))) {
    throw new RpcError('BH_RPC_BAD_RESPONSE', 'getSignaturesForAddress: not a list of {signature, slot}')
  }
  return page as SignatureInfo[]
}

export interface SignaturesSince {
  /** Oldest first, each signature once. */
  signatures: SignatureInfo[]
  /** False when the gap was deeper than MAX_SIGNATURE_PAGES pages and its oldest part is left out. */
  complete: boolean
}

/** The signatures mentioning `address` after `since` (newest first from the node, paged back). */
export async function signaturesSince(rpc: SolanaRpc, address: string, since: LogsMarker, commitment: Commitment): Promise<SignaturesSince> {
  const newestFirst: SignatureInfo[] = []
  let before: string | undefined
  let complete = false
  for (let page = 0; page < MAX_SIGNATURE_PAGES; page++) {
    const config = { commitment: httpCommitment(commitment), limit: SIGNATURE_PAGE, until: since.signature, ...(before ? { before } : {}) }
    const batch = checkSignaturePage(await rpc.call('getSignaturesForAddress', [address, config]))
    const newer = batch.filter((s) => s.slot >= since.slot)
    newestFirst.push(...newer)
    if (batch.length < SIGNATURE_PAGE || newer.length < batch.length) {
      complete = true
      break
    }
    before = batch[batch.length - 1]!.signature
  }
  const seen = new Set<string>()
  const signatures = newestFirst.reverse().filter((s) => !seen.has(s.signature) && seen.add(s.signature))
  return { signatures, complete }
}

/** The newest signature mentioning `address`, where a first subscription starts its history. */
export async function newestSignature(rpc: SolanaRpc, address: string, commitment: Commitment): Promise<LogsMarker | undefined> {
  const page = checkSignaturePage(await rpc.call('getSignaturesForAddress', [address, { commitment: httpCommitment(commitment), limit: 1 }]))
  return page[0] && { signature: page[0].signature, slot: page[0].slot }
}

/**
 * Each signature's transaction as the logsNotification it would have been: `{signature, err,
 * logs}` at its slot. A transaction the node cannot return yet fails the whole read, so the
 * caller retries rather than skipping it.
 */
export async function logsOfSignatures(rpc: SolanaRpc, signatures: readonly SignatureInfo[], commitment: Commitment): Promise<SolanaNotification[]> {
  const config = { commitment: httpCommitment(commitment), encoding: 'json', maxSupportedTransactionVersion: 0 }
  return mapBounded(signatures, TRANSACTION_READ_CONCURRENCY, async ({ signature }) => {
    const tx = await rpc.call<TransactionResult | null>('getTransaction', [signature, config])
    if (!tx || !Number.isSafeInteger(tx.slot) || typeof tx.meta !== 'object') {
      throw new RpcError('BH_SOLANA_TRANSACTION_MISSING', `getTransaction: ${signature} not available yet`)
    }
    return {
      slot: tx.slot,
      value: { signature, err: tx.meta?.err ?? null, logs: tx.meta?.logMessages ?? null },
      blockTime: tx.blockTime ?? null,
    }
  })
}

/** The account as accountNotification would carry it, read with the subscription's own config. */
export async function readAccount(rpc: SolanaRpc, sub: SolanaSubscription): Promise<SolanaNotification> {
  const result = await rpc.call<{ context?: { slot?: unknown }; value?: unknown }>('getAccountInfo', sub.params)
  const slot = result?.context?.slot
  if (!Number.isSafeInteger(slot) || result.value === undefined) {
    throw new RpcError('BH_RPC_BAD_RESPONSE', 'getAccountInfo: not {context: {slot}, value}')
  }
  return { slot: slot as number, value: result.value }
}

const COMMITMENT_RANK: Record<Commitment, number> = { processed: 0, confirmed: 1, finalized: 2 }

/**
 * The signatureNotification a signature watch missed while away, if the transaction has reached
 * the watch's commitment: `{err}` at the transaction's slot, as the node would have sent it.
 */
export async function missedSignatureNotification(rpc: SolanaRpc, signature: string, commitment: Commitment): Promise<SolanaNotification | undefined> {
  const result = await rpc.call<{ value?: unknown }>('getSignatureStatuses', [[signature], { searchTransactionHistory: true }])
  if (!Array.isArray(result?.value) || result.value.length !== 1) {
    throw new RpcError('BH_RPC_BAD_RESPONSE', 'getSignatureStatuses: not {value: [status]}')
  }
  const status = result.value[0] as { slot?: unknown; err?: unknown; confirmationStatus?: unknown } | null
  if (status === null) return undefined
  const reached = COMMITMENT_RANK[status.confirmationStatus as Commitment]
  if (!Number.isSafeInteger(status.slot) || reached === undefined) {
    throw new RpcError('BH_RPC_BAD_RESPONSE', 'getSignatureStatuses: status without slot or confirmationStatus')
  }
  if (reached < COMMITMENT_RANK[commitment]) return undefined
  return { slot: status.slot as number, value: { err: status.err ?? null } }
}

/** Equal states, equal hashes, whatever the field order. */
export function accountStateHash(value: unknown): string {
  return sha256Hex(canonicalJson(value))
}

/** Only the lease holder writes a marker: a paused process that lost the chain cannot move one back behind the new leader. */
/** Where each subscription's gap recovery resumes from, in one Redis hash per chain. */
export class GapMarkers {
  readonly #redis: RedisClient
  readonly #key: string
  readonly #lease: ChainLease

  constructor(redis: RedisClient, keys: RedisKeys, chain: string, lease: ChainLease) {
    this.#redis = redis
    this.#key = keys.solanaGapMarkers(chain)
    this.#lease = lease
  }

  async get(sub: SolanaSubscription): Promise<string | undefined> {
    return (await this.#redis.hget(this.#key, sha256Hex(sub.key))) ?? undefined
  }

  async set(sub: SolanaSubscription, marker: string): Promise<void> {
    await this.#write({ set: [sha256Hex(sub.key), marker] })
  }

  /** The subscription is gone: a later one with the same key starts afresh. */
  async delete(sub: SolanaSubscription): Promise<void> {
    await this.#write({ del: [sha256Hex(sub.key)] })
  }

  /** Drops the markers of every subscription not in `live` (watches deleted while no subscriber ran). */
  async retainOnly(live: readonly SolanaSubscription[]): Promise<void> {
    const keep = new Set(live.map((sub) => sha256Hex(sub.key)))
    const stale = (await this.#redis.hkeys(this.#key)).filter((field) => !keep.has(field))
    // In slices: Lua's unpack has a small stack.
    for (let i = 0; i < stale.length; i += 1000) await this.#write({ del: stale.slice(i, i + 1000) })
  }

  async #write(change: { set: [field: string, value: string] } | { del: string[] }): Promise<void> {
    const { key: lease, owner } = this.#lease
    if (!(await writeMarkersFenced(this.#redis, { lease, owner, markers: this.#key, change }))) throw leaseLost()
  }
}
