/**
 * fly.toml is what an operator deploys with: it must parse, run the three roles through the CLI,
 * and probe health paths that the API really serves (a renamed route would otherwise leave every
 * Machine failing its checks).
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'smol-toml'
import { startApi } from '../src/api/server.js'
import { createLogger } from '../src/logger.js'
import { testConfig } from './helpers/config.js'
import { freePort, startRedis } from './helpers/processes.js'

interface FlyToml {
  kill_signal?: string
  kill_timeout?: number | string
  processes?: Record<string, string>
  http_service?: {
    processes?: string[]
    internal_port?: number
    checks?: Array<{ path?: string; method?: string }>
  }
  env?: Record<string, string>
  files?: Array<{ guest_path?: string; secret_name?: string }>
}

const fly = parse(readFileSync(new URL('../fly.toml', import.meta.url), 'utf8')) as FlyToml

/** fly accepts seconds as a number or a Go duration string ("20s"). */
function seconds(value: number | string | undefined): number {
  if (typeof value === 'number') return value
  const match = /^(\d+)s$/.exec(value ?? '')
  return match ? Number(match[1]) : NaN
}

t.test('runs api, subscriber and worker, each through the CLI', async (t) => {
  t.same(fly.processes, {
    api: 'node bin/blockhook.js api',
    subscriber: 'node bin/blockhook.js subscriber',
    worker: 'node bin/blockhook.js worker',
  })
})

t.test('gives a stopping Machine longer than the 10 s drain, with the signal the CLI drains on', async (t) => {
  t.ok(seconds(fly.kill_timeout) > 10, `kill_timeout ${fly.kill_timeout} must exceed 10 s`)
  t.ok(['SIGTERM', 'SIGINT'].includes(fly.kill_signal ?? 'SIGINT'))
})

t.test('routes HTTP to the api process only, on the port the api listens on', async (t) => {
  t.same(fly.http_service?.processes, ['api'])
  t.equal(String(fly.http_service?.internal_port), fly.env?.PORT)
})

t.test('the config file comes from a secret to the path BLOCKHOOK_CONFIG names', async (t) => {
  t.ok(fly.files?.some((f) => f.guest_path === fly.env?.BLOCKHOOK_CONFIG && f.secret_name))
})

t.test('health checks probe /healthz and /readyz, and the API serves both', async (t) => {
  const paths = (fly.http_service?.checks ?? []).map((check) => check.path)
  t.same([...paths].sort(), ['/healthz', '/readyz'])

  // The api role as fly runs it, on a real Redis: each check path must answer 200.
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const config = testConfig({ redisUrl: redis.url, host: '127.0.0.1', port: await freePort() })
  const api = await startApi(config, createLogger(config, 'api'))
  t.teardown(() => api.close())
  for (const path of paths) {
    const response = await fetch(`http://127.0.0.1:${config.port}${path}`)
    t.equal(response.status, 200, `the api answers GET ${path} with 200`)
  }
})
