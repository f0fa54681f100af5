/**
 * A subscriber role in a process of its own, for the test that kills one with SIGKILL (a crash
 * leaves its lease to expire, unlike close()). Config comes as JSON in BH_TEST_CONFIG; it prints
 * `leading` once it leads the chain `local`.
 */
import { pino } from 'pino'
import type { Config } from '../../src/config/config.js'
import { startSubscriber } from '../../workers/subscriber.js'
import { FAST } from './subscriber-harness.js'

const config = JSON.parse(process.env.BH_TEST_CONFIG!) as Config
const sub = await startSubscriber(config, pino({ level: 'silent' }), FAST)
await sub.chains.get('local')!.whenLeading()
process.stdout.write('leading\n')
