/**
 * Makes something happen on the dev chain for blockhook to report: one ETH transfer, the
 * deployment of a small ERC-20 token (examples/demo-token.ts, compiled from
 * contracts/DemoToken.sol) and a few token transfers, all from anvil's first account to its
 * second. Watches on those addresses receive `evm.transaction`, `evm.activity` and `evm.log`.
 *
 *   npx tsx examples/send-transfers.ts --rpc http://127.0.0.1:<port> [--count 3] [--to 0x…]
 *
 * `blockhook dev` prints the `--rpc` URL of its chain. anvil keeps its accounts unlocked, so the
 * node signs and no private key appears here.
 */
import { parseArgs } from 'node:util'
import {
  createPublicClient, createWalletClient, defineChain, formatEther, getAddress, http, parseEther,
  type Address, type Hash,
} from 'viem'
import { demoTokenAbi, demoTokenBytecode } from './demo-token.js'

const { values: args } = parseArgs({
  options: {
    rpc: { type: 'string', default: process.env.RPC_URL },
    count: { type: 'string', default: '3' },
    to: { type: 'string' },
  },
})
if (!args.rpc) {
  process.stderr.write('usage: npx tsx examples/send-transfers.ts --rpc http://127.0.0.1:<port> [--count 3] [--to 0x…]\n')
  process.exit(2)
}
const count = Number(args.count)
if (!Number.isInteger(count) || count < 1 || count > 1000) {
  process.stderr.write('--count must be an integer from 1 to 1000\n')
  process.exit(2)
}

const transport = http(args.rpc, { timeout: 10_000, retryCount: 0 })
const probe = createPublicClient({ transport })
const chain = defineChain({
  id: await probe.getChainId(),
  name: 'local',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [args.rpc] } },
})
const publicClient = createPublicClient({ chain, transport })
const wallet = createWalletClient({ chain, transport })

const [from, secondAccount] = await wallet.getAddresses()
if (!from) throw new Error('the node has no unlocked account: is this anvil?')
const to: Address = args.to ? getAddress(args.to) : secondAccount ?? from

async function confirmed(label: string, hash: Hash): Promise<Address | null | undefined> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 250, timeout: 60_000 })
  process.stdout.write(`${label.padEnd(36)} tx ${hash}  block ${receipt.blockNumber}  ${receipt.status}\n`)
  return receipt.contractAddress
}

process.stdout.write(`from ${from}\nto   ${to}\n`)

const ethValue = parseEther('0.5')
await confirmed(`sent ${formatEther(ethValue)} ETH`, await wallet.sendTransaction({ account: from, to, value: ethValue }))

const token = await confirmed('deployed DemoToken (DEMO)', await wallet.deployContract({
  account: from,
  abi: demoTokenAbi,
  bytecode: demoTokenBytecode,
  args: [parseEther('1000000')],
}))
if (!token) throw new Error('the deployment produced no contract address')
process.stdout.write(`token ${token}\n`)

for (let i = 1; i <= count; i++) {
  const amount = parseEther(String(i * 10))
  const hash = await wallet.writeContract({
    account: from, address: token, abi: demoTokenAbi, functionName: 'transfer', args: [to, amount],
  })
  await confirmed(`transferred ${formatEther(amount)} DEMO`, hash)
}

const balance = await publicClient.readContract({ address: token, abi: demoTokenAbi, functionName: 'balanceOf', args: [to] })
process.stdout.write(`${to} now holds ${formatEther(balance)} DEMO\n`)
