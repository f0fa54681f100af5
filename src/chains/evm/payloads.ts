/**
 * The webhook payloads (README, "The webhook") for EVM events, their `webhook-id`s and `eventKey`s, and the
 * `*.removed` event that takes one back. `watchId`, `chain` and `sequence` are added by delivery.
 *
 * Id parts are `[chain, blockHash, txHash, logPart, type]`: the block hash is in the id, so the
 * same log re-included in another block is a new delivery, while its `eventKey` (no block hash)
 * stays the same for the receiver to correlate.
 */
import { webhookId } from '../../domain/ids.js'
import type { EventType, Watch } from '../../domain/watch-types.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'
import { removedBatch } from './batches.js'
import { hexToNumber, type RpcBlock } from './rpc-types.js'

export interface BlockRef { number: number; hash: string; timestamp: number }

export function blockRef(block: RpcBlock): BlockRef {
  return { number: hexToNumber(block.number), hash: block.hash, timestamp: hexToNumber(block.timestamp) }
}

export interface EventSpec {
  watch: Watch
  chain: string
  type: EventType
  block: BlockRef | undefined
  txHash: string
  /** Log index, `<logIndex>:<i>` for the i-th id of a TransferBatch, or a tag (`tx`, `block`). */
  logPart: string
  eventKey: string
  confirmations: number
  /** The type-specific fields (`log`, `transaction`, `activity`, `header`, …). */
  fields: Record<string, unknown>
  nowMs: number
}

export function buildEvent(spec: EventSpec): MatchedEvent {
  const { watch, chain, type, block } = spec
  return {
    id: webhookId(watch.id, [chain, block?.hash ?? '', spec.txHash, spec.logPart, type]),
    watchId: watch.id,
    tenantId: watch.tenantId,
    chain,
    type,
    timestamp: new Date(block ? block.timestamp * 1000 : spec.nowMs).toISOString(),
    data: {
      confirmations: spec.confirmations,
      eventKey: spec.eventKey,
      ...(block ? { block: { number: block.number, hash: block.hash, timestamp: block.timestamp } } : {}),
      ...spec.fields,
    },
    firstSeenAt: spec.nowMs,
    ...(watch.url === undefined ? { streamOnly: true as const } : {}),
    ...(watch.ordered ? { ordered: true as const } : {}),
  }
}

const REMOVED_TYPE: Partial<Record<EventType, EventType>> = {
  'evm.log': 'evm.log.removed',
  'evm.transaction': 'evm.transaction.removed',
  'evm.activity': 'evm.activity.removed',
  'evm.block': 'evm.block.removed',
}

/**
 * The event that takes `event` back after its block left the chain: its own id (same parts, the
 * removed type), the same data with `retracts` and, for a log, `removed: true` as a node says it.
 */
export function removedEvent(event: MatchedEvent, nowMs: number): MatchedEvent | undefined {
  if (event.type === 'evm.batch') return removedBatch(event, nowMs)
  const type = REMOVED_TYPE[event.type]
  if (!type) return undefined
  const data: Record<string, unknown> = { ...event.data, retracts: event.id }
  if (data.log && typeof data.log === 'object') data.log = { ...data.log, removed: true }
  return { ...event, id: webhookId(event.watchId, [event.id, type]), type, data, firstSeenAt: nowMs }
}
