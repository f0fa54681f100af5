/**
 * What `blockhook dev` prints once everything runs: where things are, the credentials, and the
 * next three commands of the README tour. The `label  value` lines are stable: tests and scripts
 * read the API URL, the key and the RPC URL from them.
 */

/** anvil's second default account: examples/send-transfers.ts sends ETH and tokens to it. */
export const DEMO_RECIPIENT = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
export const DEMO_RECEIVER_URL = 'http://127.0.0.1:4000/webhooks'

export interface DevBannerInfo {
  apiUrl: string
  adminToken: string
  tenantId: string
  apiKey: string
  chainId: string
  rpcUrl: string
  wsUrl: string
  /** Already redacted. */
  redis: string
  redisStarted: boolean
}

export function devBanner(info: DevBannerInfo): string {
  const watch = JSON.stringify({
    chain: info.chainId,
    type: 'evm.address_activity',
    filter: { addresses: [DEMO_RECIPIENT] },
    url: DEMO_RECEIVER_URL,
  })
  return `
blockhook dev is running. Ctrl-C stops it and everything it started.

  API          ${info.apiUrl}   (OpenAPI docs: ${info.apiUrl}/docs)
  admin token  ${info.adminToken}
  tenant       ${info.tenantId}
  API key      ${info.apiKey}
  chain        ${info.chainId}   RPC ${info.rpcUrl}   WebSocket ${info.wsUrl}   (anvil, a block a second)
  Redis        ${info.redis}   (${info.redisStarted ? 'private, started by blockhook dev, discarded on exit' : 'found at REDIS_URL; this run\'s keys are removed on exit'})

1. Register a watch (webhooks to a receiver on 127.0.0.1:4000):

  curl -sS -X POST ${info.apiUrl}/watches \\
    -H 'authorization: Bearer ${info.apiKey}' -H 'content-type: application/json' \\
    -d '${watch}'

2. In a second terminal, run a receiver that verifies and prints every webhook:

  BLOCKHOOK_API_URL=${info.apiUrl} BLOCKHOOK_API_KEY=${info.apiKey} npx tsx examples/receiver.ts

3. In a third terminal, send ETH and ERC-20 transfers on the chain:

  npx tsx examples/send-transfers.ts --rpc ${info.rpcUrl}

`
}
