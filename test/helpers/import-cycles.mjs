#!/usr/bin/env node
/**
 * Prints every import cycle among the TypeScript modules of src/, routes/ and workers/ (type-only
 * imports count: they tie the modules' designs together just the same) and exits 1 if there is
 * one. test/import-cycles.test.ts runs it, so `npm test` fails when a cycle appears.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository, or the directory given as the first argument (the test's fixture). */
const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const DIRS = ['src', 'routes', 'workers']
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

function filesUnder(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** `./x.js` as written in strict ESM names `./x.ts` on disk. */
function resolveImport(from, specifier) {
  const target = resolve(dirname(from), specifier)
  for (const candidate of [target.replace(/\.js$/, '.ts'), target, `${target}.ts`, join(target, 'index.ts')]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate
  }
  return undefined
}

const files = DIRS.flatMap((dir) => filesUnder(join(root, dir)))
const inScope = new Set(files)
const graph = new Map(files.map((file) => {
  const text = readFileSync(file, 'utf8')
  const targets = new Set()
  for (const match of text.matchAll(IMPORT)) {
    const target = resolveImport(file, match[1] ?? match[2])
    if (target && inScope.has(target)) targets.add(target)
  }
  return [file, [...targets].sort()]
}))

// Tarjan's strongly connected components: each component of more than one module is a cycle.
let index = 0
const indexOf = new Map()
const lowOf = new Map()
const stack = []
const onStack = new Set()
const components = []
function visit(node) {
  indexOf.set(node, index)
  lowOf.set(node, index)
  index++
  stack.push(node)
  onStack.add(node)
  for (const next of graph.get(node)) {
    if (!indexOf.has(next)) {
      visit(next)
      lowOf.set(node, Math.min(lowOf.get(node), lowOf.get(next)))
    } else if (onStack.has(next)) {
      lowOf.set(node, Math.min(lowOf.get(node), indexOf.get(next)))
    }
  }
  if (lowOf.get(node) === indexOf.get(node)) {
    const component = []
    let member
    do {
      member = stack.pop()
      onStack.delete(member)
      component.push(member)
    } while (member !== node)
    if (component.length > 1 || graph.get(node).includes(node)) components.push(component)
  }
}
for (const file of files) if (!indexOf.has(file)) visit(file)

for (const component of components) {
  process.stdout.write(`import cycle: ${component.map((f) => relative(root, f)).sort().join(' <-> ')}\n`)
}
process.exit(components.length > 0 ? 1 : 0)
