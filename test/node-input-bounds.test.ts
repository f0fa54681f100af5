// What a hostile or broken node sends is bounded before it costs memory, CPU or a stalled chain:
// frames nested too deeply, floods of notifications for unknown subscriptions, quantities too
// long to convert, and a node that sends heads but answers no request.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import type { Address } from 'viem'
import { RpcSocket, type RpcSocketOptions } from '../src/chains/rpc-socket.js'
import { jsonDeeperThan } from '../src/chains/json-depth.js'
import { parseHead, parseTransaction } from '../src/chains/evm/rpc-types.js'
import { connectionNotReadyReason } from '../src/subscriber/chain-runner.js'
import { send } from './helpers/contracts.js'
import { startFakeNode, type FakeConnection } from './helpers/fake-evm-node.js'
import { FAST, harness, loggedTxHashes, startTokenChain } from './helpers/subscriber-harness.js'

const { redisServer, anvil, clients, token, transferWatch } = await startTokenChain(t, 10n ** 24n)
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const NEW_HEADS = { method: 'eth_subscribe', params: ['newHeads'], unsubscribeMethod: 'eth_unsubscribe' }

/** A socket whose log lines are kept, parsed, for assertions on what was logged and how often. */
function loggedSocket(t: Test, endpoints: string[], options: Partial<RpcSocketOptions> = {}) {
  const lines: Array<{ msg: string; skipped?: number; [k: string]: unknown }> = []
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const s = new RpcSocket({ name: 'test', endpoints, logger: pino({ level: 'debug' }, sink), backoffInitialMs: 20, backoffMaxMs: 100, ...options })
  t.teardown(() => s.close())
  s.start()
  return { socket: s, lines }
}

t.test('quantities are bounded before they are converted; byte strings are not', async (t) => {
  const tx = { hash: `0x${'1'.repeat(64)}`, from: `0x${'2'.repeat(40)}`, to: null, input: '0x' }
  t.ok(parseTransaction({ ...tx, value: `0x${'f'.repeat(64)}` }), 'a uint256 has 64 hex digits')
  t.equal(parseTransaction({ ...tx, value: `0x${'f'.repeat(65)}` }), undefined)
  t.equal(parseTransaction({ ...tx, value: `0x${'f'.repeat(10_000_000)}` }), undefined, 'ten million digits are refused, not converted')
  t.ok(parseTransaction({ ...tx, value: '0x0', input: `0x${'ab'.repeat(100_000)}` }), 'calldata is as long as it is')
  t.equal(parseHead({ number: `0x${'1'.repeat(14)}`, hash: tx.hash }), undefined, 'a block number beyond 2^53 is no head')
})

t.test('nesting depth is measured outside strings', async (t) => {
  t.equal(jsonDeeperThan('{"a":[{"b":[1]}]}', 4), false)
  t.equal(jsonDeeperThan('{"a":[{"b":[[1]]}]}', 4), true)
  t.equal(jsonDeeperThan('{"a":"[[[[[[\\"[[[[["}', 1), false, 'brackets and escaped quotes inside a string')
})

t.test('a frame nested too deeply and a run of malformed frames are skipped, logged once with a count; later frames are read', async (t) => {
  const node = await startFakeNode({
    eth_subscribe: (_params, connection) => {
      connection.sendRaw(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`)
      for (let i = 0; i < 1_050; i++) connection.sendRaw('{not json')
      connection.notify('0x1', { number: '0x5', hash: `0x${'5'.repeat(64)}` })
      return '0x1'
    },
  })
  t.teardown(() => node.close())
  const { socket, lines } = loggedSocket(t, [node.wsUrl])
  const heads: unknown[] = []
  const arrived = new Promise<void>((resolve) => socket.subscribe(NEW_HEADS, (head) => { heads.push(head); resolve() }))
  await arrived
  t.same(heads, [{ number: '0x5', hash: `0x${'5'.repeat(64)}` }])
  t.match(lines.filter((l) => l.msg === 'frame nested too deeply skipped'), [{ skipped: 1, maxDepth: 64 }])
  t.match(lines.filter((l) => l.msg === 'malformed JSON frame skipped'), [{ skipped: 1 }], '1,050 bad frames, one line')
  t.equal(socket.connected, true, 'the connection stays up')
})

t.test('notifications for a subscription id not yet known are held within a byte bound, newest kept', async (t) => {
  const payload = 'a'.repeat(20_000)
  const node = await startFakeNode({
    eth_subscribe: (_params, connection: FakeConnection) => {
      // 200 notifications of ~20 KB (4 MB) before the answer that names their subscription.
      for (let i = 0; i < 200; i++) connection.notify('0x9', { i, payload })
      return '0x9'
    },
  })
  t.teardown(() => node.close())
  const { socket, lines } = loggedSocket(t, [node.wsUrl], { maxPayloadBytes: 256 * 1024 })
  const seen: number[] = []
  const sub = socket.subscribe(NEW_HEADS, (n) => seen.push((n as { i: number }).i))
  await sub.ready
  t.ok(seen.length > 0 && seen.length <= 13, `at most 256 KiB of ~20 KB notifications held (${seen.length})`)
  t.same(seen, Array.from({ length: seen.length }, (_, k) => 200 - seen.length + k), 'the newest, in order')
  const drops = lines.filter((l) => l.msg.startsWith('too many notifications for unknown subscriptions'))
  t.equal(drops.length, 1, 'the drops are logged once')
})

t.test('a node that answers no request is left for the next endpoint; readiness names it until a node answers', async (t) => {
  const silent = await startFakeNode({ eth_blockNumber: () => undefined })
  t.teardown(() => silent.close())
  const { socket, lines } = loggedSocket(t, [`${silent.wsUrl}/secret-key`, anvil.wsUrl], { requestTimeoutMs: 300 })
  await new Promise<void>((resolve) => socket.on('connected', () => resolve()))
  const movedOn = new Promise<string>((resolve) => socket.on('connected', ({ endpoint }) => resolve(endpoint)))
  await t.rejects(socket.request('eth_blockNumber'), { code: 'BH_RPC_TIMEOUT' })
  t.equal(await movedOn, `ws://127.0.0.1:${anvil.port}`, 'failed over to the next endpoint')
  t.equal(connectionNotReadyReason('local', socket),
    `chain local: node not answering (ws://127.0.0.1:${new URL(silent.wsUrl).port} did not answer eth_blockNumber within 300 ms)`,
    'not ready, the endpoint redacted')
  t.match(lines.filter((l) => l.msg === 'request unanswered, switching endpoint'), [{ method: 'eth_blockNumber' }])
  t.match(await socket.request('eth_blockNumber'), /^0x/)
  t.equal(connectionNotReadyReason('local', socket), undefined, 'ready once a node answers')
})

t.test('a hostile first endpoint (huge head number, deep frames, floods, no answers) costs no event: the chain follows the next one', async (t) => {
  const hostile = await startFakeNode({
    eth_subscribe: (_params, connection) => {
      setImmediate(() => {
        connection.notify('0x1', { number: `0x${'f'.repeat(10_000_000)}`, hash: `0x${'1'.repeat(64)}` })
        connection.sendRaw(`${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`)
        for (let i = 0; i < 500; i++) connection.notify(`0xunknown${i}`, { junk: 'x'.repeat(10_000) })
        connection.notify('0x1', { number: '0x1', hash: `0x${'1'.repeat(64)}` })
      })
      return '0x1'
    },
    eth_chainId: () => '0x7a69',
    // Heads, but never an answer to what they make the follower ask.
    eth_getBlockByNumber: () => undefined,
    eth_getBlockByHash: () => undefined,
  })
  t.teardown(() => hostile.close())
  const h = harness(t, redisServer.url, { ws: [hostile.wsUrl, anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch(transferWatch)
  const sub = await h.startSubscriber({ ...FAST, evm: { socket: { ...FAST.evm!.socket, requestTimeoutMs: 500 } } })
  const hash = await send(clients, token, 'TestToken', 'transfer', [BOB, 7n])
  await h.caughtUp(sub, await h.mine())
  t.same(await loggedTxHashes(h, watch.id), [hash], 'the transfer delivered once, from the answering node')
  t.equal(sub.notReadyReason(), undefined, 'ready on the answering node')
})
