/**
 * The soak's oracle (bench/soak/oracle.ts) must be able to fail: fed a chain and what a receiver
 * accepted, it finds the lost event, the second id, the missing and the spurious retraction, the
 * out-of-order delivery, and a paused watch's skipped blocks only where a pause explains them.
 */
import t from 'tap'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { runOracle, type AcceptedWebhook, type ChainBlock, type OracleInput, type WatchSpec } from '../bench/soak/oracle.js'

const CHAIN = 'local'
const TOKEN = '0x5fbdb2315678afecb367f032d93f642f64180aa3'
const pad = (n: number) => `0x${n.toString(16).padStart(64, '0')}`
const hashOf = (n: number, fork = '') => `0x${fork}${n.toString(16).padStart(64 - fork.length, '0')}`

function block(number: number, fork = ''): ChainBlock {
  return {
    number, hash: hashOf(number, fork), transactions: [],
    logs: [{ address: TOKEN, topics: [TRANSFER_TOPIC, pad(1), pad(2)], transactionHash: hashOf(number, `${fork}ee`), logIndex: 0 }],
  }
}

const watch = (overrides: Partial<WatchSpec> = {}): WatchSpec => ({
  name: 'logs', id: 'wch_logs', kind: 'logs', address: TOKEN, topics: [TRANSFER_TOPIC],
  confirmations: 0, batch: false, ordered: false, startBlock: 1, ...overrides,
})

let clock = 0
/** The evm.log webhook for a block's log, as the receiver accepted it. */
function logWebhook(w: WatchSpec, b: ChainBlock, id = `evt_${w.id}_${b.hash}`, sequence = b.number): AcceptedWebhook {
  const log = b.logs[0]!
  return {
    id, at: ++clock,
    body: { type: 'evm.log', data: { watchId: w.id, sequence, eventKey: `${CHAIN}:${log.transactionHash}:0`, block: { number: b.number, hash: b.hash } } },
  }
}
function removal(w: WatchSpec, original: AcceptedWebhook, b: ChainBlock, sequence: number): AcceptedWebhook {
  return { id: `${original.id}_removed`, at: ++clock, body: { type: 'evm.log.removed', data: { watchId: w.id, sequence, retracts: original.id, block: { number: b.number, hash: b.hash } } } }
}

const input = (watches: WatchSpec[], blocks: ChainBlock[], accepted: AcceptedWebhook[], more: Partial<OracleInput> = {}): OracleInput => ({
  chain: CHAIN, watches, blocks, head: blocks[blocks.length - 1]!.number, accepted, pauses: [], firstSeen: new Map(), ...more,
})

t.test('every event delivered once, a dropped block retracted: nothing to report', async (t) => {
  const w = watch()
  const chain = [block(1), block(2), block(3)]
  const dropped = block(3, 'aa')
  const early = logWebhook(w, dropped)
  const report = runOracle(input([w], chain, [
    logWebhook(w, chain[0]!), logWebhook(w, chain[1]!), early, removal(w, early, dropped, 4), logWebhook(w, chain[2]!), logWebhook(w, chain[2]!),
  ]))
  t.match(report, { expected: 3, lost: 0, multipleIds: 0, retractionsMissing: 0, retractionsSpurious: 0, duplicates: 1, droppedDelivered: 1 })
})

t.test('a lost event, one under two ids, a missing and a spurious retraction are each counted', async (t) => {
  const w = watch()
  const chain = [block(1), block(2), block(3), block(4)]
  const dropped = block(4, 'bb')
  const canonical = logWebhook(w, chain[0]!)
  const report = runOracle(input([w], chain, [
    canonical,
    logWebhook(w, chain[1]!), logWebhook(w, chain[1]!, 'evt_other'),
    logWebhook(w, dropped),
    removal(w, canonical, chain[0]!, 9),
    logWebhook(w, chain[3]!),
  ]))
  t.match(report, { lost: 1, multipleIds: 1, retractionsMissing: 1, retractionsSpurious: 1, unowed: 0 })
  t.match(report.lostSamples[0], /block 3/)
})

t.test('an event before the watch started, or of a log its filter does not match, is counted as not owed', async (t) => {
  const w = watch({ startBlock: 2 })
  const other = watch({ name: 'other', id: 'wch_other', address: '0x00000000000000000000000000000000000000ff' })
  const chain = [block(1), block(2)]
  const report = runOracle(input([w, other], chain, [logWebhook(w, chain[0]!), logWebhook(w, chain[1]!), logWebhook(other, chain[1]!)]))
  t.match(report, { lost: 0, unowed: 2 })
})

t.test('confirmations: the last blocks are not owed yet; ordered: an id first accepted out of sequence is counted', async (t) => {
  const w = watch({ confirmations: 2, ordered: true })
  const chain = [block(1), block(2), block(3), block(4)]
  const report = runOracle(input([w], chain, [logWebhook(w, chain[1]!), logWebhook(w, chain[0]!)]))
  t.match(report, { expected: 2, lost: 0, outOfOrder: 1 })
})

t.test('a pause: one run of skipped blocks inside its window is owed nothing; a block skipped after it is lost', async (t) => {
  const w = watch()
  const chain = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => block(n))
  const got = (...numbers: number[]) => numbers.map((n) => logWebhook(w, chain[n - 1]!))
  const pauses = [{ watchId: w.id, afterBlock: 2, throughBlock: 7 }]
  const clean = runOracle(input([w], chain, got(1, 2, 3, 6, 7, 8), { pauses }))
  t.match(clean, { lost: 0, optional: 5, optionalDelivered: 3 })
  const holed = runOracle(input([w], chain, got(1, 2, 4, 6, 8), { pauses }))
  t.match(holed, { lost: 2 }, 'block 5 after the watch was matched again, and block 7, are lost')
  const outside = runOracle(input([w], chain, got(1, 3, 4, 5, 6, 7, 8), { pauses }))
  t.match(outside, { lost: 1 }, 'block 2 was queued before the pause')
})
