/**
 * blockhook on a real three-master Redis Cluster (REDIS_CLUSTER=true): the api, the subscriber
 * and two workers as separate processes, a real anvil with an ERC-20 token, several watches (one
 * ordered). Every event reaches its URL once under its webhook-id, signed; blockhook's keys sit
 * on every master, and every master serves a share of the commands.
 */
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import type { Address } from 'viem'
import { ACCOUNTS, anvilClients, deploy, send } from './helpers/contracts.js'
import { TEST_ADMIN_TOKEN } from './helpers/config.js'
import { freePort, startAnvil } from './helpers/processes.js'
import { commandStats, startRedisCluster } from './helpers/redis-cluster.js'
import { runCli, type CliRun } from './helpers/spawn-cli.js'
import { rpc, sprayBlock } from './helpers/subscriber-harness.js'

const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'
const BOB = '0x00000000000000000000000000000000000000b0' as Address
const WATCHES = 4
const BLOCKS = 3
const TRANSFERS_PER_BLOCK = 10

const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())
const anvil = await startAnvil(['--no-mining'])
t.teardown(() => anvil.stop())
const clients = anvilClients(anvil.url)
const token = await deploy(clients, 'TestToken', async () => { await rpc(anvil.url, 'evm_mine') })
await send(clients, token, 'TestToken', 'mint', [ACCOUNTS[0], 10n ** 24n])
await rpc(anvil.url, 'evm_mine')

// The receiver: every request by path (one per watch), in arrival order.
const received: { path: string; headers: Record<string, string>; body: string }[] = []
let onRequest = () => {}
const receiver = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk: Buffer) => { body += chunk.toString() })
  req.on('end', () => {
    received.push({ path: req.url ?? '', headers: req.headers as Record<string, string>, body })
    res.writeHead(204).end()
    onRequest()
  })
})
receiver.listen(0, '127.0.0.1')
await once(receiver, 'listening')
t.teardown(() => receiver.close())
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`

const configPath = join(tmpdir(), `blockhook-cluster-${process.pid}.json`)
await writeFile(configPath, JSON.stringify({ chains: [{ id: 'local', type: 'evm', ws: [anvil.wsUrl], confirmations: 0, blockTimeMs: 1_000 }] }))
const port = await freePort()
const api = `http://127.0.0.1:${port}`
const env = {
  REDIS_CLUSTER: 'true', REDIS_URL: cluster.urls.join(','), BLOCKHOOK_ADMIN_TOKEN: TEST_ADMIN_TOKEN, BLOCKHOOK_CONFIG: configPath,
  BLOCKHOOK_ALLOW_PRIVATE_URLS: 'true', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn',
}
const roles: CliRun[] = [runCli(['api'], env), runCli(['subscriber'], env), runCli(['worker'], env), runCli(['worker'], env)]
t.teardown(async () => {
  for (const role of roles) role.child.kill('SIGTERM')
  await Promise.all(roles.map((role) => role.exited))
})

async function call<T>(method: string, path: string, headers: Record<string, string>, body?: object): Promise<{ status: number; json: T }> {
  const res = await fetch(`${api}${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, json: (await res.json()) as T }
}
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

/** Resolves once `check` holds, looking again at each event `subscribe` reports (or every 100 ms for state only the API shows). */
async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  // Before tap's own timeout: say what the roles printed (a wait here means something broke).
  const giveUpAt = Date.now() + 60_000
  for (;;) {
    if (Date.now() > giveUpAt) throw new Error(`still waiting for ${what} (${received.length} webhooks so far):\n${roles.map((r) => r.output()).join('\n')}`)
    if (roles.some((role) => role.child.exitCode !== null)) throw new Error(`a role exited while waiting for ${what}: ${roles.map((r) => r.output()).join('\n')}`)
    if (await check()) return
    await new Promise<void>((resolve) => { onRequest = resolve; setTimeout(resolve, 100).unref() })
  }
}

await until(async () => (await fetch(`${api}/readyz`).then((r) => r.status, () => 0)) === 200, 'the api')
await until(async () => {
  const { json } = await call<{ chains: { id: string; head: { number: number | null } }[] }>('GET', '/admin/status', admin)
  return json.chains?.[0]?.head.number !== null && json.chains?.[0]?.head.number !== undefined
}, 'the subscriber to see the chain')

const commandCalls = async () => Promise.all(cluster.masters.map(async (master) =>
  [...(await commandStats(master)).values()].reduce((sum, { calls }) => sum + calls, 0)))
const callsBefore = await commandCalls()

t.test('the api, the subscriber and two workers apart, on three masters', async (t) => {
  const tenant = await call<{ id: string; apiKey: string }>('POST', '/admin/tenants', admin, { name: 'acme' })
  t.equal(tenant.status, 201, 'a tenant is created')
  const auth = { authorization: `Bearer ${tenant.json.apiKey}` }
  const watches: { id: string; secret: string; ordered: boolean }[] = []
  for (let i = 0; i < WATCHES; i++) {
    const ordered = i === 0
    const res = await call<{ id: string; secret: string }>('POST', '/watches', auth, {
      chain: 'local', type: 'evm.logs', filter: { address: token, topics: [TRANSFER_TOPIC] }, url: `${receiverUrl}/w${i}`, confirmations: 0,
      ...(ordered ? { ordered: true } : {}),
    })
    t.equal(res.status, 201, `watch ${i} is created${ordered ? ' (ordered)' : ''}`, { body: res.json })
    watches.push({ ...res.json, ordered })
  }

  for (let b = 0; b < BLOCKS; b++) await sprayBlock(anvil.url, token, BOB, TRANSFERS_PER_BLOCK)
  const expected = WATCHES * BLOCKS * TRANSFERS_PER_BLOCK
  await until(() => new Set(received.map((r) => r.headers['webhook-id'])).size >= expected, `${expected} webhooks`)

  const ids = received.map((r) => r.headers['webhook-id'])
  t.equal(new Set(ids).size, expected, `${expected} events, each under its own webhook-id`)
  t.equal(ids.length, expected, 'none delivered twice')
  for (const [i, watch] of watches.entries()) {
    const mine = received.filter((r) => r.path === `/w${i}`)
    t.equal(mine.length, BLOCKS * TRANSFERS_PER_BLOCK, `watch ${i} got every event of its filter`)
    const verifier = new Webhook(watch.secret)
    t.ok(mine.every((r) => verifier.verify(r.body, r.headers)), `watch ${i}: every webhook verifies with its secret`)
    if (watch.ordered) {
      const sequences = mine.map((r) => (JSON.parse(r.body) as { data: { sequence: number } }).data.sequence)
      t.same(sequences, [...sequences].sort((a, b) => a - b), 'the ordered watch is delivered in sequence order')
    }
  }

  const keysPerMaster = await Promise.all(cluster.masters.map(async (master) => (await master.scan('0', 'MATCH', '{blockhook*', 'COUNT', 10_000))[1].length))
  t.comment(`blockhook keys per master (one SCAN page): ${keysPerMaster.join(', ')}`)
  t.ok(keysPerMaster.every((n) => n > 0), 'every master holds blockhook keys')
  const callsAfter = await commandCalls()
  const deltas = callsAfter.map((calls, i) => calls - callsBefore[i]!)
  const total = deltas.reduce((sum, n) => sum + n, 0)
  t.comment(`commands per master while delivering ${expected} webhooks: ${deltas.map((n) => `${n} (${Math.round((100 * n) / total)} %)`).join(', ')}`)
  t.ok(deltas.every((n) => n > 0), 'every master served commands')
})
