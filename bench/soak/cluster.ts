/**
 * The processes the soak runs and kills: each blockhook role (and `listen`) as `blockhook …` from the
 * sources (test/helpers/cli-entry.ts, with production timings: nothing shortened), its output
 * appended to a log file per role; and a redis-server with an append-only file, killed and
 * restarted on the same port and data directory. A role that exits without being killed is
 * counted and started again: a crash is a finding, not the end of the run.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedisServer, type RunningProcess } from '../../src/dev/child-processes.js'

const ENTRY = fileURLToPath(new URL('../../test/helpers/cli-entry.ts', import.meta.url))
/** SPEC: SIGTERM stops a process with exit code 0 within 10 s. */
export const GRACEFUL_STOP_MS = 10_000

export interface StopOutcome { name: string; code: number | null; signal: string | null; ms: number }

/** Role processes still running when the soak exits (a failure, Ctrl-C) are killed with it. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export class RoleProcess {
  readonly name: string
  readonly #args: string[]
  readonly #env: Record<string, string>
  readonly #log: WriteStream
  #child: ChildProcess | undefined
  #killing = false
  #stopped = false
  /** The current process's latest output, for `printed()`. */
  #recent = ''
  readonly #waiters = new Set<{ pattern: RegExp; resolve: () => void }>()
  /** Exits nobody asked for, each with its code or signal. */
  readonly unexpectedExits: string[] = []
  starts = 0

  /** `command`: what follows `blockhook` (`worker`, `listen --forward-to …`). */
  constructor(name: string, command: readonly string[], env: Record<string, string>, logDir: string) {
    this.name = name
    this.#args = ['--import', 'tsx', ENTRY, ...command]
    this.#env = { PATH: process.env.PATH ?? '', ...env }
    mkdirSync(logDir, { recursive: true })
    this.#log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  start(): void {
    this.starts++
    this.#log.write(`--- ${new Date().toISOString()} start #${this.starts}\n`)
    const child = spawn(process.execPath, this.#args, { env: this.#env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.pipe(this.#log, { end: false })
    child.stderr!.pipe(this.#log, { end: false })
    this.#recent = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      this.#recent = (this.#recent + chunk.toString()).slice(-65_536)
      for (const waiter of this.#waiters) {
        if (waiter.pattern.test(this.#recent)) { this.#waiters.delete(waiter); waiter.resolve() }
      }
    })
    this.#child = child
    live.add(child)
    child.once('exit', (code, signal) => {
      live.delete(child)
      this.#log.write(`--- ${new Date().toISOString()} exit ${signal ?? code}\n`)
      if (this.#killing || this.#stopped || this.#child !== child) return
      this.unexpectedExits.push(`${signal ?? code} at ${new Date().toISOString()}`)
      setTimeout(() => { if (!this.#stopped) this.start() }, 1_000).unref()
    })
  }

  /** Resolves once the running process prints something matching `pattern`. */
  printed(pattern: RegExp): Promise<void> {
    if (pattern.test(this.#recent)) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add({ pattern, resolve }))
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    this.#killing = true
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
    this.#killing = false
  }

  /** SIGTERM and how the process ended (SIGKILL after the deadline). */
  async stop(): Promise<StopOutcome> {
    this.#stopped = true
    const child = this.#child
    const started = Date.now()
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return { name: this.name, code: child?.exitCode ?? null, signal: child?.signalCode ?? null, ms: 0 }
    }
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), GRACEFUL_STOP_MS + 5_000)
    const [code, signal] = await exited
    clearTimeout(timer)
    this.#log.end()
    return { name: this.name, code, signal, ms: Date.now() - started }
  }
}

/** redis-server with appendonly on `dir`, on one port for the whole run. */
export class PersistentRedis {
  readonly #dir: string
  #server: RunningProcess | undefined
  port = 0
  kills = 0

  constructor(dir: string) {
    this.#dir = dir
    mkdirSync(dir, { recursive: true })
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    this.#server = await startRedisServer({ dir: this.#dir, appendOnly: true, ...(this.port ? { port: this.port } : {}) })
    this.port = this.#server.port
  }

  async kill(): Promise<void> {
    const child = this.#server?.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    this.kills++
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    await this.#server?.stop()
  }
}
