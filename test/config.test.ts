import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../src/config/config.js'
import { runCli } from './helpers/spawn-cli.js'

const TOKEN = 'an-admin-token-of-at-least-32-characters'
const dir = mkdtempSync(join(tmpdir(), 'blockhook-config-'))

function configFile(name: string, content: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

t.test('defaults, then the file, then the environment, validated and frozen', async (t) => {
  const config = loadConfig({ BLOCKHOOK_ADMIN_TOKEN: TOKEN }, {
    file: { chains: [{ id: 'eth-mainnet', type: 'evm', ws: ['wss://a', 'wss://b'], confirmations: 12 }, { id: 'sol', type: 'solana', ws: ['wss://s'], http: ['https://s'] }] },
  })
  t.match(config, {
    redisUrl: 'redis://127.0.0.1:6379', host: '0.0.0.0', port: 3000, allowPrivateUrls: false, encryptionKey: undefined,
    logLevel: 'info', rateLimitPerSecond: 50, configPath: './blockhook.config.json',
  })
  t.same(config.delivery.retryScheduleMs, [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 504e5, 72e6, 864e5])
  t.match(config.delivery, { timeoutMs: 10_000, maxConcurrencyPerUrl: 10 })
  t.match(config.chains[0], { id: 'eth-mainnet', ws: ['wss://a', 'wss://b'], confirmations: 12, blockTimeMs: 12_000, maxFrameBytes: 16 * 1024 * 1024, newChainEachRun: false })
  t.match(config.chains[1], { id: 'sol', type: 'solana', commitment: 'confirmed', http: ['https://s'] })
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.chains[0]), 'deep-frozen')

  const fromEnv = loadConfig({
    BLOCKHOOK_ADMIN_TOKEN: TOKEN, REDIS_URL: 'redis://redis:6380', HOST: '127.0.0.1', PORT: '8080',
    BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true', BLOCKHOOK_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'), LOG_LEVEL: 'debug',
  }, { file: { api: { rateLimitPerSecond: 5 } } })
  t.match(fromEnv, { redisUrl: 'redis://redis:6380', host: '127.0.0.1', port: 8080, allowPrivateUrls: true, logLevel: 'debug', rateLimitPerSecond: 5 })
  t.equal(fromEnv.encryptionKey?.length, 32)
})

t.test('each invalid setting is refused with a message naming it', async (t) => {
  const cases: Array<[Record<string, string>, unknown, RegExp]> = [
    [{ BLOCKHOOK_ADMIN_TOKEN: '' }, {}, /BLOCKHOOK_ADMIN_TOKEN is required/],
    [{ BLOCKHOOK_ADMIN_TOKEN: 'short' }, {}, /BLOCKHOOK_ADMIN_TOKEN .*at least 32 characters/],
    [{ PORT: 'http' }, {}, /^PORT must be an integer/],
    [{ BLOCKHOOK_ALLOW_PRIVATE_URLS: 'yes' }, {}, /^BLOCKHOOK_ALLOW_PRIVATE_URLS/],
    [{ BLOCKHOOK_ENCRYPTION_KEY: 'c2hvcnQ=' }, {}, /^BLOCKHOOK_ENCRYPTION_KEY must be 32 bytes/],
    [{ LOG_LEVEL: 'loud' }, {}, /^LOG_LEVEL must be one of/],
    [{ REDIS_URL: 'http://redis' }, {}, /^REDIS_URL/],
    [{}, { chains: [{ id: 'eth', type: 'evm', ws: ['wss://a'], colour: 1 }] }, /\/chains\/0\/colour is not a known field/],
    [{}, { chains: [{ id: 'eth', type: 'bitcoin', ws: ['wss://a'] }] }, /\/chains\/0\/type must be equal to one of the allowed values/],
    [{}, { chains: [{ id: 'eth', type: 'evm', ws: ['https://a'] }] }, /\/chains\/0\/ws\/0 must match pattern/],
    [{}, { chains: [{ id: 'eth', type: 'evm', ws: ['wss://a'] }, { id: 'eth', type: 'evm', ws: ['wss://b'] }] }, /\/chains\/1\/id "eth" is used twice/],
    [{}, { delivery: { retrySchedule: ['5 minutes'] } }, /\/delivery\/retrySchedule\/0 must match pattern/],
    [{}, { delivery: { timeoutMs: 5 } }, /\/delivery\/timeoutMs must be >= 100/],
    [{}, { chains: [{ id: 'eth', type: 'evm', ws: ['wss://a'], maxFrameBytes: 1024 }] }, /\/chains\/0\/maxFrameBytes must be >= 65536/],
  ]
  for (const [env, file, message] of cases) {
    let error: unknown
    try {
      loadConfig({ BLOCKHOOK_ADMIN_TOKEN: TOKEN, ...env }, { file })
    } catch (err) {
      error = err
    }
    t.type(error, ConfigError, String(message))
    t.match((error as Error | undefined)?.message, message)
  }
  t.doesNotThrow(() => loadConfig({}, { dev: true, file: {} }), 'dev needs no admin token')
})

t.test('a config file that cannot be read or parsed is refused, naming it', async (t) => {
  const env = { BLOCKHOOK_ADMIN_TOKEN: TOKEN }
  t.throws(() => loadConfig({ ...env, BLOCKHOOK_CONFIG: configFile('broken.json', '{"chains": [') }), { message: /broken\.json: not valid JSON/ })
  t.throws(() => loadConfig({ ...env, BLOCKHOOK_CONFIG: join(dir, 'absent.json') }), { message: /BLOCKHOOK_CONFIG: cannot read .*absent\.json/ })
  t.doesNotThrow(() => loadConfig({ ...env, BLOCKHOOK_CONFIG: '' }), 'no file at the default path is an empty config')
})

/** Each run starts Node with the whole import graph; two cover both ways a start is refused. */
t.test('the CLI exits 1 on an invalid config file or admin token, naming the field', async (t) => {
  const runs: Array<[string, Record<string, string>, RegExp]> = [
    ['unknown field', { BLOCKHOOK_CONFIG: configFile('unknown.json', { chains: [{ id: 'eth', type: 'evm', wss: ['wss://a'] }] }) }, /\/chains\/0 must have required property 'ws'|\/chains\/0\/wss is not a known field/],
    ['short admin token', { BLOCKHOOK_CONFIG: configFile('ok.json', {}), BLOCKHOOK_ADMIN_TOKEN: 'too-short' }, /BLOCKHOOK_ADMIN_TOKEN is required and must be at least 32 characters/],
  ]
  await Promise.all(runs.map(async ([name, env, message]) => {
    const { code, stderr } = await runCli(['api'], { BLOCKHOOK_ADMIN_TOKEN: TOKEN, ...env }).exited
    t.equal(code, 1, `${name}: exit code 1`)
    t.match(stderr, /^blockhook: invalid configuration: /, `${name}: one clear line`)
    t.match(stderr, message, `${name}: names the field`)
  }))
})
