/**
 * The dashboard (README, Dashboard): `GET /` serves the console's page, `/ui/*` its bundled
 * script and stylesheet, built into dist/ui/ by `npm run build` (ui/build.mjs). Everything is
 * served from this origin, and the CSP forbids anything else, so the page makes no outside request.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ApiRoutes } from '../src/api/route-context.js'
import { errorBody } from '../src/api/errors.js'

const CONTENT_SECURITY_POLICY = "default-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
}

/** The package root, from routes/ (tsx) or dist/routes/ (built). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

const UI_DIR = join(packageRoot(), 'dist', 'ui')

export const uiRoutes: ApiRoutes = async (app) => {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    return payload
  })

  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    const page = await readAsset('index.html')
    if (page === undefined) {
      return reply.code(503).send(errorBody(503, 'BH_UI_NOT_BUILT', 'the dashboard is not built: run npm run build'))
    }
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page)
  })

  app.get<{ Params: { asset: string } }>('/ui/:asset', { schema: { hide: true } }, async (request, reply) => {
    const type = ASSETS[request.params.asset]
    const body = type === undefined ? undefined : await readAsset(request.params.asset)
    if (type === undefined || body === undefined) return reply.code(404).send(errorBody(404, 'BH_ROUTE_NOT_FOUND', `no dashboard asset ${request.params.asset}`))
    return reply.type(type).header('cache-control', 'no-cache').send(body)
  })

  // Browsers ask for it on their own; the console has none.
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) => reply.code(204).send())
}

async function readAsset(name: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(UI_DIR, name))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
