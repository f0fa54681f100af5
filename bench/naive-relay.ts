/**
 * The baseline peer of the throughput benchmark (issue 16): what someone writes in half an hour
 * instead of running blockhook. One viem `watchEvent` subscription per watch over a WebSocket to
 * the node, one `fetch` POST per log to the watch's URL, nothing stored, nothing signed, nothing
 * retried: a log whose POST fails, or that arrives while the process is down, is lost.
 *
 * The only concession to fairness: at most `concurrency` POSTs in flight (blockhook's worker
 * default), so both peers reuse a pool of keep-alive connections instead of the relay opening
 * one socket per log of a 5,000-log burst.
 */
import { createPublicClient, parseAbiItem, webSocket, type Address, type Log } from 'viem'

const TRANSFER = parseAbiItem('event Transfer(address indexed from, address indexed to, uint256 value)')

export interface NaiveRelayOptions {
  wsUrl: string
  address: Address
  /** One subscription per URL, as one watch per URL. */
  urls: readonly string[]
  concurrency: number
}

export function startNaiveRelay({ wsUrl, address, urls, concurrency }: NaiveRelayOptions): { close(): Promise<void> } {
  const client = createPublicClient({ transport: webSocket(wsUrl) })
  let inFlight = 0
  const waiting: (() => void)[] = []
  const acquire = () => inFlight < concurrency ? (inFlight++, Promise.resolve()) : new Promise<void>((resolve) => waiting.push(resolve))
  const release = () => { const next = waiting.shift(); if (next) next(); else inFlight-- }
  const post = async (url: string, log: Log) => {
    await acquire()
    const body = JSON.stringify({ type: 'evm.log', data: { log } }, (_key, value: unknown) => typeof value === 'bigint' ? value.toString() : value)
    await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'webhook-id': `${log.transactionHash}:${log.logIndex}` } })
      .then((response) => response.arrayBuffer(), () => undefined)
    release()
  }
  const unwatches = urls.map((url) => client.watchEvent({ address, event: TRANSFER, onLogs: (logs) => { for (const log of logs) void post(url, log) } }))
  return {
    async close() {
      for (const unwatch of unwatches) unwatch()
      await client.transport.getRpcClient().then((socket) => socket.close())
    },
  }
}
