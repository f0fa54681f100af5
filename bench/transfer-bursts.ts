/**
 * The workload the throughput and cluster benches share: bursts of ERC-20 Transfer logs, each
 * burst one TestToken.spray transaction (so one block under automine), and the small helpers their
 * reports and waits use.
 */
import { encodeFunctionData, type Address } from 'viem'
import { ACCOUNTS, compiledTokens } from '../test/helpers/contracts.js'
import { rpc } from '../test/helpers/subscriber-harness.js'

/** Transfers in the measured burst, and in the one before it that warms every process up. */
export const BURST_LOGS = 500
export const WARM_UP_LOGS = 50

/** Who the sprayed transfers go to (no watch filters on it). */
const RECIPIENT = '0x00000000000000000000000000000000000000b0' as Address

/** One transaction of ACCOUNTS[0] emitting `logs` Transfer logs; anvil (automine) has mined it when this resolves. */
export async function sprayTransfers(anvilUrl: string, token: Address, logs: number): Promise<void> {
  const data = encodeFunctionData({ abi: compiledTokens().TestToken.abi, functionName: 'spray', args: [RECIPIENT, BigInt(logs)] })
  await rpc(anvilUrl, 'eth_sendTransaction', [{ from: ACCOUNTS[0], to: token, data, gas: '0x989680' }])
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** `promise`, or an error naming `what` once `waitMs` pass without it settling. */
export function withTimeout<T>(promise: Promise<T>, what: string, waitMs: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing after ${waitMs} ms`)), waitMs) }),
  ])
}
