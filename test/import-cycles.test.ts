import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('./helpers/import-cycles.mjs', import.meta.url))

t.test('no import cycles among src/, routes/ and workers/', async (t) => {
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' })
  t.equal(run.stdout, '', 'no cycle printed')
  t.equal(run.status, 0)
})

t.test('the check finds a cycle, type-only imports included', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/import-cycle', import.meta.url))
  const run = spawnSync(process.execPath, [script, fixture], { encoding: 'utf8' })
  t.equal(run.stdout, 'import cycle: src/a.ts <-> src/b.ts\n')
  t.equal(run.status, 1)
})
