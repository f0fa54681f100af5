/**
 * The peers `blockhook dev` (and the test suite) runs beside blockhook: a redis-server and an
 * anvil node, each started as a child process on a free loopback port and stopped with it.
 * Children still alive when this process exits are killed, so none outlives a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { BlockhookError } from '../domain/errors.js'

const require = createRequire(import.meta.url)

export interface RunningProcess {
  url: string
  port: number
  child: ChildProcess
  stop(): Promise<void>
}

/** How long a child may take to say it is ready, and to exit after SIGTERM before SIGKILL. */
const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 5_000
/** Output kept for the error message of a child that exits before it is ready. */
const MAX_STARTUP_OUTPUT_CHARS = 16_384

export class ChildProcessError extends BlockhookError {
  constructor(code: 'BH_COMMAND_NOT_FOUND' | 'BH_CHILD_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, 500, options)
    this.name = 'ChildProcessError'
  }
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

/** Starts `command` and resolves with the first match of `ready` in its output. */
export function startAndWaitFor(
  command: string,
  args: readonly string[],
  ready: RegExp,
  options: { cwd?: string } = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and
  // redis-server and anvil must outlive the roles that are still closing over them; dev stops
  // them itself, last (and the exit handler above kills any left).
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, detached: true })
  running.add(child)
  child.once('exit', () => running.delete(child))
  child.once('error', () => running.delete(child))
  return new Promise((resolve, reject) => {
    let output = ''
    const fail = (err: Error) => {
      cleanup()
      child.kill('SIGKILL')
      reject(err)
    }
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-MAX_STARTUP_OUTPUT_CHARS)
      const match = output.match(ready)
      if (!match) return
      cleanup()
      // Keep draining, or a chatty child blocks on a full pipe.
      child.stdout!.resume()
      child.stderr!.resume()
      resolve({ child, match })
    }
    const onError = (err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT'
      ? new ChildProcessError('BH_COMMAND_NOT_FOUND', `${command} is not installed`, { cause: err })
      : new ChildProcessError('BH_CHILD_FAILED', `${command} could not start: ${err.message}`, { cause: err }))
    const onExit = (code: number | null, signal: string | null) => fail(new ChildProcessError(
      'BH_CHILD_FAILED', `${command} exited (${signal ?? code}) before it was ready:\n${output}`))
    const timer = setTimeout(() => fail(new ChildProcessError(
      'BH_CHILD_FAILED', `${command} was not ready after ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS)
    function cleanup() {
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      child.stderr!.off('data', onData)
      child.off('error', onError)
      child.off('exit', onExit)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', onError)
    child.once('exit', onExit)
  })
}

/** SIGTERM, then SIGKILL if it lingers; resolves once the child is gone. Idempotent. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

export interface RedisServerOptions {
  /** Working directory of the server (where it would write dumps); the current one when absent. */
  dir?: string
  /** A free one when absent; given to restart a server on the same address. */
  port?: number
  /** Keep an append-only file in `dir`, as production Redis does (the soak restarts it on the same data). */
  appendOnly?: boolean
}

/** A redis-server on a loopback port that keeps nothing on disk unless `appendOnly`. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RunningProcess> {
  const port = options.port ?? await freePort()
  const { child } = await startAndWaitFor(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no'],
    /Ready to accept connections/,
    { cwd: options.dir },
  )
  return { url: `redis://127.0.0.1:${port}`, port, child, stop: () => stopChild(child) }
}

/** anvil's binary for this platform, from the optional package @foundry-rs/anvil installed. */
export function anvilBinary(): string {
  const platform = ({ darwin: 'darwin', linux: 'linux', win32: 'win32' } as Record<string, string>)[process.platform]
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch]
  if (!platform || !arch) {
    throw new ChildProcessError('BH_COMMAND_NOT_FOUND', `anvil has no build for ${process.platform}/${process.arch}`)
  }
  const binary = process.platform === 'win32' ? 'anvil.exe' : 'anvil'
  try {
    return require.resolve(`@foundry-rs/anvil-${platform}-${arch}/bin/${binary}`)
  } catch (err) {
    throw new ChildProcessError('BH_COMMAND_NOT_FOUND',
      `anvil is not installed (package @foundry-rs/anvil-${platform}-${arch}); run npm ci`, { cause: err })
  }
}

/** An anvil node on a free loopback port (`--port 0`, the port read from its banner). */
export async function startAnvil(extraArgs: readonly string[] = []): Promise<RunningProcess & { wsUrl: string }> {
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
