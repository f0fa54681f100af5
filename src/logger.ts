import { pino, type Logger } from 'pino'
import type { Config } from './config/config.js'

export type { Logger }

/** One structured logger per process; tokens, API keys and secrets never reach it (docs/architecture.md, "Data and secrets"). */
export function createLogger(config: Pick<Config, 'logLevel'>, role: string): Logger {
  return pino({
    level: config.logLevel,
    base: { role },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.apiKey', '*.secret', '*.secrets', 'apiKey', 'secret'],
      censor: '[redacted]',
    },
  })
}
