/**
 * Builds the API on a real Redis, wired as `startApi` wires it, without opening a port: tests
 * talk to it with `app.inject()`. Every call gets its own Redis key prefix.
 */
import type { Test } from 'tap'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApi, type ApiDeps } from '../../src/api/app.js'
import type { Config } from '../../src/config/config.js'
import type { Resolver } from '../../src/domain/url-policy.js'
import { wire, type Wiring, type WiringOptions } from '../../src/wiring.js'
import { TEST_ADMIN_TOKEN, testConfig } from './config.js'

export const ADMIN = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

/** Chains every API test can use: one of each type. */
export const TEST_CHAINS = [
  { id: 'eth', type: 'evm', ws: ['wss://eth.example/secret-token'], confirmations: 12 },
  { id: 'sol', type: 'solana', ws: ['wss://sol.example'], commitment: 'finalized' },
]

/** Names resolve to a public address, `*.internal` and localhost to loopback, `*.invalid` to nothing. */
export const testResolver: Resolver = async (hostname) => {
  if (hostname.endsWith('.internal') || hostname === 'localhost') return [{ address: '127.0.0.1', family: 4 }]
  if (hostname.endsWith('.invalid')) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
  return [{ address: '93.184.215.14', family: 4 }]
}

export interface TestApi {
  app: FastifyInstance
  /** What the api runs on, for a test to look into Redis or the queue. */
  deps: Wiring
  config: Config
}

export async function buildTestApi(
  t: Test,
  redisUrl: string,
  overrides: Partial<Config> & { file?: unknown } = {},
  { deliveryShards, ...extraDeps }: Pick<ApiDeps, 'readinessChecks' | 'streamTiming'> & Pick<WiringOptions, 'deliveryShards'> = {},
): Promise<TestApi> {
  const config = testConfig({ redisUrl, file: { chains: TEST_CHAINS }, ...overrides })
  const logger = pino({ level: 'silent' })
  const deps = wire(config, 'test-api', logger, { resolve: testResolver, ...(deliveryShards ? { deliveryShards } : {}) })
  const app = await buildApi(config, { ...deps, logger, resolve: testResolver, ...extraDeps })
  t.teardown(async () => {
    await app.close()
    await deps.deliveryQueue.close()
    // Not quit: a test may have stopped this Redis, and a QUIT would wait for it for ever.
    deps.redis.disconnect()
  })
  return { app, deps, config }
}

/** Creates a tenant through the admin API and returns its id and key headers. */
export async function createTenant(app: FastifyInstance, name = 'acme') {
  const res = await app.inject({ method: 'POST', url: '/admin/tenants', headers: ADMIN, payload: { name } })
  if (res.statusCode !== 201) throw new Error(`creating a tenant failed: ${res.statusCode} ${res.body}`)
  const body = res.json() as { id: string; apiKey: string }
  return { id: body.id, apiKey: body.apiKey, headers: { authorization: `Bearer ${body.apiKey}` } }
}
