/**
 * Bundles the dashboard (ui/app.jsx, Preact) and copies its page and stylesheet into dist/ui/,
 * where routes/ui.ts serves them. Run by `npm run build` (and so by `prepare` on `npm ci`) and by
 * the dashboard test, so a fresh checkout serves the console it ships.
 */
import { copyFile, mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = fileURLToPath(new URL('.', import.meta.url))
export const UI_OUT_DIR = fileURLToPath(new URL('../dist/ui/', import.meta.url))

export async function buildUi() {
  await mkdir(UI_OUT_DIR, { recursive: true })
  await build({
    entryPoints: [`${here}app.jsx`],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outfile: `${UI_OUT_DIR}app.js`,
    logLevel: 'warning',
  })
  await copyFile(`${here}index.html`, `${UI_OUT_DIR}index.html`)
  await copyFile(`${here}app.css`, `${UI_OUT_DIR}app.css`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildUi()
