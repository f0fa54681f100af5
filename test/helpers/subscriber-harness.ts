/**
 * What the subscriber tests share: a subscriber role started against a real anvil (or a proxy or
 * fake node in front of one) and a real Redis with a key prefix of its own, watches created in the
 * store as the API would, blocks mined on demand, and the delivery records and BullMQ jobs read
 * back from Redis (the delivery worker is not involved).
 */
import type { Test } from 'tap'
import { pino, type Logger } from 'pino'
import type { Redis } from 'ioredis'
import { DEFAULT_MAX_FRAME_BYTES, type Config } from '../../src/config/config.js'
import type { DeliveryRecord } from '../../src/delivery/delivery-record.js'
import { DELIVERY_QUEUE, type DeliveryQueue } from '../../src/delivery/delivery-queue.js'
import type { Watch, WatchType } from '../../src/domain/watch-types.js'
import { newId } from '../../src/domain/ids.js'
import type { RedisKeys } from '../../src/storage/keys.js'
import type { WatchStore } from '../../src/storage/watch-store.js'
import { wire } from '../../src/wiring.js'
import type { EvmChain } from '../../src/chains/evm/evm-chain.js'
import { startSubscriber, type RunningSubscriber, type SubscriberRoleOptions } from '../../workers/subscriber.js'
import { encodeFunctionData, type Address } from 'viem'
import { TRANSFER_TOPIC } from '../../src/chains/evm/abi.js'
import { testConfig } from './config.js'
import { ACCOUNTS, anvilClients, compiledTokens, deploy, send } from './contracts.js'
import { startAnvil, startRedis, type RunningProcess } from './processes.js'

export const CHAIN = 'local'

export const FAST: SubscriberRoleOptions = {
  lease: { ttlMs: 2_000, pollMs: 200 },
  evm: { socket: { backoffInitialMs: 20, backoffMaxMs: 200 } },
}

export async function rpc<T = unknown>(httpUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(httpUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = (await response.json()) as { result?: T; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result as T
}

export interface WatchInput { type: WatchType; filter: object; confirmations?: number; batch?: 'none' | 'block'; ordered?: boolean; url?: string }

export interface Harness {
  config: Config
  redis: Redis
  keys: RedisKeys
  store: WatchStore
  /** The delivery records' store and queue, as the subscriber writes them. */
  deliveryQueue: DeliveryQueue
  /** Creates an active watch (confirmations 0 unless given) and returns it with its feed position. */
  createWatch(partial: WatchInput): Promise<Watch>
  startSubscriber(options?: SubscriberRoleOptions): Promise<RunningSubscriber>
  /** The chain driver of a running subscriber, once it leads. */
  leader(sub: RunningSubscriber): Promise<EvmChain>
  /** Mines one block on the node (default the anvil this harness was given); returns its number. */
  mine(): Promise<number>
  /** Waits until `sub` has queued everything up to block `number`. */
  caughtUp(sub: RunningSubscriber, number: number): Promise<void>
  records(watchId: string): Promise<DeliveryRecord[]>
  jobExists(id: string): Promise<boolean>
  /** The feed position after the latest watch change (to await its application). */
  feedPosition(): Promise<string>
}

export function harness(
  t: Test, redisUrl: string, nodes: { ws: string[]; http: string }, chain: Partial<Config['chains'][number]> = {}, overrides: Partial<Config> = {},
  /** The subscribers' logger (silent unless TEST_LOG_LEVEL says otherwise), for tests that look at what was logged. */
  logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
): Harness {
  const config = testConfig({
    ...overrides,
    redisUrl,
    chains: [{ id: CHAIN, type: 'evm', ws: nodes.ws, http: [], confirmations: 0, blockTimeMs: 1_000, commitment: 'confirmed', maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, ...chain }],
  })
  const wiring = wire(config, 'test', logger)
  const { keys, watches: store, deliveryQueue } = wiring
  // A harness runs on one Redis (testConfig has no REDIS_CLUSTER).
  const redis = wiring.redis as Redis
  t.teardown(async () => {
    await wiring.deliveryQueue.close()
    redis.disconnect()
  })

  const h: Harness = {
    config, redis, keys, store, deliveryQueue,
    async createWatch(partial) {
      const now = new Date().toISOString()
      const watch = {
        id: newId('wch'), tenantId: 'ten_test', chain: CHAIN, url: 'https://example.com/hook', status: 'active',
        confirmations: 0, createdAt: now, updatedAt: now, ...partial,
      } as Watch
      await store.create(watch, 'whsec_dGVzdA==')
      return watch
    },
    async startSubscriber(options = FAST) {
      const sub = await startSubscriber(config, logger, options)
      t.teardown(() => sub.close())
      return sub
    },
    async leader(sub) {
      const runner = sub.chains.get(CHAIN)!
      await runner.whenLeading()
      return runner.driver as EvmChain
    },
    async mine() {
      await rpc(nodes.http, 'evm_mine')
      return Number(await rpc<string>(nodes.http, 'eth_blockNumber'))
    },
    async caughtUp(sub, number) {
      const chain = await h.leader(sub)
      await chain.follower!.reached(number)
    },
    async records(watchId) {
      const ids: string[] = []
      let cursor: string | undefined
      do {
        const page = await deliveryQueue.store.listByWatch(watchId, { limit: 100, ...(cursor ? { cursor } : {}) })
        ids.push(...page.items.map((item) => item.id))
        cursor = page.nextCursor ?? undefined
      } while (cursor)
      const records = await deliveryQueue.store.getMany(ids)
      return records.filter((r): r is DeliveryRecord => r !== undefined).sort((a, b) => a.sequence - b.sequence)
    },
    async jobExists(id) {
      return (await redis.exists(`${keys.shardTag(0)}:${DELIVERY_QUEUE}:${id}`)) === 1
    },
    async feedPosition() {
      const [last] = await redis.xrevrange(keys.watchChanges, '+', '-', 'COUNT', 1)
      return last?.[0] ?? '0-0'
    },
  }
  return h
}

export interface TokenChain {
  redisServer: RunningProcess
  anvil: RunningProcess & { wsUrl: string }
  clients: ReturnType<typeof anvilClients>
  /** A TestToken deployed and minted to ACCOUNTS[0], so transfers can be sent at once. */
  token: Address
  /** An evm.logs watch on the token's Transfer events. */
  transferWatch: WatchInput
}

/** The subscriber test files' common ground: RedisClient, anvil that mines only on request, a minted token. */
export async function startTokenChain(t: Test, minted: bigint): Promise<TokenChain> {
  const redisServer = await startRedis()
  const anvil = await startAnvil(['--no-mining'])
  t.teardown(async () => { await anvil.stop(); await redisServer.stop() })
  const clients = anvilClients(anvil.url)
  const token = await deploy(clients, 'TestToken', async () => { await rpc(anvil.url, 'evm_mine') })
  await send(clients, token, 'TestToken', 'mint', [ACCOUNTS[0], minted])
  await rpc(anvil.url, 'evm_mine')
  return { redisServer, anvil, clients, token, transferWatch: { type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] } } }
}

/** `count` Transfer logs of `token` to `to` in one new block (TestToken.spray, 100 a transaction); its number. */
export async function sprayBlock(anvilUrl: string, token: Address, to: Address, count: number): Promise<number> {
  for (let left = count; left > 0; left -= 100) {
    const data = encodeFunctionData({ abi: compiledTokens().TestToken.abi, functionName: 'spray', args: [to, BigInt(Math.min(100, left))] })
    await rpc(anvilUrl, 'eth_sendTransaction', [{ from: ACCOUNTS[0], to: token, data, gas: '0x4c4b40' }])
  }
  await rpc(anvilUrl, 'evm_mine')
  return Number(await rpc<string>(anvilUrl, 'eth_blockNumber'))
}

/** The transaction hashes of a watch's evm.log deliveries, in sequence order. */
export async function loggedTxHashes(h: Harness, watchId: string): Promise<string[]> {
  return (await h.records(watchId)).map((r) => (r.data.log as { transactionHash: string }).transactionHash)
}
