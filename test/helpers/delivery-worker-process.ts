/**
 * A delivery worker in a process of its own, for the crash test: the config comes from the
 * environment as in production, plus a key prefix of the test's and short lock timings so a
 * killed worker's job is recovered in seconds. Prints `ready` once the worker runs.
 */
import { pino } from 'pino'
import { loadConfig } from '../../src/config/config.js'
import { startWorker } from '../../workers/delivery-worker.js'

const config = { ...loadConfig(process.env, { file: JSON.parse(process.env.TEST_CONFIG_FILE ?? '{}') }), redisPrefix: process.env.TEST_REDIS_PREFIX ?? 'blockhook' }
const worker = await startWorker(config, pino({ level: 'silent' }), {
  tuning: { lockDurationMs: 1_000, stalledIntervalMs: 500 },
})
process.once('SIGTERM', () => { void worker.close().then(() => process.exit(0)) })
process.stdout.write('ready\n')
