/**
 * The soak's oracle: from the chain's final canonical history and each watch's filter, every
 * (watch, event) that must have been delivered, compared with what the receiver accepted (2xx).
 * Pure: the runner gathers the blocks and the receipts, this decides.
 *
 * An event is identified as a receiver would correlate it: watch, type, `eventKey` and block
 * hash (the same log in another block is another event). What it checks:
 * - lost: an event of a canonical block at least `confirmations` deep, at or after the watch's
 *   `startBlock`, never accepted (alone, or inside an `evm.batch`);
 * - more than one `webhook-id` for one event (each id counts once however often it came);
 * - retractions: every accepted event (or batch part) of a block that is not canonical has an
 *   accepted `*.removed` whose `retracts` is its id (missing otherwise), and no accepted
 *   `*.removed` names a block that is canonical (spurious);
 * - duplicates: an id accepted more than once (allowed: a receiver dedupes by id), counted;
 * - ordered watches: ids first accepted out of `sequence` order;
 * - events of canonical blocks that no watch's filter owes (before its start, or not matching).
 *
 * Pauses. A paused watch is not matched (README, "Concepts": `paused` is the user's; the worker
 * postpones what was already queued, and nothing new is matched until it is active again): the
 * events of blocks the subscriber processed while the watch was paused are not owed. The runner
 * brackets each pause by the subscriber's cursor read just before the PATCH to `paused`
 * (`afterBlock`: everything up to it was queued while active, so it is owed) and read
 * `RESUME_SETTLE_MS` after the PATCH back to `active` (`throughBlock`: a change reaches the
 * subscriber within 1 s, so every later block is matched again). In between, the blocks the
 * subscriber processed while the watch was paused owe nothing; since it processes blocks in
 * order (a restart or a reorg only goes back to blocks not yet saved, or dropped), those form
 * one run: matched, then skipped, then matched again. An event missing from a block after the
 * run, or from a block whose other events came, is lost.
 */

import { TRANSFER_TOPIC } from '../../src/chains/evm/abi.js'

export interface WatchSpec {
  name: string
  id: string
  kind: 'logs' | 'activity'
  /** logs: the contract, and the topics as eth_getLogs takes them (null: any). */
  address?: string
  topics?: readonly (string | null)[]
  /** activity: the watched addresses (lowercase). */
  addresses?: readonly string[]
  confirmations: number
  batch: boolean
  ordered: boolean
  startBlock: number
}

export interface ChainLog { address: string; topics: readonly string[]; transactionHash: string; logIndex: number }
export interface ChainTx { hash: string; from: string; to: string | null }
export interface ChainBlock { number: number; hash: string; transactions: readonly ChainTx[]; logs: readonly ChainLog[] }

export interface PauseWindow { watchId: string; afterBlock: number; throughBlock: number }

export interface AcceptedWebhook {
  id: string
  at: number
  body: { type: string; data: Record<string, unknown> }
}

export interface OracleInput {
  chain: string
  watches: readonly WatchSpec[]
  /** The canonical chain from the earliest startBlock to `head`, ascending. */
  blocks: readonly ChainBlock[]
  head: number
  /** Every 2xx the receiver gave, in arrival order. */
  accepted: readonly AcceptedWebhook[]
  pauses: readonly PauseWindow[]
  /** When the runner first saw each block hash (ms), for event-to-delivery times. */
  firstSeen: ReadonlyMap<string, number>
}

export interface Percentiles { count: number; p50Ms: number | null; p99Ms: number | null }

export interface WatchFigures { expected: number; delivered: number; lost: number; optional: number; optionalDelivered: number }

export interface OracleReport {
  expected: number
  lost: number
  lostSamples: string[]
  multipleIds: number
  multipleIdSamples: string[]
  retractionsMissing: number
  retractionsSpurious: number
  retractionSamples: string[]
  /** Accepted `*.removed` whose original the receiver never accepted (it may have been cancelled or still be retrying). */
  retractionsOfUnseen: number
  duplicates: number
  /** Events of canonical blocks accepted that no watch's filter owes (a block before its start, a log it does not match). */
  unowed: number
  unowedSamples: string[]
  /** Accepted events (or parts) from blocks that are no longer canonical. */
  droppedDelivered: number
  outOfOrder: number
  orderSamples: string[]
  /** Events of blocks inside pause windows, and how many of them came (the rest were skipped while paused). */
  optional: number
  optionalDelivered: number
  latencyConfirmed0: Percentiles
  latencyAll: Percentiles
  perWatch: Record<string, WatchFigures>
}

const identity = (watchId: string, type: string, eventKey: string, blockHash: string) => `${watchId}|${type}|${eventKey}|${blockHash}`

function topicsMatch(filter: readonly (string | null)[], topics: readonly string[]): boolean {
  return filter.every((want, i) => want === null || topics[i]?.toLowerCase() === want.toLowerCase())
}

const topicAddress = (topic: string | undefined) => (topic ? `0x${topic.slice(26)}`.toLowerCase() : '')

/** Identities of the events `watch` owes for one block. */
export function eventsOf(chain: string, watch: WatchSpec, block: ChainBlock): string[] {
  const out: string[] = []
  if (watch.kind === 'logs') {
    for (const log of block.logs) {
      if (watch.address && log.address.toLowerCase() !== watch.address) continue
      if (!topicsMatch(watch.topics ?? [], log.topics)) continue
      out.push(identity(watch.id, 'evm.log', `${chain}:${log.transactionHash}:${log.logIndex}`, block.hash))
    }
    return out
  }
  const watched = new Set(watch.addresses)
  for (const tx of block.transactions) {
    if (watched.has(tx.from.toLowerCase()) || (tx.to !== null && watched.has(tx.to.toLowerCase()))) {
      out.push(identity(watch.id, 'evm.activity', `${chain}:${tx.hash}:external`, block.hash))
    }
  }
  for (const log of block.logs) {
    if (log.topics[0]?.toLowerCase() !== TRANSFER_TOPIC || log.topics.length !== 3) continue
    if (watched.has(topicAddress(log.topics[1])) || watched.has(topicAddress(log.topics[2]))) {
      out.push(identity(watch.id, 'evm.activity', `${chain}:${log.transactionHash}:${log.logIndex}`, block.hash))
    }
  }
  return out
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50Ms: null, p99Ms: null }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
  return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99) }
}

/** Where the blocks of a pause window have got to: matched (before it applied), skipped, matched again. */
type PausePhase = 'before' | 'gap' | 'after'

interface Carried { identity: string; id: string; blockHash: string }

/** The events a webhook carries: itself, or each item of a batch (with the item's own id). */
function carried(webhook: AcceptedWebhook): Carried[] {
  const { type, data } = webhook.body
  const watchId = String(data.watchId)
  const blockHash = String((data.block as { hash?: string } | undefined)?.hash ?? '')
  if (type === 'evm.batch') {
    return (data.events as { id: string; type: string; eventKey: string }[]).map((item) => ({
      identity: identity(watchId, item.type, item.eventKey, blockHash), id: item.id, blockHash,
    }))
  }
  return [{ identity: identity(watchId, type, String(data.eventKey), blockHash), id: webhook.id, blockHash }]
}

const isRemoval = (type: string) => type.endsWith('.removed')
const SAMPLES = 10

export function runOracle(input: OracleInput): OracleReport {
  const canonical = new Set(input.blocks.map((b) => b.hash))
  const watchById = new Map(input.watches.map((w) => [w.id, w]))

  // What the receiver accepted.
  const acceptCount = new Map<string, number>()
  const idsOf = new Map<string, Set<string>>()
  const firstAt = new Map<string, number>()
  const retracted = new Set<string>()
  const seenIds = new Set<string>()
  const originals: AcceptedWebhook[] = []
  const removals: AcceptedWebhook[] = []
  const orderedFirst = new Map<string, { sequence: number; id: string; at: number }[]>()
  for (const webhook of input.accepted) {
    const count = (acceptCount.get(webhook.id) ?? 0) + 1
    acceptCount.set(webhook.id, count)
    if (count > 1) continue
    const { type, data } = webhook.body
    const watchId = String(data.watchId)
    if (watchById.get(watchId)?.ordered) {
      const list = orderedFirst.get(watchId) ?? []
      list.push({ sequence: Number(data.sequence), id: webhook.id, at: webhook.at })
      orderedFirst.set(watchId, list)
    }
    if (isRemoval(type)) {
      removals.push(webhook)
      retracted.add(String(data.retracts))
      continue
    }
    originals.push(webhook)
    seenIds.add(webhook.id)
    for (const event of carried(webhook)) {
      const ids = idsOf.get(event.identity) ?? new Set<string>()
      ids.add(event.id)
      idsOf.set(event.identity, ids)
      if (!firstAt.has(event.identity)) firstAt.set(event.identity, webhook.at)
    }
  }

  // What was owed.
  const report: OracleReport = {
    expected: 0, lost: 0, lostSamples: [], multipleIds: 0, multipleIdSamples: [],
    retractionsMissing: 0, retractionsSpurious: 0, retractionSamples: [], retractionsOfUnseen: 0,
    duplicates: 0, unowed: 0, unowedSamples: [], droppedDelivered: 0, outOfOrder: 0, orderSamples: [], optional: 0, optionalDelivered: 0,
    latencyConfirmed0: { count: 0, p50Ms: null, p99Ms: null }, latencyAll: { count: 0, p50Ms: null, p99Ms: null }, perWatch: {},
  }
  const latency0: number[] = []
  const latencyAll: number[] = []
  for (const watch of input.watches) {
    const figures: WatchFigures = { expected: 0, delivered: 0, lost: 0, optional: 0, optionalDelivered: 0 }
    const pauses = input.pauses.filter((p) => p.watchId === watch.id).map((p) => ({ ...p, phase: 'before' as PausePhase }))
    const lose = (block: ChainBlock, event: string) => {
      figures.lost++
      if (report.lostSamples.length < SAMPLES) report.lostSamples.push(`${watch.name} block ${block.number} ${event}`)
    }
    for (const block of input.blocks) {
      if (block.number < watch.startBlock || block.number > input.head - watch.confirmations) continue
      const events = eventsOf(input.chain, watch, block).map((event) => ({ event, at: firstAt.get(event) }))
      if (events.length === 0) continue
      const pause = pauses.find((p) => block.number > p.afterBlock && block.number <= p.throughBlock)
      const missing = events.filter((e) => e.at === undefined)
      if (pause) {
        // A block is matched whole or not at all; the blocks not matched form one run.
        figures.optional += events.length
        figures.optionalDelivered += events.length - missing.length
        if (missing.length === events.length && pause.phase !== 'after') {
          pause.phase = 'gap'
          continue
        }
        if (pause.phase === 'gap') pause.phase = 'after'
        figures.expected += missing.length
        for (const { event } of missing) lose(block, event)
        continue
      }
      figures.expected += events.length
      figures.delivered += events.length - missing.length
      for (const { event } of missing) lose(block, event)
      const seen = input.firstSeen.get(block.hash)
      if (seen === undefined || pauses.length > 0) continue
      for (const { at } of events) {
        if (at === undefined) continue
        latencyAll.push(at - seen)
        if (watch.confirmations === 0) latency0.push(at - seen)
      }
    }
    report.perWatch[watch.name] = figures
    report.expected += figures.expected
    report.lost += figures.lost
    report.optional += figures.optional
    report.optionalDelivered += figures.optionalDelivered
  }

  for (const [event, ids] of idsOf) {
    if (ids.size <= 1) continue
    report.multipleIds++
    if (report.multipleIdSamples.length < SAMPLES) report.multipleIdSamples.push(`${event}: ${[...ids].join(', ')}`)
  }
  for (const count of acceptCount.values()) report.duplicates += count - 1

  // Every event a watch may be sent: its filter's, in canonical blocks from its start.
  const owed = new Set<string>()
  for (const watch of input.watches) {
    for (const block of input.blocks) if (block.number >= watch.startBlock) for (const event of eventsOf(input.chain, watch, block)) owed.add(event)
  }
  for (const webhook of originals) {
    const hash = String((webhook.body.data.block as { hash?: string } | undefined)?.hash ?? '')
    if (canonical.has(hash)) {
      for (const event of carried(webhook)) {
        if (owed.has(event.identity)) continue
        report.unowed++
        if (report.unowedSamples.length < SAMPLES) report.unowedSamples.push(`${webhook.body.type} ${event.id}: ${event.identity}`)
      }
      continue
    }
    report.droppedDelivered++
    if (retracted.has(webhook.id)) continue
    report.retractionsMissing++
    if (report.retractionSamples.length < SAMPLES) report.retractionSamples.push(`missing: ${webhook.body.type} ${webhook.id} block ${hash}`)
  }
  for (const webhook of removals) {
    const hash = String((webhook.body.data.block as { hash?: string } | undefined)?.hash ?? '')
    const retracts = String(webhook.body.data.retracts)
    if (!seenIds.has(retracts)) report.retractionsOfUnseen++
    if (!canonical.has(hash)) continue
    report.retractionsSpurious++
    if (report.retractionSamples.length < SAMPLES) report.retractionSamples.push(`spurious: ${webhook.body.type} ${webhook.id} retracts ${retracts} of canonical block ${hash}`)
  }

  for (const firsts of orderedFirst.values()) {
    for (let i = 1; i < firsts.length; i++) {
      const [before, after] = [firsts[i - 1]!, firsts[i]!]
      if (after.sequence > before.sequence) continue
      report.outOfOrder++
      if (report.orderSamples.length < SAMPLES) {
        report.orderSamples.push(`sequence ${after.sequence} (${after.id}) came ${after.at - before.at} ms after ${before.sequence} (${before.id})`)
      }
    }
  }
  report.latencyConfirmed0 = percentiles(latency0)
  report.latencyAll = percentiles(latencyAll)
  return report
}

/** The figures that must be 0 for the soak to pass, by name. */
export function failures(report: OracleReport, extra: Record<string, number> = {}): string[] {
  const mustBeZero: Record<string, number> = {
    lost: report.lost,
    'events under more than one webhook-id': report.multipleIds,
    'retractions missing': report.retractionsMissing,
    'retractions spurious': report.retractionsSpurious,
    'ordered watch out of order': report.outOfOrder,
    'events no filter owes': report.unowed,
    ...extra,
  }
  return Object.entries(mustBeZero).filter(([, n]) => n !== 0).map(([name, n]) => `${name}: ${n}`)
}
