/**
 * Real peers for the tests: a throwaway redis-server and an anvil node, each on a free port,
 * each stopped when the test (or the process) ends.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { once } from 'node:events'

const require = createRequire(import.meta.url)

export interface RunningProcess {
  url: string
  port: number
  child: ChildProcess
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts `command`, resolves with the first match of `ready` in its output. */
function startAndWaitFor(command: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = output.match(ready)
      if (match) {
        child.stdout!.off('data', onData)
        child.stderr!.off('data', onData)
        child.stdout!.resume()
        child.stderr!.resume()
        resolve({ child, match })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before it was ready:\n${output}`)))
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await once(child, 'exit')
  clearTimeout(timer)
}

export async function startRedis(): Promise<RunningProcess> {
  const port = await freePort()
  const { child } = await startAndWaitFor(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    /Ready to accept connections/,
  )
  return { url: `redis://127.0.0.1:${port}`, port, child, stop: () => stopChild(child) }
}

export function anvilBinary(): string {
  return require.resolve('@foundry-rs/anvil-linux-amd64/bin/anvil')
}

export async function startAnvil(extraArgs: string[] = []): Promise<RunningProcess & { wsUrl: string }> {
  const { child, match } = await startAndWaitFor(
    anvilBinary(),
    ['--port', '0', '--host', '127.0.0.1', ...extraArgs],
    /Listening on ([0-9.]+):([0-9]+)/,
  )
  const port = Number(match[2])
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    child,
    stop: () => stopChild(child),
  }
}
