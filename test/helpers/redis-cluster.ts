/**
 * A real three-master Redis Cluster for the tests and the cluster bench: three
 * `redis-server --cluster-enabled yes` on free ports, joined by `redis-cli --cluster create` (no
 * replicas), each node's config file in a temporary directory; `stop()` stops and removes them.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './processes.js'
import { startAndWaitFor, stopChild } from '../../src/dev/child-processes.js'

const run = promisify(execFile)

export interface RedisClusterNodes {
  /** redis://127.0.0.1:<port> of each master. */
  urls: string[]
  /** A plain connection to each master (for INFO, DBSIZE, SCAN on that node alone). */
  masters: Redis[]
  /** Disconnects, stops every node and removes their files. */
  stop(): Promise<void>
}

export async function startRedisCluster(size = 3): Promise<RedisClusterNodes> {
  const dir = await mkdtemp(join(tmpdir(), 'blockhook-cluster-'))
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()))
  const nodes = await Promise.all(ports.map((port) => startAndWaitFor('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--save', '', '--appendonly', 'no',
  ], /Ready to accept connections/, { cwd: dir })))
  const masters = ports.map((port) => new Redis(port, '127.0.0.1', { lazyConnect: false }))
  const stop = async () => {
    for (const master of masters) master.disconnect()
    await Promise.all(nodes.map(({ child }) => stopChild(child)))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'])
    // Each node learns of the others over the cluster bus; the cluster serves once every node says ok.
    for (const master of masters) {
      while (!/cluster_state:ok/.test(await master.cluster('INFO') as string)) {
        await new Promise<void>((resolve) => { const timer = setTimeout(resolve, 50); timer.unref() })
      }
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { urls: ports.map((port) => `redis://127.0.0.1:${port}`), masters, stop }
}

/** Calls and µs per command name since the server started (INFO commandstats). */
export async function commandStats(server: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = (await server.info('commandstats')) as string
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)].map(([, name, calls, usec]) => [name!, { calls: Number(calls), usec: Number(usec) }]))
}
