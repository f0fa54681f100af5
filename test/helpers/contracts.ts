/**
 * ERC-20, ERC-721 and ERC-1155 test tokens built on @openzeppelin/contracts, compiled with solc-js
 * once and cached in test/fixtures/test-tokens.json (compiling takes seconds), and deployed on an
 * anvil with its first unlocked account. Anyone may mint: the tests need transfers, not safety.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPublicClient, createWalletClient, http, type Abi, type Address, type Hash } from 'viem'
import { foundry } from 'viem/chains'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const FIXTURE = join(here, '..', 'fixtures', 'test-tokens.json')

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

contract TestToken is ERC20 {
  constructor() ERC20("Test", "TST") {}
  function mint(address to, uint256 amount) external { _mint(to, amount); }
  /** Many Transfer logs in one transaction, for the catch-up benchmark. */
  function spray(address to, uint256 count) external {
    for (uint256 i = 0; i < count; i++) emit Transfer(msg.sender, to, i + 1);
  }
}

contract TestNft is ERC721 {
  constructor() ERC721("Test NFT", "TNFT") {}
  function mint(address to, uint256 id) external { _mint(to, id); }
}

contract TestMulti is ERC1155 {
  constructor() ERC1155("") {}
  function mint(address to, uint256 id, uint256 amount) external { _mint(to, id, amount, ""); }
  function mintBatch(address to, uint256[] calldata ids, uint256[] calldata amounts) external { _mintBatch(to, ids, amounts, ""); }
}
`

export type ContractName = 'TestToken' | 'TestNft' | 'TestMulti'
interface Compiled { abi: Abi; bytecode: `0x${string}` }

function compile(): Record<ContractName, Compiled> {
  const solc = require('solc') as { compile(input: string, options: { import(path: string): { contents: string } | { error: string } }): string }
  const input = {
    language: 'Solidity',
    sources: { 'TestTokens.sol': { content: SOURCE } },
    settings: { evmVersion: 'cancun', optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), {
    import: (path) => {
      try {
        return { contents: readFileSync(require.resolve(path), 'utf8') }
      } catch {
        return { error: `not found: ${path}` }
      }
    },
  })) as { errors?: { severity: string; formattedMessage: string }[]; contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>> }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const contracts = output.contracts['TestTokens.sol']!
  const pick = (name: ContractName): Compiled => ({ abi: contracts[name]!.abi, bytecode: `0x${contracts[name]!.evm.bytecode.object}` })
  return { TestToken: pick('TestToken'), TestNft: pick('TestNft'), TestMulti: pick('TestMulti') }
}

export function compiledTokens(): Record<ContractName, Compiled> {
  if (existsSync(FIXTURE)) return JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<ContractName, Compiled>
  const compiled = compile()
  writeFileSync(FIXTURE, JSON.stringify(compiled))
  return compiled
}

/** anvil's first two default accounts (unlocked: eth_sendTransaction needs no key). */
export const ACCOUNTS = ['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0x70997970c51812dc3a010c7d01b50e6f6e99e8e7'] as const

export function anvilClients(rpcUrl: string) {
  const transport = http(rpcUrl)
  return {
    public: createPublicClient({ chain: foundry, transport }),
    wallet: createWalletClient({ chain: foundry, transport, account: ACCOUNTS[0] }),
  }
}

export type AnvilClients = ReturnType<typeof anvilClients>

/** Deploys and returns the address; the caller mines (anvil may run with --no-mining). */
export async function deploy(clients: AnvilClients, name: ContractName, mine: () => Promise<void>): Promise<Address> {
  const { abi, bytecode } = compiledTokens()[name]
  const hash = await clients.wallet.deployContract({ abi, bytecode, account: ACCOUNTS[0], chain: foundry })
  await mine()
  const receipt = await clients.public.waitForTransactionReceipt({ hash, pollingInterval: 20 })
  return receipt.contractAddress!.toLowerCase() as Address
}

export async function send(clients: AnvilClients, address: Address, name: ContractName, functionName: string, args: readonly unknown[]): Promise<Hash> {
  const { abi } = compiledTokens()[name]
  // A fixed gas limit: estimating against the latest block fails for a call that depends on a
  // transaction still in the pool (a transfer after a mint), and anvil then reserves a whole block.
  return clients.wallet.writeContract({ address, abi, functionName, args, account: ACCOUNTS[0], chain: foundry, gas: 500_000n } as never)
}
