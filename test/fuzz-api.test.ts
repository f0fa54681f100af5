/**
 * Property tests of the API through `inject`: requests generated from the schemas in
 * /openapi.json (mostly valid, often one step off, sometimes no JSON at all) to every route it
 * lists. Whatever comes in: no 5xx, every 4xx is the documented error body with a code from the
 * one list, and what was accepted can be read back. Seeded, so a failure replays.
 */
import t from 'tap'
import fc from 'fast-check'
import { ERROR_CODES } from '../src/domain/error-codes.js'
import { ADMIN, buildTestApi, createTenant, TEST_CHAINS } from './helpers/api.js'
import { startReceiver } from './helpers/delivery.js'
import { startRedis } from './helpers/processes.js'
import { mutated, valid, type Schema } from './helpers/schema-arbitrary.js'

/** FUZZ_SEED and FUZZ_RUNS explore further than CI does; a failure prints the seed that replays it. */
const SEED = Number(process.env.FUZZ_SEED ?? 20_151)
const RUNS = Number(process.env.FUZZ_RUNS ?? 600)

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

interface Operation {
  method: string
  path: string
  parameters?: { in: 'path' | 'query'; name: string; schema: Schema }[]
  requestBody?: { content: { 'application/json': { schema: Schema } } }
  security?: Record<string, unknown>[]
}

interface Generated {
  op: Operation
  params: Record<string, string>
  query: string
  auth: 'right' | 'none' | 'wrong'
  body: { kind: 'json'; value: unknown } | { kind: 'raw'; text: string; contentType: string } | { kind: 'none' }
}

t.test('generated requests to every route: no 5xx, every 4xx has the error body, nothing accepted is lost', async (t) => {
  const receiver = await startReceiver(t)
  const api = await buildTestApi(t, redisServer.url, {
    rateLimitPerSecond: 100_000, allowPrivateUrls: true,
    // POST /watches/:id/test may reach a generated URL: bounded, so a run stays short.
    file: { chains: TEST_CHAINS, delivery: { timeoutMs: 200 } },
  })
  const tenant = await createTenant(api.app)
  const create = async (payload: object) => {
    const res = await api.app.inject({ method: 'POST', url: '/watches', headers: tenant.headers, payload })
    if (res.statusCode !== 201) throw new Error(`setup: ${res.body}`)
    return (res.json() as { id: string }).id
  }
  const evmWatch = await create({ chain: 'eth', type: 'evm.blocks', filter: {}, url: `${receiver.url}/hook` })
  const solWatch = await create({ chain: 'sol', type: 'solana.slot', filter: {}, url: `${receiver.url}/hook` })
  const replay = await api.app.inject({ method: 'POST', url: `/watches/${evmWatch}/replay`, headers: tenant.headers, payload: { fromBlock: 1, toBlock: 2 } })
  const replayId = (replay.json() as { replayId: string }).replayId
  const known: Record<string, string[]> = { wch: [evmWatch, solWatch], ten: [tenant.id], rpl: [replayId], evt: [] }

  const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>> }
  const operations: Operation[] = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ ...op, method: method.toUpperCase(), path })))
  t.ok(operations.length >= 20, `${operations.length} operations`)

  // Values a free-form schema cannot guess: the configured chains, a URL that answers.
  const hints = {
    chain: fc.oneof({ arbitrary: fc.constantFrom(...TEST_CHAINS.map((c) => c.id)), weight: 4 }, { arbitrary: fc.constant('nope'), weight: 1 }),
    url: fc.oneof(fc.constant(`${receiver.url}/hook`), fc.webUrl()),
  }
  const paramValue = (op: Operation, schema: Schema): fc.Arbitrary<string> => {
    const prefix = /\^([a-z]{3})_/.exec(String(schema.pattern ?? ''))?.[1]
    // Known ids reach real resources; a DELETE only gets made-up ones, so the run keeps its tenant and watches.
    const ids = op.method === 'DELETE' || !prefix ? [] : known[prefix] ?? []
    return fc.oneof(
      ...(ids.length > 0 ? [{ arbitrary: fc.constantFrom(...ids), weight: 4 }] : []),
      { arbitrary: valid(schema).map(String), weight: 2 },
      { arbitrary: fc.string({ maxLength: 80, unit: 'binary' }), weight: 1 },
    )
  }
  const queryOf = (op: Operation): fc.Arbitrary<string> => {
    const params = (op.parameters ?? []).filter((p) => p.in === 'query')
    const pairs = fc.record(Object.fromEntries(params.map((p) => [p.name, fc.oneof(valid(p.schema).map(String), fc.string({ maxLength: 40, unit: 'binary' }))])), { requiredKeys: [] })
    const extra = fc.option(fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 })), { nil: undefined })
    return fc.oneof(
      { arbitrary: fc.tuple(pairs, extra).map(([p, x]) => new URLSearchParams({ ...p, ...(x && { [x[0]]: x[1] }) } as Record<string, string>).toString()), weight: 5 },
      { arbitrary: fc.string({ maxLength: 60 }).map((s) => s.replace(/#/g, '')), weight: 1 },
    )
  }
  const bodyOf = (op: Operation): fc.Arbitrary<Generated['body']> => {
    const schema = op.requestBody?.content['application/json'].schema
    const json = fc.record({ kind: fc.constant('json' as const), value: schema ? mutated(schema, hints) : fc.jsonValue({ maxDepth: 2 }) })
    const raw = fc.record({
      kind: fc.constant('raw' as const), text: fc.string({ maxLength: 200, unit: 'binary' }),
      contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'),
    })
    const none = fc.constant({ kind: 'none' as const })
    return schema
      ? fc.oneof({ arbitrary: json, weight: 8 }, { arbitrary: raw, weight: 1 }, { arbitrary: none, weight: 1 })
      : fc.oneof({ arbitrary: none, weight: 6 }, { arbitrary: json, weight: 1 }, { arbitrary: raw, weight: 1 })
  }
  // Built once per operation (building them per run costs more than the requests).
  // Creating and changing watches has the most rules: asked more often.
  const weightOf = (op: Operation) => (op.path === '/watches' && op.method === 'POST' ? 8 : op.method === 'PATCH' || op.path.endsWith('/replay') ? 3 : 1)
  const requests: fc.Arbitrary<Generated> = fc.oneof(...operations.map((op) => ({ weight: weightOf(op), arbitrary: fc.record({
    op: fc.constant(op),
    params: fc.record(Object.fromEntries((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, paramValue(op, p.schema)]))) as fc.Arbitrary<Record<string, string>>,
    query: queryOf(op),
    auth: fc.constantFrom('right', 'right', 'right', 'right', 'right', 'right', 'none', 'wrong'),
    body: bodyOf(op),
  }) })))

  const authFor = (g: Generated): Record<string, string> => {
    const admin = JSON.stringify(g.op.security ?? []).includes('adminToken')
    if (g.auth === 'none') return {}
    if (g.auth === 'wrong') return admin ? tenant.headers : ADMIN
    return admin ? ADMIN : tenant.headers
  }

  const seenStatuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(requests, async (g) => {
    const path = g.op.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(g.params[name] ?? ''))
    const url = g.query ? `${path}?${g.query}` : path
    const headers = { ...authFor(g) }
    const res = await api.app.inject({
      method: g.op.method as 'GET', url, headers,
      ...(g.body.kind === 'json' && { payload: JSON.stringify(g.body.value) ?? 'null', headers: { ...headers, 'content-type': 'application/json' } }),
      ...(g.body.kind === 'raw' && { payload: g.body.text, headers: { ...headers, 'content-type': g.body.contentType } }),
    })
    seenStatuses.set(res.statusCode, (seenStatuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) throw new Error(`${g.op.method} ${url} answered ${res.statusCode}: ${res.body}`)
    if (res.statusCode >= 400) {
      const body = res.json() as Record<string, unknown>
      if (body.statusCode !== res.statusCode || typeof body.error !== 'string' || typeof body.message !== 'string' || body.message === ''
        || !(ERROR_CODES as readonly unknown[]).includes(body.code)) {
        throw new Error(`${g.op.method} ${url} answered ${res.statusCode} without the error body: ${res.body}`)
      }
      return
    }
    // Accepted: readable afterwards.
    if (g.op.method === 'POST' && g.op.path === '/watches' && res.statusCode === 201) {
      const id = (res.json() as { id: string }).id
      const read = await api.app.inject({ method: 'GET', url: `/watches/${id}`, headers: tenant.headers })
      if (read.statusCode !== 200 || (read.json() as { id: string }).id !== id) throw new Error(`created watch ${id} not readable: ${read.statusCode}`)
      known.wch!.push(id)
    }
    if (g.op.path === '/watches/{id}/replay' && res.statusCode === 202) {
      const id = (res.json() as { replayId: string }).replayId
      const read = await api.app.inject({ method: 'GET', url: `/watches/${g.params.id}/replays/${id}`, headers: tenant.headers })
      if (read.statusCode !== 200) throw new Error(`accepted replay ${id} not readable: ${read.statusCode}`)
    }
    if (g.op.path === '/admin/tenants' && g.op.method === 'POST' && res.statusCode === 201) {
      const { apiKey } = res.json() as { apiKey: string }
      const read = await api.app.inject({ method: 'GET', url: '/watches', headers: { authorization: `Bearer ${apiKey}` } })
      if (read.statusCode !== 200) throw new Error(`created tenant's key refused: ${read.statusCode}`)
    }
  }), { seed: SEED, numRuns: RUNS })

  const accepted = [...seenStatuses].filter(([s]) => s < 300).reduce((n, [, c]) => n + c, 0)
  t.ok(accepted > RUNS / 10, `a fair share was accepted (${accepted} of ${RUNS}), so the accepted paths were exercised too`)
  t.ok(known.wch!.length > 2, `watches were created by generated bodies (${known.wch!.length - 2})`)
})
