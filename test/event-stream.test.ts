/**
 * GET /events/stream against a listening api, a subscriber on a real anvil and a real Redis,
 * with `ws` clients: every refusal before the upgrade, subprotocol auth, tenant isolation,
 * signed messages in sequence order, resuming without gaps or repeats, and the close codes.
 */
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import type { Address } from 'viem'
import { ADMIN, buildTestApi, createTenant } from './helpers/api.js'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { send } from './helpers/contracts.js'
import { runCli } from './helpers/spawn-cli.js'
import { CHAIN, harness, sprayBlock, startTokenChain } from './helpers/subscriber-harness.js'
import { StreamClient, type StreamMessage } from './helpers/stream-client.js'

const BOB = '0x00000000000000000000000000000000000000b0' as Address

const { redisServer, anvil, clients, token, transferWatch } = await startTokenChain(t, 10n ** 24n)
const h = harness(t, redisServer.url, { ws: [anvil.wsUrl], http: anvil.url })
const shared = { redisPrefix: h.config.redisPrefix, chains: h.config.chains }
const { app } = await buildTestApi(t, redisServer.url, {
  ...shared,
  stream: { retentionMs: 24 * 3600_000, maxConnectionsPerTenant: 4, maxBufferedBytes: 8 * 1024 * 1024 },
  allowedOrigins: ['https://console.example'],
}, { streamTiming: { pingIntervalMs: 100, pongTimeoutMs: 3_000 } })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
const wsBase = address.replace(/^http/, 'ws')
const sub = await h.startSubscriber()
const chain = await h.leader(sub)

const acme = await createTenant(app, 'acme')
const other = await createTenant(app, 'other')

async function createWatch(headers: Record<string, string>) {
  const res = await app.inject({
    method: 'POST', url: '/watches', headers,
    payload: { chain: CHAIN, type: transferWatch.type, filter: transferWatch.filter, url: 'https://example.com/hook', confirmations: 0 },
  })
  if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${res.body}`)
  const watch = res.json() as { id: string; secret: string }
  await chain.watchSet!.whenApplied(await h.feedPosition())
  return watch
}
const acmeWatch = await createWatch(acme.headers)
const otherWatch = await createWatch(other.headers)

function connect(query = '', options: ConstructorParameters<typeof StreamClient>[1] = { headers: acme.headers }, base = wsBase) {
  const client = new StreamClient(`${base}/events/stream${query}`, options)
  t.teardown(() => { client.ws.terminate() })
  return client
}

/** Sends `count` transfers in one block (mined now); resolves once the subscriber queued it. */
async function transfers(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await send(clients, token, 'TestToken', 'transfer', [BOB, BigInt(i + 1)])
  const block = await h.mine()
  await h.caughtUp(sub, block)
}

const openStreams = (tenantId: string) => h.redis.zcard(h.keys.tenantStreamConnections(tenantId))

/** A closed stream frees its slot just after the client sees the close; the count is read until it has. */
async function slotsFreed(): Promise<void> {
  while (await openStreams(acme.id) > 0) await new Promise((resolve) => setTimeout(resolve, 10))
}

function payloadOf(m: StreamMessage) {
  return JSON.parse(m.body) as { type: string; data: { watchId: string; sequence: number } }
}

t.test('refused before the upgrade: no key, a wrong key, a foreign origin, another tenant\'s watch, a bad cursor', async (t) => {
  t.equal(await connect('', {}).refused, 401)
  t.equal(await connect('', { headers: { authorization: 'Bearer bhk_wrong' } }).refused, 401)
  t.equal(await connect('', { protocols: ['bearer.' + acme.apiKey] }).refused, 401, 'bearer subprotocol without blockhook.v1')
  t.equal(await connect('', { headers: { ...acme.headers, origin: 'https://evil.example' } }).refused, 403)
  t.equal(await connect(`?watch=${otherWatch.id}`).refused, 404)
  t.equal(await connect(`?watch=${acmeWatch.id}&watch=${otherWatch.id}`).refused, 404)
  t.equal(await connect('?after=yesterday').refused, 400)
  const plain = await fetch(`${address}/events/stream`, { headers: acme.headers })
  t.equal(plain.status, 426, 'a plain GET is told to upgrade')
})

t.test('allowed origins and subprotocol authentication', async (t) => {
  const own = connect('', { headers: { ...acme.headers, origin: address } })
  await own.opened
  const listed = connect('', { protocols: ['blockhook.v1', `bearer.${acme.apiKey}`], origin: 'https://console.example' })
  await listed.opened
  t.equal(listed.ws.protocol, 'blockhook.v1', 'the server answers blockhook.v1 only')
  await Promise.all([own.close(), listed.close()])
})

t.test('signed messages in sequence order, only the tenant\'s own, resumed without gaps or repeats', async (t) => {
  const first = connect()
  const filtered = connect(`?watch=${acmeWatch.id}`)
  const rival = connect('', { headers: other.headers })
  await Promise.all([first.opened, filtered.opened, rival.opened])
  await transfers(3)
  await Promise.all([first.received(3), filtered.received(3), rival.received(3)])
  const verifier = new Webhook(acmeWatch.secret)
  for (const m of first.messages) {
    t.equal(m.watchId, acmeWatch.id)
    t.same(verifier.verify(m.body, m.headers), JSON.parse(m.body), 'verifies with standardwebhooks')
  }
  // The mint before the watch may be matched too when the subscriber runs late: count from the first seen.
  const base = payloadOf(first.messages[0]!).data.sequence
  t.same(first.messages.map((m) => payloadOf(m).data.sequence), [base, base + 1, base + 2])
  t.same(rival.messages.map((m) => m.watchId), [otherWatch.id, otherWatch.id, otherWatch.id], 'another tenant sees only its own')
  t.same(filtered.messages.map((m) => m.cursor), first.messages.map((m) => m.cursor))
  const records = await h.records(acmeWatch.id)
  t.same(first.messages.map((m) => m.headers['webhook-id']), records.slice(-3).map((r) => r.id), 'the webhook-ids of the delivery records')

  await Promise.all([first.close(), filtered.close(), rival.close()])
  // Events matched while nobody listens, then a resume from the second message.
  await transfers(2)
  const resumed = connect(`?after=${first.messages[1]!.cursor}`)
  await resumed.received(3)
  t.same(resumed.messages.map((m) => payloadOf(m).data.sequence), [base + 2, base + 3, base + 4], 'from the cursor on, once each')
  await resumed.close()
})

t.test('1013 for a client that stops reading while 500-log blocks stream; its last cursor resumes the rest', async (t) => {
  // A second api process on the same Redis: a 1 KiB limit, and pings too rare to drop the paused client first.
  const slow = await buildTestApi(t, redisServer.url, {
    ...shared, stream: { retentionMs: 24 * 3600_000, maxConnectionsPerTenant: 4, maxBufferedBytes: 1024 },
  }, { streamTiming: { pingIntervalMs: 600_000, pongTimeoutMs: 1_200_000 } })
  const slowBase = (await slow.app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws')
  const tenant = await createTenant(app, 'slow')
  const watch = await createWatch(tenant.headers)
  const client = connect('', { headers: tenant.headers }, slowBase)
  await client.opened
  client.ws.pause()

  // Loopback socket buffers take a few MB (about 4 here) before anything waits in the api
  // process, more than one block's 750 KB: blocks follow until the api has given up on the client.
  let blocks = 0
  while (await openStreams(tenant.id) > 0) {
    if (++blocks > 40) throw new Error('40 blocks of 500 logs streamed to a client that reads nothing, and it is still open')
    await h.caughtUp(sub, await sprayBlock(anvil.url, token, BOB, 500))
  }
  client.ws.resume()
  const { code, reason } = await client.closed
  t.equal(code, 1013, 'the client sees 1013 once it reads again')
  t.match(reason, /after=<the last cursor received>/)
  t.ok(client.messages.length > 0, 'what the kernel held before the close arrives first')

  const log = (await h.redis.xrange(h.keys.tenantEventLog(tenant.id, 0), '-', '+')).map(([id]) => id)
  t.equal(log.length, blocks * 500)
  const resumed = connect(`?after=${client.messages.at(-1)!.cursor}`, { headers: tenant.headers }, slowBase)
  await resumed.received(log.length - client.messages.length)
  const all = [...client.messages, ...resumed.messages]
  t.same(all.map((m) => m.cursor), log, 'every event of the log once, in order')
  const first = payloadOf(all[0]!).data.sequence
  t.same(all.map((m) => payloadOf(m).data.sequence), log.map((_, i) => first + i), 'sequences without gaps or repeats')
  await resumed.close()
})

t.test('a client frame over 4 KiB closes with 1009', async (t) => {
  const client = connect()
  await client.opened
  client.ws.send('x'.repeat(4097))
  t.equal((await client.closed).code, 1009)
})

t.test('a cursor older than the retention closes with 4410 and a reason', async (t) => {
  const client = connect('?after=1000-0')
  const { code, reason } = await client.closed
  t.equal(code, 4410)
  t.match(reason, /retention/)
})

t.test('maxConnectionsPerTenant: one more gets 429', async (t) => {
  await slotsFreed()
  const open = [connect(), connect(), connect(), connect()]
  await Promise.all(open.map((c) => c.opened))
  t.equal(await connect().refused, 429)
  t.equal(await connect('', { headers: other.headers }).opened, undefined, 'another tenant is not counted against it')
  await Promise.all(open.map((c) => c.close()))
  await slotsFreed()
  const again = connect()
  await again.opened
  await again.close()
})

t.test('silent clients are dropped, answering ones kept', async (t) => {
  const silent = connect('', { headers: acme.headers, autoPong: false })
  const alive = connect()
  await Promise.all([silent.opened, alive.opened])
  const { code } = await silent.closed
  t.equal(code, 1006, 'terminated without a close frame')
  await alive.until(() => alive.pings >= 8)
  t.equal(alive.ws.readyState, alive.ws.OPEN, 'still open after answering every ping')
  await alive.close()
})

t.test('blockhook_stream_connections counts open streams', async (t) => {
  const client = connect()
  await client.opened
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })
  t.match(res.body, /blockhook_stream_connections [1-9]/)
  await client.close()
})


t.test('blockhook listen forwards verified requests, survives a failing receiver, exits 0 on SIGINT', async (t) => {
  const verifier = new Webhook(acmeWatch.secret)
  const verified: string[] = []
  let requests = 0
  let waiting: (() => void) | undefined
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      requests++
      // The first request fails: listen must report it and go on.
      if (requests === 1) {
        res.writeHead(500).end()
      } else {
        const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) }
        verifier.verify(Buffer.concat(chunks).toString('utf8'), headers)
        verified.push(headers['webhook-id'])
        res.writeHead(204).end()
      }
      waiting?.()
    })
  })
  receiver.listen(0, '127.0.0.1')
  await once(receiver, 'listening')
  t.teardown(() => receiver.close())
  const { port } = receiver.address() as { port: number }

  const cli = runCli(['listen', '--forward-to', `http://127.0.0.1:${port}/webhooks`, '--api', address, '--watch', acmeWatch.id], { BLOCKHOOK_API_KEY: acme.apiKey })
  const connected = new Promise<void>((resolve) => cli.child.stdout!.on('data', () => { if (cli.output().includes('Connected')) resolve() }))
  await connected
  await transfers(3)
  await new Promise<void>((resolve) => {
    waiting = () => { if (requests >= 3) resolve() }
    waiting()
  })
  t.equal(verified.length, 2, 'the requests after the failed one verify with the watch secret')
  const lines = await new Promise<string[]>((resolve) => {
    const check = () => {
      const found = cli.output().split('\n').filter((l) => l.includes('evm.log'))
      if (found.length >= 3) resolve(found)
    }
    cli.child.stdout!.on('data', check)
    check()
  })
  t.match(lines[0], /500 failed/)
  t.match(lines[1], new RegExp(`evm\\.log\\s+${verified[0]}\\s+204`))
  cli.child.kill('SIGINT')
  const { code } = await cli.exited
  t.equal(code, 0)
})
