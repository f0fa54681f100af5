/**
 * What the benchmarks that run roles in processes of their own share: a bench file started again
 * as a child with a role, the messages it sends back, and the CPU a process or Redis has used.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'

/** Runs the bench file at `benchUrl` (its import.meta.url) in a child process as `role`, with an IPC channel. */
export function forkRole(benchUrl: string, role: string, env: Record<string, string>): ChildProcess {
  return fork(fileURLToPath(benchUrl), [role], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
}

/** The child's next IPC message; rejects if it exits first. */
export function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => { child.off('exit', onExit); resolve(message as T) }
    const onExit = (code: number | null) => { child.off('message', onMessage); reject(new Error(`child exited with ${code}`)) }
    child.once('message', onMessage)
    child.once('exit', onExit)
  })
}

/** utime + stime of a process (all its threads), from /proc (Linux), in ms. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // clock ticks at USER_HZ = 100
}

/** CPU of Redis's main thread (where commands and scripts run), from INFO cpu, in ms. */
export async function redisMainThreadCpuMs(client: Redis): Promise<number> {
  const info = Object.fromEntries((await client.info('cpu')).split('\n').map((line) => line.trim().split(':')))
  return (Number(info.used_cpu_user_main_thread) + Number(info.used_cpu_sys_main_thread)) * 1000
}
