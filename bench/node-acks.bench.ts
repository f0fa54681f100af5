/**
 * Node connections and delayed ACKs (issue 16, tip latency): how soon a head reaches a client that,
 * like the block follower, asks for the head's block and logs each time, with and without the
 * unsolicited pong `RpcSocket` sends after every turn in which frames arrived.
 *
 * One anvil, three clients on their own connections, all in this process: a bare `ws` client that
 * only listens (the floor), a bare `ws` client that asks `eth_getBlockByHash` and `eth_getLogs` on
 * every head (the follower's traffic without the pong), and `RpcSocket` asking the same. Value
 * transfers are sent over HTTP 20 ms apart, as a busy chain's heads come. Figures: the head's
 * arrival after the transaction was sent, and the time from asking for block and logs to having
 * both answers, p50 / p90 / max in ms.
 */
import { pino } from 'pino'
import WebSocket from 'ws'
import { RpcSocket } from '../src/chains/rpc-socket.js'
import { startAnvil } from '../src/dev/child-processes.js'
import { ACCOUNTS } from '../test/helpers/contracts.js'
import { rpc } from '../test/helpers/subscriber-harness.js'
import { now, percentile } from './bench-processes.js'

const TRANSFERS = Number(process.env.NODE_ACKS_TRANSFERS ?? 200)
const GAP_MS = 20

interface Head { number: string; hash: string }
interface Client { name: string; heads: Map<number, number>; answers: number[]; close(): void }

/** Resolves once the client has its subscription. */
function bareClient(name: string, wsUrl: string, asks: boolean): Promise<Client> {
  const client: Client = { name, heads: new Map(), answers: [], close: () => ws.close() }
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false })
  const asked = new Map<number, { at: number; left: number }>()
  let nextId = 1
  return new Promise((resolve, reject) => {
    ws.on('error', reject)
    ws.on('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'eth_subscribe', params: ['newHeads'] })))
    ws.on('message', (data) => {
      const at = now()
      const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: { result: Head } }
      if (message.id === 1) resolve(client)
      if (message.id !== undefined) {
        const ask = asked.get(message.id)
        if (ask && --ask.left === 0) client.answers.push(at - ask.at)
        return
      }
      if (message.method !== 'eth_subscription' || !message.params) return
      const head = message.params.result
      client.heads.set(Number(head.number), at)
      if (!asks) return
      const ask = { at, left: 2 }
      for (const [method, params] of [['eth_getBlockByHash', [head.hash, false]], ['eth_getLogs', [{ blockHash: head.hash }]]] as const) {
        const id = nextId++
        asked.set(id, ask)
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
      }
    })
  })
}

async function rpcSocketClient(wsUrl: string): Promise<Client> {
  const socket = new RpcSocket({ name: 'bench', endpoints: [wsUrl], logger: pino({ level: 'silent' }) })
  const client: Client = { name: 'RpcSocket, asks block and logs (with the pong)', heads: new Map(), answers: [], close: () => socket.close() }
  socket.start()
  const subscription = socket.subscribe({ method: 'eth_subscribe', params: ['newHeads'], unsubscribeMethod: 'eth_unsubscribe' }, (result) => {
    const at = now()
    const head = result as Head
    client.heads.set(Number(head.number), at)
    void Promise.all([
      socket.request('eth_getBlockByHash', [head.hash, false]),
      socket.request('eth_getLogs', [{ blockHash: head.hash }]),
    ]).then(() => client.answers.push(now() - at))
  })
  await subscription.ready
  return client
}

const anvil = await startAnvil()
try {
  const clients = [
    await bareClient('bare ws, only listens', anvil.wsUrl, false),
    await bareClient('bare ws, asks block and logs (no pong)', anvil.wsUrl, true),
    await rpcSocketClient(anvil.wsUrl),
  ]
  const [from, to] = ACCOUNTS
  const sent = new Map<number, number>()
  for (let i = 0; i < TRANSFERS; i++) {
    const at = now()
    await rpc(anvil.url, 'eth_sendTransaction', [{ from, to, value: '0x1' }])
    sent.set(Number(await rpc(anvil.url, 'eth_blockNumber', [])), at)
    await new Promise((resolve) => setTimeout(resolve, GAP_MS))
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return [50, 90, 100].map((p) => percentile(sorted, p).toFixed(1).padStart(6)).join(' ')
  }
  console.log(`${TRANSFERS} transfers ${GAP_MS} ms apart, one block each; p50 / p90 / max, ms`)
  console.log(`${'client'.padEnd(48)} ${'head after send'.padStart(20)}   ${'block + logs answered'.padStart(20)}`)
  for (const client of clients) {
    const arrivals = [...sent].flatMap(([block, at]) => client.heads.has(block) ? [client.heads.get(block)! - at] : [])
    const answers = client.answers.length > 0 ? summary(client.answers) : '     —      —      —'
    console.log(`${client.name.padEnd(48)} ${summary(arrivals).padStart(20)}   ${answers.padStart(20)}`)
    client.close()
  }
} finally {
  await anvil.stop()
}
