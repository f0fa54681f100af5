/**
 * What `blockhook dev` does once everything runs, so its first screen already shows a verified
 * webhook: registers a watch through the API (as a user would, with the demo key) that delivers
 * to dev's inbox, and sends ETH on the dev chain to the watched address until the inbox reports
 * the webhook. A watch reaches the subscriber within a second, so the first transfer can come
 * too early; another is sent after two blocks, a bounded number of times.
 */
import { createPublicClient, createWalletClient, http, parseEther, type PublicClient } from 'viem'
import { foundry } from 'viem/chains'
import { DEMO_RECIPIENT } from './banner.js'
import type { Inbox } from './inbox.js'

const MAX_TRANSFERS = 10
const BLOCKS_PER_TRY = 2n
const REQUEST_TIMEOUT_MS = 10_000

export interface DemoOptions {
  apiUrl: string
  apiKey: string
  chainId: string
  rpcUrl: string
  inbox: Inbox
  write(text: string): void
  /** Aborted at shutdown. */
  signal: AbortSignal
}

function blockAfter(client: PublicClient, number: bigint, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      unwatch()
      resolve()
    }
    const unwatch = client.watchBlockNumber({
      pollingInterval: 250,
      onBlockNumber: (latest) => { if (latest > number) stop() },
      onError: () => undefined,
    })
    signal.addEventListener('abort', stop, { once: true })
  })
}

async function createDemoWatch(options: DemoOptions): Promise<string> {
  const response = await fetch(`${options.apiUrl}/watches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      chain: options.chainId,
      type: 'evm.address_activity',
      filter: { addresses: [DEMO_RECIPIENT] },
      url: options.inbox.url,
      description: 'blockhook dev demo',
    }),
    signal: AbortSignal.any([options.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
  })
  const body = await response.json() as { id?: string; message?: string }
  if (response.status !== 201 || !body.id) throw new Error(`POST /watches answered ${response.status}: ${body.message ?? ''}`)
  return body.id
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { write, signal } = options
  const watchId = await createDemoWatch(options)
  write(`demo: watch ${watchId} (evm.address_activity on ${DEMO_RECIPIENT}) delivers to ${options.inbox.url}\n`)

  const transport = http(options.rpcUrl, { timeout: REQUEST_TIMEOUT_MS, retryCount: 0 })
  const chain = createPublicClient({ chain: foundry, transport })
  const wallet = createWalletClient({ chain: foundry, transport })
  const [from] = await wallet.getAddresses()
  if (!from) throw new Error('the dev chain has no unlocked account')

  let arrived = false
  void options.inbox.firstFrom(watchId).then(() => { arrived = true })
  for (let i = 1; i <= MAX_TRANSFERS && !arrived && !signal.aborted; i++) {
    const hash = await wallet.sendTransaction({ account: from, to: DEMO_RECIPIENT, value: parseEther('0.01') })
    // Before waiting for the receipt: the webhook may well arrive first.
    write(`demo: sent 0.01 ETH to ${DEMO_RECIPIENT} (tx ${hash})\n`)
    const receipt = await chain.waitForTransactionReceipt({ hash, pollingInterval: 250, timeout: 30_000 })
    await Promise.race([
      options.inbox.firstFrom(watchId),
      blockAfter(chain, receipt.blockNumber + BLOCKS_PER_TRY - 1n, signal),
    ])
  }
  if (!arrived && !signal.aborted) {
    write(`demo: no webhook arrived after ${MAX_TRANSFERS} transfers; LOG_LEVEL=info npx blockhook dev shows what the roles do\n`)
  }
}
