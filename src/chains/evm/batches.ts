/**
 * `"batch": "block"` watches get one `evm.batch` webhook per block instead of one per event
 * (see README, "Batches"). Pure: the same events of a block, in the order matching found them,
 * always give the same parts with the same `webhook-id`s, so a retry, a restart or a replay sends
 * the same parts. Each part's body stays under 256 KiB.
 */
import { webhookId } from '../../domain/ids.js'
import type { MatchedEvent } from '../../delivery/delivery-record.js'

/** The limit on a webhook body. */
export const MAX_BATCH_BODY_BYTES = 256 * 1024
/** Room kept for what surrounds the events in a body: type, timestamp, watchId, chain, sequence, block, part. */
const ENVELOPE_BYTES = 1024

/** An event inside a batch: its own id and type and the data it would have carried alone. */
function item(event: MatchedEvent): Record<string, unknown> {
  const { block: _block, confirmations: _confirmations, ...fields } = event.data
  return { id: event.id, type: event.type, ...fields }
}

/**
 * The parts of one watch's events from one block (at least one event, all of the same watch and
 * block): consecutive runs of items, each as many as fit in a body, cut greedily in order. An
 * item alone too large for a body goes in a part of its own.
 */
export function batchParts(events: readonly MatchedEvent[], firstSeenAt: number, maxBodyBytes = MAX_BATCH_BODY_BYTES): MatchedEvent[] {
  const first = events[0]!
  const budget = maxBodyBytes - ENVELOPE_BYTES
  const runs: Record<string, unknown>[][] = [[]]
  let size = 0
  for (const event of events) {
    const entry = item(event)
    const bytes = Buffer.byteLength(JSON.stringify(entry)) + 1
    const run = runs[runs.length - 1]!
    if (run.length > 0 && size + bytes > budget) {
      runs.push([entry])
      size = bytes
    } else {
      run.push(entry)
      size += bytes
    }
  }
  const block = first.data.block as { hash: string }
  const parts = runs.length
  return runs.map((items, i) => ({
    id: webhookId(first.watchId, [first.chain, block.hash, 'evm.batch', i + 1, parts]),
    watchId: first.watchId,
    tenantId: first.tenantId,
    chain: first.chain,
    type: 'evm.batch',
    timestamp: first.timestamp,
    data: { confirmations: first.data.confirmations, block: first.data.block, events: items, part: i + 1, parts },
    firstSeenAt,
    ...(first.streamOnly ? { streamOnly: true as const } : {}),
    ...(first.ordered ? { ordered: true as const } : {}),
  }))
}

/** The `evm.batch.removed` that takes a batch part back: `retracts` is the part's id, `events` the ids it held. */
export function removedBatch(batch: MatchedEvent, nowMs: number): MatchedEvent {
  const { events, ...rest } = batch.data as { events: { id: string }[] }
  return {
    ...batch,
    id: webhookId(batch.watchId, [batch.id, 'evm.batch.removed']),
    type: 'evm.batch.removed',
    data: { ...rest, retracts: batch.id, events: events.map((e) => e.id) },
    firstSeenAt: nowMs,
  }
}
