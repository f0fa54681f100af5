/**
 * `blockhook dev` (README, "Operations"): a zero-configuration demo. Uses the Redis at REDIS_URL when one
 * answers, else starts a private redis-server; starts anvil as the chain `local`; runs every role
 * in this process on 127.0.0.1 with private webhook URLs allowed; creates a demo tenant; prints
 * where everything is. Everything it starts is registered for the CLI's one shutdown as soon as
 * it runs, so a signal at any moment stops exactly what exists.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { hasCode } from '../domain/errors.js'
import { deepFreeze, loadConfig, type Config } from '../config/config.js'
import { redactUrl } from '../domain/redact.js'
import { createLogger, type Logger } from '../logger.js'
import type { RunningRole } from '../roles.js'
import { connectRedis, wire } from '../wiring.js'
import { scanEachServer } from '../storage/redis.js'
import { devBanner } from './banner.js'
import { runDemo } from './demo.js'
import { startInbox } from './inbox.js'
import { freePort, startAnvil, startRedisServer } from './child-processes.js'
import { probeRedis } from './redis-probe.js'

type Env = Record<string, string | undefined>

export interface DevOptions {
  env: Env
  /** Starts api, subscriber and worker with the CLI's own starters (those `blockhook all` uses). */
  startRoles(config: Config, logger: Logger): Promise<RunningRole[]>
  /** The CLI's shutdown: on SIGTERM/SIGINT closes `parts` in reverse order, then exits 0. */
  shutdownOnSignals(parts: RunningRole[], logger: Logger): void
  /** Where `.blockhook/` goes; the current directory by default. */
  cwd?: string
  write?(text: string): void
}

const REDIS_PROBE_TIMEOUT_MS = 1_000
/** The chain's blocks come this often (anvil --block-time), so the stale-head watchdog stays quiet. */
const BLOCK_TIME_SEC = 1
const CHAIN_ID = 'local'
const INSTALL_REDIS_HINT =
  'install Redis (apt-get install redis-server, or brew install redis) or point REDIS_URL at one'
/** Deleting this run's keys from a shared Redis at exit; bounded so shutdown stays within 10 s. */
const KEY_CLEANUP_BATCH = 500
const KEY_CLEANUP_DEADLINE_MS = 3_000

function fail(message: string): never {
  process.stderr.write(`blockhook dev: ${message}\n`)
  process.exit(1)
}

function loadOrFail(env: Env, file: unknown): Config {
  try {
    return loadConfig(env, { dev: true, file })
  } catch (err) {
    if (hasCode(err, 'BH_CONFIG_INVALID')) fail(`invalid configuration: ${err.message}`)
    throw err
  }
}

/** A key prefix of its own, so a Redis shared with other work keeps nothing of this run. */
function sharedRedisCleanup(config: Config, logger: Logger): RunningRole {
  return {
    name: 'dev keys',
    async close() {
      const redis = connectRedis(config, 'dev-cleanup', logger)
      const deadline = Date.now() + KEY_CLEANUP_DEADLINE_MS
      try {
        const complete = await scanEachServer(redis, `{${config.redisPrefix}[}:]*`, KEY_CLEANUP_BATCH, async (keys, server) => {
          await server.unlink(...keys)
        }, () => Date.now() >= deadline)
        if (!complete) logger.warn({ prefix: config.redisPrefix }, 'some keys of this dev run were left in Redis')
      } finally {
        redis.disconnect()
      }
    },
  }
}

export async function runDev(options: DevOptions): Promise<void> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text))
  // Quiet by default: the banner is the interface; LOG_LEVEL=info shows every request and delivery.
  const env: Env = { ...options.env, LOG_LEVEL: options.env.LOG_LEVEL || 'warn' }
  const base = loadOrFail(env, {})
  const logger = createLogger(base, 'dev')
  const parts: RunningRole[] = []
  options.shutdownOnSignals(parts, logger)

  try {
    const probe = await probeRedis(base.redisUrl, REDIS_PROBE_TIMEOUT_MS)
    let redisUrl = base.redisUrl
    if (!probe.ok) {
      logger.info({ redis: redactUrl(base.redisUrl), reason: probe.reason }, 'no Redis answers at REDIS_URL; starting one')
      const dir = resolve(options.cwd ?? process.cwd(), '.blockhook', 'redis')
      mkdirSync(dir, { recursive: true })
      const redisServer = await startRedisServer({ dir }).catch((err: unknown) => {
        if (hasCode(err, 'BH_COMMAND_NOT_FOUND')) {
          fail(`no Redis answers at ${redactUrl(base.redisUrl)} and redis-server is not installed: ${INSTALL_REDIS_HINT}`)
        }
        throw err
      })
      parts.push({ name: 'redis-server', close: () => redisServer.stop() })
      redisUrl = redisServer.url
    }

    const anvil = await startAnvil(['--block-time', String(BLOCK_TIME_SEC)])
    parts.push({ name: 'anvil', close: () => anvil.stop() })

    const port = base.port === 0 ? await freePort() : base.port
    const loaded = loadOrFail({
      ...env,
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redisUrl,
      BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true',
      BLOCKHOOK_ADMIN_TOKEN: env.BLOCKHOOK_ADMIN_TOKEN || randomBytes(24).toString('base64url'),
      // Secrets sealed at rest in dev too, under a key that lives as long as this run's data.
      BLOCKHOOK_ENCRYPTION_KEY: env.BLOCKHOOK_ENCRYPTION_KEY || randomBytes(32).toString('base64'),
    }, {
      chains: [{
        id: CHAIN_ID, type: 'evm', ws: [anvil.wsUrl], http: [anvil.url],
        confirmations: 0, blockTimeMs: BLOCK_TIME_SEC * 1000,
      }],
    })
    const config = probe.ok
      ? deepFreeze({ ...loaded, redisPrefix: `blockhook-dev-${randomBytes(4).toString('hex')}` })
      : loaded
    if (probe.ok) parts.push(sharedRedisCleanup(config, logger))

    const wiring = wire(config, 'dev', logger)
    parts.push({ name: 'dev redis connection', close: () => wiring.close() })
    const { tenant, apiKey } = await wiring.tenants.create('demo')
    // Before the roles, so it closes after the worker: no delivery in flight finds it gone.
    const inbox = await startInbox(wiring.watches, write)
    parts.push({ name: 'inbox', close: () => inbox.close() })

    parts.push(...await options.startRoles(config, logger))

    const apiUrl = `http://127.0.0.1:${config.port}`
    write(devBanner({
      apiUrl,
      adminToken: config.adminToken,
      tenantId: tenant.id,
      apiKey,
      chainId: CHAIN_ID,
      rpcUrl: anvil.url,
      wsUrl: anvil.wsUrl,
      redis: redactUrl(config.redisUrl),
      redisStarted: !probe.ok,
      inboxUrl: inbox.url,
    }))

    const demo = new AbortController()
    parts.push({ name: 'demo', close: async () => demo.abort() })
    runDemo({ apiUrl, apiKey, chainId: CHAIN_ID, rpcUrl: anvil.url, inbox, write, signal: demo.signal })
      .catch((err: unknown) => { if (!demo.signal.aborted) write(`demo: ${(err as Error).message}\n`) })
  } catch (err) {
    logger.error({ err }, 'blockhook dev could not start')
    for (const part of [...parts].reverse()) {
      await part.close().catch((closeErr: unknown) => logger.error({ err: closeErr, part: part.name }, 'error while closing'))
    }
    fail((err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      ? `port ${base.port} is in use: set PORT to a free one (PORT=0 picks one)`
      : `could not start: ${(err as Error).message}`)
  }
}
