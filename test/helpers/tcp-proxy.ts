/**
 * A TCP proxy in front of a node, for the faults a real network has: `cut()` destroys every open
 * connection (a dropped link), `stall()` keeps them open but stops forwarding (a hung link that
 * only a ping or a watchdog notices). New connections after either are forwarded normally.
 */
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'

export interface TcpProxy {
  port: number
  wsUrl: string
  /** Connections accepted so far. */
  readonly connections: number
  cut(): void
  stall(): void
  /** New connections go to `port` (a node restarted elsewhere). */
  retarget(port: number): void
  close(): Promise<void>
}

interface Pair { client: Socket; upstream: Socket; stalled: boolean }

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>()
  let connections = 0
  let target = targetPort
  const server = createServer((client) => {
    connections++
    const upstream = connect(target, '127.0.0.1')
    const pair: Pair = { client, upstream, stalled: false }
    pairs.add(pair)
    client.on('data', (chunk) => { if (!pair.stalled) upstream.write(chunk) })
    upstream.on('data', (chunk) => { if (!pair.stalled) client.write(chunk) })
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const cut = () => {
    for (const pair of pairs) { pair.client.destroy(); pair.upstream.destroy() }
    pairs.clear()
  }
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}`,
    get connections() { return connections },
    cut,
    retarget(port) { target = port },
    stall() {
      for (const pair of pairs) pair.stalled = true
    },
    async close() {
      cut()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
