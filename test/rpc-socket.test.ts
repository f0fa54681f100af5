import t, { type Test } from 'tap'
import { pino } from 'pino'
import { RpcError, RpcSocket, type RpcSocketOptions } from '../src/chains/rpc-socket.js'
import { hasCode } from '../src/domain/errors.js'
import { freePort, startAnvil } from './helpers/processes.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
import { startFakeNode } from './helpers/fake-evm-node.js'

const anvil = await startAnvil(['--no-mining'])
t.teardown(() => anvil.stop())
const logger = pino({ level: 'silent' })

function socket(t: Test, endpoints: string[], options: Partial<RpcSocketOptions> = {}): RpcSocket {
  const s = new RpcSocket({ name: 'test', endpoints, logger, backoffInitialMs: 20, backoffMaxMs: 100, ...options })
  t.teardown(() => s.close())
  s.start()
  return s
}

const NEW_HEADS = { method: 'eth_subscribe', params: ['newHeads'], unsubscribeMethod: 'eth_unsubscribe' }

async function mine(): Promise<void> {
  const response = await fetch(anvil.url, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'evm_mine', params: [] }),
  })
  await response.json()
}

/** Resolves on the `count`-th connection from now: the socket says `connected` on each, the first and every reconnect. */
function connections(s: RpcSocket, count: number): Promise<void> {
  let seen = 0
  return new Promise((resolve) => {
    const off = s.on('connected', () => {
      if (++seen < count) return
      off()
      resolve()
    })
  })
}

/** Resolves with the next `count` notifications of a subscription. */
function collector() {
  const seen: unknown[] = []
  let waiter: { count: number; resolve: () => void } | undefined
  return {
    seen,
    push(result: unknown) {
      seen.push(result)
      if (waiter && seen.length >= waiter.count) waiter.resolve()
    },
    until(count: number): Promise<void> {
      if (seen.length >= count) return Promise.resolve()
      return new Promise((resolve) => { waiter = { count, resolve } })
    },
  }
}


t.test('fails over from a dead endpoint to the next one and answers requests; endpoints are redacted', async (t) => {
  const dead = `ws://127.0.0.1:${await freePort()}/secret-token`
  const s = new RpcSocket({ name: 'test', endpoints: [dead, `${anvil.wsUrl}/?api-key=hidden`], logger, backoffInitialMs: 20 })
  t.teardown(() => s.close())
  const connected = new Promise<string>((resolve) => s.on('connected', (info) => resolve(info.endpoint)))
  s.start()
  t.equal(await connected, `ws://127.0.0.1:${anvil.port}`)
  t.equal(s.connected, true)
  t.match(await s.request('eth_chainId'), /^0x/)
  await t.rejects(s.request('no_such_method'), { code: 'BH_RPC_ERROR' })
})

t.test('a subscription is replayed after the connection is cut, and requests in flight fail', async (t) => {
  const proxy = await startTcpProxy(anvil.port)
  t.teardown(() => proxy.close())
  const s = socket(t, [proxy.wsUrl])
  const heads = collector()
  const sub = s.subscribe(NEW_HEADS, (head) => heads.push(head))
  await sub.ready
  await mine()
  await heads.until(1)

  proxy.stall()
  const inFlight = s.request('eth_blockNumber')
  const reconnected = connections(s, 1)
  proxy.cut()
  await t.rejects(inFlight, { code: 'BH_RPC_DISCONNECTED' })
  await reconnected
  t.equal(s.reconnects, 1)
  await mine()
  await heads.until(2)
  t.equal(heads.seen.length, 2)
  t.match(heads.seen[1], { number: /^0x/, hash: /^0x/ })
  await sub.unsubscribe()
  t.equal(s.subscriptionCount, 0)
})

t.test('a request times out with a coded error when the node does not answer', async (t) => {
  const proxy = await startTcpProxy(anvil.port)
  t.teardown(() => proxy.close())
  const s = socket(t, [proxy.wsUrl])
  await new Promise<void>((resolve) => s.on('connected', () => resolve()))
  proxy.stall()
  const err = await s.request('eth_blockNumber', [], 100).catch((e: unknown) => e)
  t.ok(err instanceof RpcError && hasCode(err, 'BH_RPC_TIMEOUT'))
})

t.test('a missing pong closes a stalled connection and reconnects', async (t) => {
  const proxy = await startTcpProxy(anvil.port)
  t.teardown(() => proxy.close())
  const s = socket(t, [proxy.wsUrl], { pingIntervalMs: 50, pongTimeoutMs: 100 })
  await new Promise<void>((resolve) => s.on('connected', () => resolve()))
  const disconnected = new Promise<string>((resolve) => s.on('disconnected', (info) => resolve(info.reason)))
  const reconnected = connections(s, 1)
  proxy.stall()
  await disconnected
  await reconnected
  t.equal(proxy.connections, 2)
  t.match(await s.request('eth_chainId'), /^0x/)
})

t.test('the watchdog reconnects when no head is touched in time', async (t) => {
  const s = socket(t, [anvil.wsUrl], { watchdogMs: 100 })
  const reconnected = connections(s, 2)
  s.subscribe(NEW_HEADS, () => undefined)
  await reconnected
  t.ok(s.reconnects >= 1)
})

t.test('garbage frames are skipped and a notification that beats its id is not lost', async (t) => {
  const node = await startFakeNode({
    eth_subscribe: (_params, connection) => {
      connection.sendRaw('{not json')
      connection.sendRaw('[1,2')
      connection.sendRaw('"a string"')
      connection.sendRaw(JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { nothing: 1 } }))
      connection.notify('0xabc', { number: '0x1' })
      return '0xabc'
    },
    eth_chainId: () => '0x1',
  })
  t.teardown(() => node.close())
  const s = socket(t, [node.wsUrl])
  const heads = collector()
  const sub = s.subscribe(NEW_HEADS, (head) => heads.push(head))
  await sub.ready
  await heads.until(1)
  t.same(heads.seen, [{ number: '0x1' }])
  t.equal(await s.request('eth_chainId'), '0x1')
  t.equal(s.reconnects, 0)
})

t.test('every answer and notification is acknowledged at once with an unsolicited pong', async (t) => {
  // A node with Nagle's algorithm on holds its next frame until the last is acknowledged; the pong
  // carries that acknowledgement out in the same event-loop turn instead of after a delayed ACK.
  const node = await startFakeNode({ eth_blockNumber: () => '0x5', eth_subscribe: () => '0xabc' })
  t.teardown(() => node.close())
  const s = socket(t, [node.wsUrl])
  await new Promise<void>((resolve) => s.on('connected', () => resolve()))
  // With no subscription the client sends nothing on connecting, so the node has sent nothing yet.
  const connection = node.connections[0]!
  const answerAcknowledged = connection.nextPong()
  t.equal(await s.request('eth_blockNumber'), '0x5')
  await answerAcknowledged
  const subscribedAcknowledged = connection.nextPong()
  const heads = collector()
  await s.subscribe(NEW_HEADS, (head) => heads.push(head)).ready
  await subscribedAcknowledged
  const headAcknowledged = connection.nextPong()
  connection.notify('0xabc', { number: '0x6' })
  await heads.until(1)
  await headAcknowledged
  t.same(heads.seen, [{ number: '0x6' }])
})

t.test('onLive runs on every acceptance of a subscription, ahead of the notifications of that connection', async (t) => {
  let accepted = 0
  const node = await startFakeNode({
    eth_subscribe: (_params, connection) => {
      accepted++
      // Sent before the answer: the socket holds it until the subscription id is known.
      connection.notify('0xabc', { number: `0x${accepted}` })
      return '0xabc'
    },
  })
  t.teardown(() => node.close())
  const proxy = await startTcpProxy(Number(new URL(node.wsUrl).port))
  t.teardown(() => proxy.close())
  const s = socket(t, [proxy.wsUrl])
  const seen = collector()
  s.subscribe(NEW_HEADS, (head) => seen.push(head), () => seen.push('live'))
  await seen.until(2)
  proxy.cut()
  await seen.until(4)
  t.same(seen.seen, ['live', { number: '0x1' }, 'live', { number: '0x2' }], 'first acceptance and the renewal, each before its notification')
})
