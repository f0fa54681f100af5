/**
 * `npm run bench`: runs every bench/*.bench.ts in its own process, one after another (so they do
 * not compete for the two cores), each printing its figures and their ratio to the issue's baseline.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv[2]
/** After the name, for the bench itself: `npm run bench throughput -- --profile`. */
const benchArgs = process.argv.slice(3)
const benches = readdirSync(here).filter((f) => f.endsWith('.bench.ts') && (!only || f.includes(only))).sort()
let failed = 0
for (const file of benches) {
  console.log(`\n## ${file}`)
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, file), ...benchArgs], { stdio: 'inherit' })
  if (result.status !== 0) failed++
}
console.log(`\nmachine: ${process.platform} ${process.arch}, node ${process.version}, ${new Date().toISOString()}`)
process.exit(failed === 0 ? 0 : 1)
