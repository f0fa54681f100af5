/**
 * The only place that starts processes: parse the role, load the config (exit 1 on a
 * bad one), start the role(s), and on SIGTERM/SIGINT close them once, in order, and exit 0.
 */
import { loadConfig, type Config } from './config/config.js'
import { hasCode } from './domain/errors.js'
import { createLogger, type Logger } from './logger.js'
import type { RunningRole } from './roles.js'
import { connectRedis } from './wiring.js'
import { checkRedisSettings } from './storage/redis-settings.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'
import { runDev } from './dev/dev.js'
import { startApi } from './api/server.js'
import { runListen } from './listen/listen.js'


/** What roles started in one process share: the subscriber's readiness feeds the api's /readyz. */
interface RoleContext {
  readonly readinessChecks: Array<() => string | undefined>
}

type RoleStarter = (config: Config, logger: Logger, context: RoleContext) => Promise<RunningRole>

const USAGE = 'usage: blockhook <all|api|subscriber|worker|dev|listen>'
/** README, "Operations": a stopped process exits within 10 s; force it just before. */
const SHUTDOWN_DEADLINE_MS = 9_500

type RoleName = 'api' | 'subscriber' | 'worker'

const ROLES: Record<RoleName, RoleStarter> = {
  api: (config, logger, context) => startApi(config, logger, { readinessChecks: context.readinessChecks }),
  subscriber: async (config, logger, context) => {
    const subscriber = await startSubscriber(config, logger)
    context.readinessChecks.push(() => subscriber.notReadyReason())
    return subscriber
  },
  worker: (config, logger) => startWorker(config, logger),
}

/** `all` (and dev): the api last, so it takes traffic only once what it reports on is running. */
const ALL_ROLES: readonly RoleName[] = ['worker', 'subscriber', 'api']

async function startRoles(names: readonly RoleName[], config: Config, logger: Logger): Promise<RunningRole[]> {
  const context: RoleContext = { readinessChecks: [] }
  const started: RunningRole[] = []
  for (const name of names) started.push(await ROLES[name](config, logger.child({ role: name }), context))
  return started
}

/** Stops roles in reverse start order (intake first when started api-last); idempotent. */
function shutdownOnSignals(roles: RunningRole[], logger: Logger): void {
  let closing: Promise<void> | undefined
  const stop = (signal: string) => {
    closing ??= (async () => {
      logger.info({ signal }, 'shutting down')
      const deadline = setTimeout(() => {
        logger.error('shutdown took too long, exiting')
        process.exit(1)
      }, SHUTDOWN_DEADLINE_MS)
      deadline.unref()
      for (const role of [...roles].reverse()) {
        await role.close().catch((err: unknown) => logger.error({ err, role: role.name }, 'error while closing'))
      }
      clearTimeout(deadline)
      process.exit(0)
    })()
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

async function warnAboutRedisSettings(config: Config, logger: Logger): Promise<void> {
  const redis = connectRedis(config, 'settings-check', logger)
  try {
    for (const warning of await checkRedisSettings(redis)) logger.warn(warning)
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not check the Redis persistence settings')
  } finally {
    redis.disconnect()
  }
}

function keepServing(logger: Logger): void {
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'))
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'))
}

export async function main(argv: readonly string[]): Promise<void> {
  const command = argv[0]
  if (command === 'listen') {
    await runListen(argv.slice(1), process.env)
    return
  }
  if (command === 'dev') {
    await runDev({
      env: process.env,
      startRoles: (config, logger) => startRoles(ALL_ROLES, config, logger),
      shutdownOnSignals: (parts, logger) => {
        keepServing(logger)
        shutdownOnSignals(parts, logger)
      },
    })
    return
  }
  const roleNames: readonly RoleName[] | undefined =
    command === 'all' ? ALL_ROLES
    : command === 'api' || command === 'subscriber' || command === 'worker' ? [command]
    : undefined
  if (!command || !roleNames) {
    process.stderr.write(`${USAGE}\n`)
    process.exit(2)
  }

  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (!hasCode(err, 'BH_CONFIG_INVALID')) throw err
    process.stderr.write(`blockhook: invalid configuration: ${err.message}\n`)
    process.exit(1)
  }
  const logger = createLogger(config, command)
  keepServing(logger)
  await warnAboutRedisSettings(config, logger)
  const roles = await startRoles(roleNames, config, logger)
  shutdownOnSignals(roles, logger)
}
