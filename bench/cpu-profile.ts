/**
 * A short reading of V8 CPU profiles (`node --cpu-prof`): where self time went, by function, by
 * file and by package, several profiles of one role merged, optionally only within time windows
 * (the measured part of a run, without start-up). Run on its own to read profiles already
 * written: `node --import tsx bench/cpu-profile.ts <file.cpuprofile | folder> [top]` (within the
 * windows of a windows.json beside the folder, as the throughput bench writes, when there is one).
 *
 * Sample times are in µs of the monotonic clock `process.hrtime` reads, in every process, so a
 * window taken by one process applies to another's profile. Under load a sample's time is wall
 * time on the stack, not CPU time: read the shares, and take CPU figures from the bench.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
}
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; endTime: number; startTime: number }

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

/** A file named from the repository root, node_modules/<package>/… or node:…; VM entries keep their name. */
function fileOf(url: string): string {
  if (url === '') return '(native and VM)'
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const inModules = path.lastIndexOf('/node_modules/')
  if (inModules >= 0) return path.slice(inModules + 1)
  return path.startsWith(ROOT + '/') ? path.slice(ROOT.length + 1) : path
}

function packageOf(file: string): string {
  const parts = file.split('/')
  if (parts[0] === 'node_modules') return parts.slice(0, parts[1]!.startsWith('@') ? 3 : 2).join('/')
  if (file.startsWith('node:')) return 'node:internal'
  return parts.length > 1 ? `${parts[0]}/` : file
}

export interface SelfTimes {
  totalMs: number
  byFunction: Map<string, number>
  byFile: Map<string, number>
  byPackage: Map<string, number>
}

/** µs on the clock of the profiles' timestamps. */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

/** [from, to] in monotonicUs. */
export type Window = readonly [number, number]

/** Beside the profiles' folders: the windows they were measured in, as JSON. */
export const WINDOWS_FILE = 'windows.json'

/**
 * Self time (the time of each sample, to the next one) of every function, file and package, of
 * the samples within `windows` (all when none is given); idle left out.
 */
export function selfTimes(profiles: readonly CpuProfile[], windows?: readonly Window[]): SelfTimes {
  const times: SelfTimes = { totalMs: 0, byFunction: new Map(), byFile: new Map(), byPackage: new Map() }
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms)
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
    let at = profile.startTime
    for (let i = 0; i < profile.samples.length; i++) {
      at += profile.timeDeltas[i]!
      if (windows && !windows.some(([from, to]) => at >= from && at <= to)) continue
      const frame = nodes.get(profile.samples[i]!)!
      if (frame.functionName === '(idle)') continue
      const ms = (i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0) / 1000
      const file = fileOf(frame.url)
      times.totalMs += ms
      add(times.byFunction, `${frame.functionName || '(anonymous)'} ${file === '(native and VM)' ? '' : `${file}:${frame.lineNumber + 1}`}`.trim(), ms)
      add(times.byFile, file, ms)
      add(times.byPackage, packageOf(file), ms)
    }
  }
  return times
}

/** The .cpuprofile files at `path`: a file, or every main thread's in a folder (`CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile`). */
export function readProfiles(path: string): CpuProfile[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).map((f) => join(path, f))
    : [path]
  return files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)
}

export function printSelfTimes(title: string, times: SelfTimes, top = 15): void {
  console.log(`\n${title}: ${times.totalMs.toFixed(0)} ms sampled, not idle`)
  const table = (name: string, map: Map<string, number>, n: number) => {
    console.log(`  by ${name}:`)
    for (const [key, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`  ${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / times.totalMs).toFixed(1).padStart(5)} %  ${key}`)
    }
  }
  table('function (self)', times.byFunction, top)
  table('file (self)', times.byFile, top)
  table('package (self)', times.byPackage, Math.ceil(top / 2))
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [path, top] = process.argv.slice(2)
  if (!path) throw new Error('usage: node --import tsx bench/cpu-profile.ts <file.cpuprofile | folder> [top]')
  const windowsFile = join(path, '..', WINDOWS_FILE)
  const windows = existsSync(windowsFile) ? JSON.parse(readFileSync(windowsFile, 'utf8')) as Window[] : undefined
  printSelfTimes(`${path}${windows ? ' (within windows.json)' : ''}`, selfTimes(readProfiles(path), windows), Number(top ?? 15))
}
