/**
 * Solana notifications, pure: check the `result` of a `<method>Notification` against the
 * documented shape, and turn one into the MatchedEvents of the watches sharing the subscription.
 * `data` is `{slot, value}` with the node's `value` passed on as sent (for solana.slot, the
 * whole `result`, which has no `value`) (README, "The webhook").
 */
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { webhookId } from '../../domain/ids.js'
import type { EventType } from '../../domain/watch-types.js'
import type { SolanaSubscribeMethod, SolanaWatch } from './subscriptions.js'

export interface SolanaNotification {
  slot: number
  value: unknown
  /** Unix seconds of the block, when known (gap recovery reads it; PubSub gives none). */
  blockTime?: number | null
}

export interface NotificationRejection {
  code: 'BH_SOLANA_MALFORMED_NOTIFICATION' | 'BH_SOLANA_NOT_TERMINAL'
  reason: string
}

export const isRejection = (n: SolanaNotification | NotificationRejection): n is NotificationRejection => 'code' in n

const malformed = (reason: string): NotificationRejection => ({ code: 'BH_SOLANA_MALFORMED_NOTIFICATION', reason })

const isSlot = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
/** Base58 of 32 or 64 bytes is at most 88 characters; anything longer is not a key or signature. */
const isBase58Text = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 88

/** Checks a notification's `result` for `method`'s documented shape. */
export function parseNotification(method: SolanaSubscribeMethod, result: unknown): SolanaNotification | NotificationRejection {
  if (!isObject(result)) return malformed('result is not an object')
  if (method === 'slotSubscribe') {
    return isSlot(result.slot) ? { slot: result.slot, value: result } : malformed('slot is not a slot number')
  }
  const context = result.context
  if (!isObject(context) || !isSlot(context.slot)) return malformed('context.slot is missing')
  const value = result.value
  switch (method) {
    case 'accountSubscribe':
      if (!isObject(value)) return malformed('value is not an account')
      break
    case 'programSubscribe':
      if (!isObject(value) || !isBase58Text(value.pubkey) || !isObject(value.account)) {
        return malformed('value is not {pubkey, account}')
      }
      break
    case 'logsSubscribe':
      if (!isObject(value) || !isBase58Text(value.signature)) return malformed('value has no signature')
      break
    case 'signatureSubscribe':
      // Only sent when enableReceivedNotification is set, which blockhook never asks for.
      if (value === 'receivedSignature') return { code: 'BH_SOLANA_NOT_TERMINAL', reason: 'receivedSignature' }
      if (!isObject(value)) return malformed('value is not {err}')
      break
  }
  return { slot: context.slot, value }
}

/** What names the event on its chain (README, "The webhook"): the same event, the same webhook-id. */
export function eventKeyParts(chain: string, type: EventType, watch: SolanaWatch, n: SolanaNotification): (string | number)[] {
  const value = n.value as Record<string, unknown>
  switch (type) {
    case 'solana.account':
      return [chain, type, (watch.filter as { account: string }).account, n.slot]
    case 'solana.program_account':
      return [chain, type, value.pubkey as string, n.slot]
    case 'solana.logs':
      return [chain, type, n.slot, value.signature as string]
    case 'solana.signature':
      return [chain, type, n.slot, (watch.filter as { signature: string }).signature]
    default:
      return [chain, type, n.slot]
  }
}

/** One MatchedEvent per watch holding the subscription the notification came on. */
export function matchedEvents(
  type: EventType,
  n: SolanaNotification,
  watches: readonly SolanaWatch[],
  firstSeenAt: number,
): MatchedEvent[] {
  const timestamp = new Date(typeof n.blockTime === 'number' ? n.blockTime * 1000 : firstSeenAt).toISOString()
  return watches.map((watch) => ({
    id: webhookId(watch.id, eventKeyParts(watch.chain, type, watch, n)),
    watchId: watch.id,
    tenantId: watch.tenantId,
    chain: watch.chain,
    type,
    timestamp,
    data: { slot: n.slot, value: n.value },
    firstSeenAt,
    ...(watch.url === undefined ? { streamOnly: true as const } : {}),
    ...(watch.ordered ? { ordered: true as const } : {}),
  }))
}
