/**
 * Real peers for the tests: a throwaway redis-server and an anvil node, each on a free port,
 * each stopped when the test (or the process) ends. The starting code is `blockhook dev`'s
 * (src/dev/child-processes.ts), so the suite and dev mode run their peers the same way.
 */
import { startRedisServer, type RunningProcess } from '../../src/dev/child-processes.js'

export { anvilBinary, freePort, startAnvil, type RunningProcess } from '../../src/dev/child-processes.js'

export function startRedis(): Promise<RunningProcess> {
  return startRedisServer()
}
