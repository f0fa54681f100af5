/**
 * What `blockhook dev` prints once everything runs: where things are, the credentials, and the
 * next three commands of the README tour. The `label  value` lines are stable: tests and scripts
 * read the API URL, the key and the RPC URL from them.
 */
import { TRANSFER_TOPIC } from '../chains/evm/abi.js'

/** anvil's second default account: the demo watch and examples/send-transfers.ts send ETH and tokens to it. */
export const DEMO_RECIPIENT = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
/** ERC-20 and ERC-721 transfers, decoded. */
const TRANSFER_EVENT = 'event Transfer(address indexed from, address indexed to, uint256 value)'

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
  inboxUrl: string
}

export function devBanner(info: DevBannerInfo): string {
  const watch = JSON.stringify({
    chain: info.chainId,
    type: 'evm.logs',
    filter: { topics: [TRANSFER_TOPIC], abi: [TRANSFER_EVENT] },
    url: info.inboxUrl,
  })
  return `
blockhook dev is running. Ctrl-C stops it and everything it started.

  API          ${info.apiUrl}   (OpenAPI docs: ${info.apiUrl}/docs)
  dashboard    ${info.apiUrl}/   (sign in with the API key below, or the admin token)
  admin token  ${info.adminToken}
  tenant       ${info.tenantId}
  API key      ${info.apiKey}
  chain        ${info.chainId}   RPC ${info.rpcUrl}   WebSocket ${info.wsUrl}   (anvil, a block a second)
  Redis        ${info.redis}   (${info.redisStarted ? 'private, started by blockhook dev, discarded on exit' : 'found at REDIS_URL; this run\'s keys are removed on exit'})
  inbox        ${info.inboxUrl}   (verifies and prints every webhook sent to it, below)

Try it, in a second terminal:

  # a watch on every ERC-20 Transfer log, decoded, delivered to the inbox
  curl -sS -X POST ${info.apiUrl}/watches \\
    -H 'authorization: Bearer ${info.apiKey}' -H 'content-type: application/json' \\
    -d '${watch}'

  # ETH and ERC-20 transfers on the chain: evm.log and evm.activity webhooks appear below
  npx tsx examples/send-transfers.ts --rpc ${info.rpcUrl}

  # your own receiver (for watches whose url is http://127.0.0.1:4000/webhooks)
  BLOCKHOOK_API_URL=${info.apiUrl} BLOCKHOOK_API_KEY=${info.apiKey} npx tsx examples/receiver.ts

  # or every event of the tenant forwarded to that receiver over the event stream, no public URL needed
  npx blockhook listen --api ${info.apiUrl} --key ${info.apiKey} --forward-to http://127.0.0.1:4000/webhooks

`
}
