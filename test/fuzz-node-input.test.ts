/**
 * Property tests of what nodes send (fast-check, seeded): EVM heads, blocks, logs, receipts and
 * transactions, and Solana notifications and JSON, generated well formed, one field off, or as
 * anything at all. Nothing a node sends makes a handler throw anything but a coded error; what
 * is accepted is what was sent and matches without error; the rest is refused, for the caller
 * to log and skip (or, for an answer the follower needs, to retry).
 */
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import type { RpcSocket } from '../src/chains/rpc-socket.js'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { EvmNode } from '../src/chains/evm/evm-node.js'
import { parseBlock, parseHead, parseLog, parseReceipt, parseTransaction, type RpcBlock, type RpcLog, type RpcReceipt } from '../src/chains/evm/rpc-types.js'
import { EvmWatchIndex } from '../src/chains/evm/watch-index.js'
import { parseSolanaJson } from '../src/chains/solana/json.js'
import { isRejection, matchedEvents, parseNotification } from '../src/chains/solana/notifications.js'
import type { SolanaSubscribeMethod, SolanaWatch } from '../src/chains/solana/subscriptions.js'
import { hasCode } from '../src/domain/errors.js'
import type { EventType, Watch } from '../src/domain/watch-types.js'
import { pino } from 'pino'
import { ADDRESS, startFakeChain, SUBSCRIPTION } from './helpers/fake-chain.js'
import { capturedLogger, corrupt, corruptDeep, repeated } from './helpers/node-fuzz.js'
import { startRedis } from './helpers/processes.js'
import { solanaFixture } from './helpers/solana-node.js'
import { FAST, harness } from './helpers/subscriber-harness.js'

const SEED = Number(process.env.FUZZ_SEED ?? 7_331)
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const options = { seed: SEED, numRuns: RUNS }

// --- EVM ------------------------------------------------------------------------------------------

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => `0x${Buffer.from(b).toString('hex')}`)
const data = fc.uint8Array({ maxLength: 96 }).map((b) => `0x${Buffer.from(b).toString('hex')}`)
const quantity = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map((n) => `0x${n.toString(16)}`)
const small = fc.integer({ min: 0, max: 2 ** 40 }).map((n) => `0x${n.toString(16)}`)
/** Few addresses and topics, so generated logs and transactions hit the watches below. */
const ADDRESSES = ['0x00000000000000000000000000000000000000a1', '0x00000000000000000000000000000000000000b2']
const address = fc.oneof(fc.constantFrom(...ADDRESSES), bytes(20))
const topic = fc.oneof(fc.constant(TRANSFER_TOPIC), fc.constantFrom(...ADDRESSES).map((a) => `0x${a.slice(2).padStart(64, '0')}`), bytes(32))
/** Fields a node may add that blockhook passes on untouched. */
const extra = fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => !['__proto__', 'constructor'].includes(k)), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 })

const transaction = fc.record({ hash: bytes(32), from: address, to: fc.option(address, { nil: null }), input: fc.oneof(fc.constant('0x'), data), value: quantity })
  .chain((tx) => extra.map((x) => ({ ...x, ...tx })))
const block = fc.record({ number: small, hash: bytes(32), parentHash: bytes(32), timestamp: small, transactions: fc.array(transaction, { maxLength: 3 }) })
  .chain((b) => extra.map((x) => ({ ...x, ...b })))
const logOf = (b: { number: string; hash: string }, txHashes: string[]) => fc.record({
  address, topics: fc.array(topic, { maxLength: 4 }), data,
  blockNumber: fc.constant(b.number), blockHash: fc.constant(b.hash),
  transactionHash: txHashes.length > 0 ? fc.constantFrom(...txHashes) : bytes(32),
  transactionIndex: small, logIndex: small,
})
const receiptOf = (txHash: string) => fc.record({
  transactionHash: fc.constant(txHash), status: fc.constantFrom('0x0', '0x1'), gasUsed: quantity,
  contractAddress: fc.option(address, { nil: null }), logs: fc.constant([]),
})

t.test('the EVM parsers never throw, and accept a value only as it was sent', async () => {
  const parsers: [string, (v: unknown) => unknown, fc.Arbitrary<unknown>][] = [
    ['head', parseHead, corrupt(fc.record({ number: small, hash: bytes(32) }))],
    ['transaction', parseTransaction, corrupt(transaction)],
    ['block', parseBlock, corrupt(block)],
    ['log', parseLog, corrupt(block.chain((b) => logOf(b, [])))],
    ['receipt', parseReceipt, corrupt(bytes(32).chain(receiptOf))],
  ]
  for (const [name, parse, input] of parsers) {
    fc.assert(fc.property(input, (v) => {
      const parsed = parse(v)
      if (parsed !== undefined && parsed !== v) throw new Error(`${name}: accepted, but not as sent`)
    }), options)
  }
})

const WATCH_BASE = { tenantId: 'ten_fuzz', chain: 'eth', url: 'https://example.com/hook', status: 'active', confirmations: 0, createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z' }
const EVM_WATCHES = [
  { id: 'wch_logs', type: 'evm.logs', filter: { address: ADDRESSES, topics: [TRANSFER_TOPIC] } },
  { id: 'wch_anylog', type: 'evm.logs', filter: {} },
  { id: 'wch_txs', type: 'evm.transactions', filter: { from: ADDRESSES, status: 'any' } },
  { id: 'wch_activity', type: 'evm.address_activity', filter: { addresses: ADDRESSES } },
  { id: 'wch_blocks', type: 'evm.blocks', filter: {} },
  { id: 'wch_batch', type: 'evm.logs', filter: { address: ADDRESSES }, batch: 'block' },
].map((w) => ({ ...WATCH_BASE, ...w }) as Watch)

t.test('blocks, logs and receipts the parsers accept match every kind of EVM watch without error', async (t) => {
  const index = new EvmWatchIndex('eth', 0)
  for (const watch of EVM_WATCHES) index.upsert(watch)
  const blockData = block.chain((b) => {
    const txHashes = (b.transactions as { hash: string }[]).map((tx) => tx.hash)
    return fc.record({
      block: fc.constant(b),
      logs: fc.array(logOf(b, txHashes), { maxLength: 4 }),
      receipts: (txHashes.length > 0 ? fc.tuple(...txHashes.map(receiptOf)) : fc.constant([])) as fc.Arbitrary<{ transactionHash: string }[]>,
    })
  })
  let matched = 0
  fc.assert(fc.property(blockData, ({ block: b, logs, receipts }) => {
    const parsedBlock = parseBlock(b)
    if (!parsedBlock || !logs.every((l) => parseLog(l)) || !receipts.every((r) => parseReceipt(r))) throw new Error('a well-formed value was refused')
    const events = index.matchBlock({
      block: parsedBlock as RpcBlock, logs: logs as RpcLog[],
      receipts: new Map(receipts.map((r) => [r.transactionHash, r as unknown as RpcReceipt])),
    }, Date.now())
    matched += events.length
    for (const { event } of events) JSON.stringify(event)
  }), options)
  t.ok(matched > RUNS, `the generated blocks matched (${matched} events)`)
})

t.test("the EVM node's answers: a value it accepts, or BH_NODE_BAD_ANSWER, never another error", async () => {
  const answer = fc.oneof(
    corrupt(block), fc.array(corrupt(block.chain((b) => logOf(b, []))), { maxLength: 3 }),
    fc.array(corrupt(bytes(32).chain(receiptOf)), { maxLength: 3 }), fc.constant(null), fc.anything({ maxDepth: 3 }),
  )
  const hash = `0x${'ab'.repeat(32)}`
  await fc.assert(fc.asyncProperty(answer, async (raw) => {
    // Only a stub answers garbage on demand: no real node does.
    const socket = { request: async () => raw } as unknown as RpcSocket
    const node = new EvmNode(socket, pino({ level: 'silent' }))
    const calls = [
      node.header(1), node.header('latest'), node.headerByHash(hash), node.blockByNumber(1, true), node.blockByNumber(1, false),
      node.blockByHash(hash, true), node.logsOf(hash), node.receipts(hash, [hash]), node.transaction(hash), node.identity(),
    ]
    for (const outcome of await Promise.allSettled(calls)) {
      if (outcome.status === 'rejected' && !hasCode(outcome.reason, 'BH_NODE_BAD_ANSWER')) throw outcome.reason
    }
  }), options)
})

/** Frames a broken or hostile node may send besides its answers: heads one field off, stray answers, notifications and text. */
const nodeFrame = fc.oneof(
  corrupt(fc.record({ number: small, hash: bytes(32), parentHash: bytes(32) }))
    .map((result) => JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: SUBSCRIPTION, result } }) ?? 'null'),
  fc.record({ subscription: fc.string({ maxLength: 10 }), result: fc.jsonValue({ maxDepth: 2 }) })
    .map((params) => JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params })),
  fc.record({ id: fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null)), result: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ['id'] })
    .map((m) => JSON.stringify({ jsonrpc: '2.0', ...m })),
  fc.record({ method: fc.string({ maxLength: 12 }), params: fc.jsonValue({ maxDepth: 2 }) }).map((m) => JSON.stringify(m)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 100, unit: 'binary' }),
)

t.test('an EVM subscriber sent hundreds of generated frames keeps following: every event once, no reconnect, each kind of skip logged once', async (t) => {
  const redisServer = await startRedis()
  const chain = await startFakeChain()
  t.teardown(async () => { await Promise.all([chain.node.close(), chain.standby.close()]); await redisServer.stop() })
  const { lines, logger } = capturedLogger()
  const h = harness(t, redisServer.url, { ws: [chain.node.wsUrl], http: '' }, {}, {}, logger)
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address: ADDRESS } })
  chain.mine(1)
  const sub = await h.startSubscriber(FAST)
  await h.caughtUp(sub, 1)
  for (const frame of fc.sample(nodeFrame, { seed: SEED, numRuns: RUNS })) chain.sendRaw(frame)
  await h.caughtUp(sub, chain.mine(2))
  const delivered = (await h.records(watch.id)).map((r) => (r.data.log as { transactionHash: string }).transactionHash)
  t.same(delivered, chain.canonicalTxHashes(), 'each block\'s event, once')
  t.equal((await h.leader(sub)).socket.reconnects, 0, 'bad frames do not cost the connection')
  t.same(repeated(lines), [], 'no warning twice')
  t.ok(lines.some((l) => l.msg === 'newHeads notification of unknown shape skipped'), 'the bad heads were logged as skipped')
})

// --- Solana ---------------------------------------------------------------------------------------

const METHODS: [SolanaSubscribeMethod, string, EventType, Partial<SolanaWatch>][] = [
  ['accountSubscribe', 'account-notification', 'solana.account', { type: 'solana.account', filter: { account: 'CM78CPUeXjn8o3yroDHxUtKsZZgoy4GPkPPXfouKNH12' } }],
  ['programSubscribe', 'program-notification', 'solana.program_account', { type: 'solana.program', filter: { programId: '11111111111111111111111111111111' } }],
  ['logsSubscribe', 'logs-notification', 'solana.logs', { type: 'solana.logs', filter: { all: true } }],
  ['signatureSubscribe', 'signature-notification', 'solana.signature', {
    type: 'solana.signature', filter: { signature: '2EBVM6cB8vAAD93Ktr6Vd8p67XPbQzCJX47MpReuiCXJAtcjaxpvWpcg9Ege1Nr5Tk3a2GFrByT7WPBjdsTycY9b' },
  }],
  ['slotSubscribe', 'slot-notification', 'solana.slot', { type: 'solana.slot', filter: {} }],
] as never

t.test('Solana notifications: a coded rejection or a notification that matches its watches without error', async (t) => {
  let accepted = 0
  for (const [method, fixture, type, watch] of METHODS) {
    const result = (solanaFixture(fixture) as { params: { result: unknown } }).params.result
    const solanaWatch = { ...WATCH_BASE, chain: 'sol', id: `wch_${type.replace(/\W/g, '')}`, ...watch } as SolanaWatch
    fc.assert(fc.property(corruptDeep(result), (input) => {
      const n = parseNotification(method, input)
      if (isRejection(n)) {
        if (!['BH_SOLANA_MALFORMED_NOTIFICATION', 'BH_SOLANA_NOT_TERMINAL'].includes(n.code) || !n.reason) throw new Error(`uncoded rejection ${JSON.stringify(n)}`)
        return
      }
      accepted++
      if (!Number.isSafeInteger(n.slot) || n.slot < 0) throw new Error(`accepted slot ${n.slot}`)
      for (const event of matchedEvents(type, n, [solanaWatch], Date.now())) JSON.stringify(event)
    }), options)
  }
  t.ok(accepted > RUNS, `well-formed notifications were accepted (${accepted})`)
})

/** JSON text whose integers may pass 2^53, beside what it must parse to (those as decimal strings). */
const bigIntJson: fc.Arbitrary<{ text: string; expected: unknown }> = fc.letrec<{ node: { text: string; expected: unknown } }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map((n) => ({ text: n.toString(), expected: Number.isSafeInteger(Number(n)) ? Number(n) : n.toString() })),
    // Other leaves; strings full of digits and quotes test that only literals outside strings change.
    fc.oneof(fc.boolean(), fc.constant(null), fc.string({ unit: 'binary' }), fc.stringMatching(/^[0-9"\\]{16,24}$/), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)))
      .map((v) => ({ text: JSON.stringify(v), expected: JSON.parse(JSON.stringify(v)) as unknown })),
    fc.array(tie('node'), { maxLength: 3 }).map((items) => ({ text: `[${items.map((i) => i.text).join(',')}]`, expected: items.map((i) => i.expected) })),
    fc.array(fc.tuple(fc.string({ maxLength: 20 }), tie('node')), { maxLength: 3 }).map((entries) => {
      const unique = [...new Map(entries).entries()]
      return { text: `{${unique.map(([k, v]) => `${JSON.stringify(k)}:${v.text}`).join(',')}}`, expected: Object.fromEntries(unique.map(([k, v]) => [k, v.expected])) }
    }),
  ),
})).node

t.test('Solana JSON: integers past 2^53 come out exact, as decimal strings; text that is not JSON is a SyntaxError', async () => {
  fc.assert(fc.property(bigIntJson, ({ text, expected }) => {
    const parsed = parseSolanaJson(text)
    if (!isDeepStrictEqual(parsed, expected)) throw new Error(`${text} parsed as ${JSON.stringify(parsed)}`)
  }), options)
  fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (text) => {
    try {
      parseSolanaJson(text)
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err
    }
  }), options)
})
