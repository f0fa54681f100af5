/**
 * What the node-input property tests share (fast-check): values one step off a well-formed one,
 * and a logger whose lines a test reads, to check that bad input is logged as a skip without a
 * line per message.
 */
import { Writable } from 'node:stream'
import fc from 'fast-check'
import { pino, type Logger } from 'pino'

/** A value one field off: a field replaced by anything, a field removed, or the whole replaced. */
export function corrupt<T extends Record<string, unknown>>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    valid,
    fc.tuple(valid, fc.nat(), fc.anything({ maxDepth: 2 })).map(([v, i, x]) => {
      const keys = Object.keys(v)
      return { ...v, [keys[i % keys.length]!]: x }
    }),
    fc.tuple(valid, fc.nat()).map(([v, i]) => {
      const keys = Object.keys(v)
      const { [keys[i % keys.length]!]: _gone, ...rest } = v
      return rest
    }),
    fc.anything({ maxDepth: 3 }),
  )
}

/** A documented example's `result` with a path inside it replaced, or removed. */
export function corruptDeep(value: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = []
  const walk = (v: unknown, path: (string | number)[]) => {
    paths.push(path)
    if (typeof v === 'object' && v !== null) for (const [k, child] of Object.entries(v)) walk(child, [...path, Array.isArray(v) ? Number(k) : k])
  }
  walk(value, [])
  const replaced = (path: (string | number)[], x: unknown, remove: boolean): unknown => {
    if (path.length === 0) return remove ? undefined : x
    const copy = structuredClone(value) as Record<string | number, unknown>
    let at = copy
    for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>
    if (remove) delete at[path[path.length - 1]!]
    else at[path[path.length - 1]!] = x
    return copy
  }
  return fc.oneof(
    fc.constant(value),
    fc.tuple(fc.constantFrom(...paths), fc.anything({ maxDepth: 2 }), fc.boolean()).map(([path, x, remove]) => replaced(path, x, remove)),
    fc.anything({ maxDepth: 3 }),
  )
}

/** Log lines as written, parsed, for assertions on what was logged and how often. */
export function capturedLogger(): { lines: { level: number; msg: string; skipped?: number }[]; logger: Logger } {
  const lines: { level: number; msg: string; skipped?: number }[] = []
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  return { lines, logger: pino({ level: 'info' }, sink) }
}

/** Warnings and errors logged more than once: a node's bad input must not cost a line per frame. */
export function repeated(lines: { level: number; msg: string }[]): string[] {
  const counts = new Map<string, number>()
  for (const { level, msg } of lines) if (level >= 40) counts.set(msg, (counts.get(msg) ?? 0) + 1)
  return [...counts].filter(([, n]) => n > 1).map(([msg, n]) => `${msg} ×${n}`)
}
