import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedisServer } from '../src/dev/child-processes.js'
import { freePort, startAnvil, startRedis } from './helpers/processes.js'
import { runCli, type CliRun } from './helpers/spawn-cli.js'

const TOKEN = 'an-admin-token-of-at-least-32-characters'

/** Runs `blockhook <args>` on a config file and resolves once its API listens (no port polling). */
async function startListening(t: Test, args: string[], configPath: string, redisUrl: string, port: number): Promise<CliRun> {
  const run = runCli(args, {
    BLOCKHOOK_CONFIG: configPath, BLOCKHOOK_ADMIN_TOKEN: TOKEN, REDIS_URL: redisUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info',
  })
  t.teardown(() => { if (run.child.exitCode === null) run.child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    const onData = () => { if (/Server listening/.test(run.output())) resolve() }
    run.child.stdout!.on('data', onData)
    run.exited.then(({ code }) => reject(new Error(`exited ${code} before listening:\n${run.output()}`)))
  })
  return run
}

t.test('without a known command it prints the usage and exits 2', async (t) => {
  const { code, stderr } = await runCli(['serve'], {}).exited
  t.equal(code, 2)
  t.match(stderr, /^usage: blockhook <all\|api\|subscriber\|worker\|dev\|listen>/)
})

t.test('blockhook api serves the API from a config file and exits 0 on SIGTERM', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = mkdtempSync(join(tmpdir(), 'blockhook-cli-'))
  const configPath = join(dir, 'blockhook.config.json')
  writeFileSync(configPath, JSON.stringify({ chains: [{ id: 'eth', type: 'evm', ws: ['wss://node.example/key'] }] }))
  const port = await freePort()
  const run = await startListening(t, ['api'], configPath, redis.url, port)
  const base = `http://127.0.0.1:${port}`
  t.equal((await fetch(`${base}/healthz`)).status, 200)
  t.equal((await fetch(`${base}/readyz`)).status, 200)
  const created = await fetch(`${base}/admin/tenants`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli' }),
  })
  t.equal(created.status, 201)
  const { apiKey } = await created.json() as { apiKey: string }
  const watch = await fetch(`${base}/watches`, {
    method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ chain: 'eth', type: 'evm.blocks', filter: {}, url: 'http://127.0.0.1/hook' }),
  })
  t.equal(watch.status, 400, 'private URLs are refused by default')

  run.child.kill('SIGTERM')
  const { code } = await run.exited
  t.equal(code, 0, 'SIGTERM exits 0')
  t.notMatch(run.output(), apiKey, 'the API key is never logged')
  t.notMatch(run.output(), TOKEN, 'the admin token is never logged')
  t.match(run.output(), /BLOCKHOOK_ENCRYPTION_KEY is not set/, 'a missing encryption key is warned about at start')
})

t.test('blockhook all answers /readyz 503 naming the chain while its node cannot be reached', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = mkdtempSync(join(tmpdir(), 'blockhook-cli-'))
  const configPath = join(dir, 'blockhook.config.json')
  const deadNode = await freePort() // nothing listens there
  writeFileSync(configPath, JSON.stringify({ chains: [{ id: 'unreachable', type: 'evm', ws: [`ws://127.0.0.1:${deadNode}/secret-key`] }] }))
  const port = await freePort()
  const run = await startListening(t, ['all'], configPath, redis.url, port)

  const base = `http://127.0.0.1:${port}`
  t.equal((await fetch(`${base}/healthz`)).status, 200)
  const ready = await fetch(`${base}/readyz`)
  t.equal(ready.status, 503)
  const body = await ready.json() as { message: string }
  t.match(body.message, /unreachable/, 'the reason names the chain')
  t.notMatch(body.message, /secret-key/, 'and never the node URL path')
  t.match(run.output(), /appendonly/, 'a Redis without AOF is warned about at start')

  run.child.kill('SIGTERM')
  t.equal((await run.exited).code, 0)
})

t.test('blockhook all through a Redis SIGKILL and restart: every line it writes is a JSON log line, and it exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blockhook-cli-'))
  let redis = await startRedisServer({ dir })
  t.teardown(() => redis.stop())
  const anvil = await startAnvil()
  t.teardown(() => anvil.stop())
  const configPath = join(dir, 'blockhook.config.json')
  writeFileSync(configPath, JSON.stringify({ chains: [{ id: 'local', type: 'evm', ws: [anvil.wsUrl] }] }))
  const port = await freePort()
  const run = await startListening(t, ['all'], configPath, redis.url, port)
  // The subscriber leads once its watches are loaded: its change-feed and replay readers are open.
  await outputMatches(run, /watches loaded/)

  redis.child.kill('SIGKILL')
  // Every connection fails to reconnect meanwhile, the blocking readers' included: each says so
  // in a log line (before, ioredis and BullMQ printed stacks of their own to stderr).
  await outputMatches(run, /"connection":"watch changes".*redis connection error|Unhandled error event/)
  await outputMatches(run, /"connection":"replay requests".*redis connection error|Unhandled error event/)
  redis = await startRedisServer({ dir, port: redis.port })
  while ((await fetch(`http://127.0.0.1:${port}/readyz`)).status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))

  run.child.kill('SIGTERM')
  const { code, stdout, stderr } = await run.exited
  t.equal(code, 0)
  t.equal(stderr, '', 'nothing on stderr')
  const lines = stdout.split('\n').filter((line) => line !== '')
  t.same(lines.filter((line) => !line.startsWith('{')), [], 'every line is a structured log entry')
  t.ok(lines.some((line) => /"connection":"watch changes"/.test(line)), 'the change-feed reader logs its connection errors')
})

/** Resolves once the process has printed something matching `pattern`. */
function outputMatches(run: CliRun, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pattern.test(run.output())) return
      run.child.stdout!.off('data', check)
      run.child.stderr!.off('data', check)
      resolve()
    }
    run.child.stdout!.on('data', check)
    run.child.stderr!.on('data', check)
    run.exited.then(({ code }) => reject(new Error(`exited ${code}:\n${run.output()}`)))
    check()
  })
}
