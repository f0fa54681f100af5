/**
 * The api role as a process part: wires what `buildApi` needs, listens on HOST:PORT and closes
 * everything it opened, once, in order: stop taking requests, then the wiring (queue producer,
 * metrics snapshot, Redis).
 */
import type { Config } from '../config/config.js'
import type { Logger } from '../logger.js'
import type { RunningRole } from '../roles.js'
import { wire } from '../wiring.js'
import { buildApi } from './app.js'
import type { ReadinessCheck } from './route-context.js'

export interface StartApiOptions {
  readinessChecks?: ReadinessCheck[]
}

export async function startApi(config: Config, logger: Logger, options: StartApiOptions = {}): Promise<RunningRole> {
  if (!config.encryptionKey) {
    logger.warn('BLOCKHOOK_ENCRYPTION_KEY is not set: webhook secrets are stored in Redis unencrypted')
  }
  const wiring = wire(config, 'api', logger)
  const app = await buildApi(config, { ...wiring, logger, readinessChecks: options.readinessChecks })
  await app.listen({ host: config.host, port: config.port })
  wiring.metricsPublisher.start((err) => logger.warn({ err }, 'could not publish metrics'))

  let closing: Promise<void> | undefined
  return {
    name: 'api',
    close: () => (closing ??= (async () => {
      await app.close()
      await wiring.close()
    })()),
  }
}
