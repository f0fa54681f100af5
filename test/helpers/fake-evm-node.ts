/**
 * A scripted WebSocket JSON-RPC node, ONLY for faults anvil cannot produce: garbage frames,
 * notifications that beat their subscription's answer, `removed: true` logs. Each request goes
 * to `handlers[method]`; its return value is the result (undefined: no answer at all).
 */
import { WebSocketServer, type WebSocket } from 'ws'
import { once } from 'node:events'

export interface FakeNodeRequest { id: number; method: string; params: unknown[] }

export type FakeHandler = (params: unknown[], connection: FakeConnection) => unknown

export interface FakeConnection {
  /** Sends raw text as it is (garbage included). */
  sendRaw(text: string): void
  notify(subscription: string, result: unknown, method?: string): void
  /** Resolves on the next WebSocket pong the client sends on this connection. */
  nextPong(): Promise<void>
}

export interface FakeNode {
  wsUrl: string
  /** Every request received, in order. */
  requests: FakeNodeRequest[]
  /** Open connections, newest last. */
  connections: FakeConnection[]
  close(): Promise<void>
}

export async function startFakeNode(handlers: Record<string, FakeHandler>): Promise<FakeNode> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(server, 'listening')
  const requests: FakeNodeRequest[] = []
  const connections: FakeConnection[] = []
  server.on('connection', (ws: WebSocket) => {
    const connection: FakeConnection = {
      sendRaw: (text) => ws.send(text),
      notify: (subscription, result, method = 'eth_subscription') =>
        ws.send(JSON.stringify({ jsonrpc: '2.0', method, params: { subscription, result } })),
      nextPong: async () => { await once(ws, 'pong') },
    }
    connections.push(connection)
    ws.on('message', (data) => {
      const request = JSON.parse(data.toString()) as FakeNodeRequest
      requests.push(request)
      // Every node answers eth_chainId; a script that does not care gets anvil's.
      const handler = handlers[request.method] ?? (request.method === 'eth_chainId' ? () => '0x7a69' : undefined)
      if (!handler) {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: request.id, error: { code: -32601, message: 'method not found' } }))
        return
      }
      const result = handler(request.params, connection)
      if (result !== undefined) ws.send(JSON.stringify({ jsonrpc: '2.0', id: request.id, result }))
    })
  })
  const { port } = server.address() as { port: number }
  return {
    wsUrl: `ws://127.0.0.1:${port}`,
    requests,
    connections,
    async close() {
      for (const client of server.clients) client.terminate()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
