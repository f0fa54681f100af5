import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * `blockhook/<version>` (README, "The webhook"). The version is read from the package's own package.json,
 * found by walking up from this file, so it is right both from src (tsx) and from dist.
 */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, 'package.json')
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'blockhook' && pkg.version) return pkg.version
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the blockhook package.json')
    dir = parent
  }
}

export const USER_AGENT = `blockhook/${packageVersion()}`
