/**
 * Which PubSub subscriptions a Solana chain needs, as pure data: a watch maps to one subscribe
 * request (method + params, the commitment and encoding included), and watches whose requests
 * are identical share one node subscription. The registry counts holders per request and says
 * which subscriptions to open and which to close when a holder comes, changes or goes.
 */
import type { Commitment } from '../../config/config.js'
import type { EventType, Watch } from '../../domain/watch-types.js'

export type SolanaSubscribeMethod =
  | 'accountSubscribe' | 'programSubscribe' | 'logsSubscribe' | 'signatureSubscribe' | 'slotSubscribe'

export type SolanaWatch = Extract<Watch, { type: `solana.${string}` }>

export interface SolanaSubscription {
  /** Identical requests, identical keys: the sharing and the Redis gap markers go by it. */
  readonly key: string
  readonly method: SolanaSubscribeMethod
  readonly unsubscribeMethod: string
  readonly params: readonly unknown[]
  readonly eventType: EventType
  /** The commitment the node applies (slotSubscribe takes none: the chain's is used for HTTP reads). */
  readonly commitment: Commitment
}

/** Account data comes base64 unless asked otherwise: base58 is slow and refused above 128 bytes. */
const DEFAULT_ENCODING = 'base64'

/** JSON with object keys sorted, so equal requests give equal strings whatever the field order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

function subscription(method: SolanaSubscribeMethod, params: unknown[], eventType: EventType, commitment: Commitment): SolanaSubscription {
  return {
    key: `${method}:${canonicalJson(params)}`,
    method,
    unsubscribeMethod: method.replace('Subscribe', 'Unsubscribe'),
    params,
    eventType,
    commitment,
  }
}

export function isSolanaWatch(watch: Watch): watch is SolanaWatch {
  return watch.type.startsWith('solana.')
}

/** The subscribe request of a Solana watch (README, "Concepts"); its commitment defaults to the chain's. */
export function subscriptionOf(watch: SolanaWatch, chainCommitment: Commitment): SolanaSubscription {
  const commitment = watch.commitment ?? chainCommitment
  switch (watch.type) {
    case 'solana.account': {
      const { account, encoding = DEFAULT_ENCODING } = watch.filter
      return subscription('accountSubscribe', [account, { commitment, encoding }], 'solana.account', commitment)
    }
    case 'solana.program': {
      const { programId, encoding = DEFAULT_ENCODING, filters } = watch.filter
      const config = filters && filters.length > 0 ? { commitment, encoding, filters } : { commitment, encoding }
      return subscription('programSubscribe', [programId, config], 'solana.program_account', commitment)
    }
    case 'solana.logs': {
      const filter = 'mentions' in watch.filter ? { mentions: [watch.filter.mentions[0]] } : 'all'
      return subscription('logsSubscribe', [filter, { commitment }], 'solana.logs', commitment)
    }
    case 'solana.signature':
      return subscription('signatureSubscribe', [watch.filter.signature, { commitment }], 'solana.signature', commitment)
    case 'solana.slot':
      return slotSubscription(chainCommitment)
  }
}

/** slotSubscribe has no parameters: every slot watch (and the runner's own head) shares one. */
export function slotSubscription(chainCommitment: Commitment): SolanaSubscription {
  return subscription('slotSubscribe', [], 'solana.slot', chainCommitment)
}

/** The account whose history fills a logs gap, when the subscription has one. */
export function mentionedAccount(sub: SolanaSubscription): string | undefined {
  if (sub.method !== 'logsSubscribe') return undefined
  const filter = sub.params[0] as { mentions?: string[] } | string
  return typeof filter === 'object' ? filter.mentions?.[0] : undefined
}

export interface SubscriptionChanges {
  open: SolanaSubscription[]
  close: SolanaSubscription[]
}

interface Shared {
  subscription: SolanaSubscription
  holders: Set<string>
}

/**
 * Reference counts over subscriptions. A holder is a watch id (or the runner's own id for the
 * head subscription); `put` with no subscription removes the holder. Pure: no I/O.
 */
export class SubscriptionRegistry {
  readonly #byKey = new Map<string, Shared>()
  readonly #keyOfHolder = new Map<string, string>()

  put(holder: string, next: SolanaSubscription | undefined): SubscriptionChanges {
    const changes: SubscriptionChanges = { open: [], close: [] }
    const currentKey = this.#keyOfHolder.get(holder)
    if (currentKey === next?.key) return changes
    if (currentKey !== undefined) {
      const shared = this.#byKey.get(currentKey)!
      shared.holders.delete(holder)
      this.#keyOfHolder.delete(holder)
      if (shared.holders.size === 0) {
        this.#byKey.delete(currentKey)
        changes.close.push(shared.subscription)
      }
    }
    if (next) {
      let shared = this.#byKey.get(next.key)
      if (!shared) {
        shared = { subscription: next, holders: new Set() }
        this.#byKey.set(next.key, shared)
        changes.open.push(next)
      }
      shared.holders.add(holder)
      this.#keyOfHolder.set(holder, next.key)
    }
    return changes
  }

  remove(holder: string): SubscriptionChanges {
    return this.put(holder, undefined)
  }

  /**
   * Drops a subscription the node ended by itself (signatureSubscribe after its notification)
   * with all its holders; nothing is to be closed on the node. Returns the holders it had.
   */
  forget(key: string): string[] {
    const shared = this.#byKey.get(key)
    if (!shared) return []
    this.#byKey.delete(key)
    for (const holder of shared.holders) this.#keyOfHolder.delete(holder)
    return [...shared.holders]
  }

  holdersOf(key: string): string[] {
    return [...(this.#byKey.get(key)?.holders ?? [])]
  }
}
