import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url))

export interface CliRun {
  child: ChildProcess
  /** Resolves when the process exits, with its code and everything it printed. */
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>
  output(): string
}

/** Runs `blockhook <args>` with exactly `env` (plus PATH), from the sources via tsx. */
export function runCli(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('exit', (code) => {
      // Let the pipes drain before reporting what was printed.
      setImmediate(() => resolve({ code, stdout, stderr }))
    })
  })
  return { child, exited, output: () => stdout + stderr }
}
