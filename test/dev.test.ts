/**
 * `blockhook dev` as a new user meets it: run as its own process, it prints an API URL and key;
 * a watch registered there with a transfer on its chain brings a webhook that standardwebhooks
 * verifies; SIGTERM stops it with exit code 0 and leaves none of its processes behind.
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { createPublicClient, createWalletClient, http, type Hash } from 'viem'
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { freePort } from './helpers/processes.js'

const require = createRequire(import.meta.url)
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href
const CLI = pathToFileURL(new URL('../src/cli.ts', import.meta.url).pathname).href
/** An address of the test's own: dev's demo sends its transfers elsewhere. */
const RECIPIENT = privateKeyToAddress(generatePrivateKey())
/** Transfers sent, one every other block, until the subscriber (which learns of new watches within 1 s) reports one. */
const MAX_TRANSFERS = 20

interface Received {
  body: string
  headers: IncomingHttpHeaders
}

/** A receiver on loopback that keeps each request's raw body, as a verifier needs it. */
async function startReceiver() {
  const received: Received[] = []
  const waiters: Array<() => void> = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: request.headers })
      response.writeHead(204).end()
      for (const wake of waiters.splice(0)) wake()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

function devProcess(cwd: string, env: NodeJS.ProcessEnv) {
  return spawn(process.execPath, [
    '--import', TSX_LOADER, '--input-type=module',
    '-e', `import { main } from ${JSON.stringify(CLI)}; await main(['dev'])`,
  ], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
}

function childPids(parentPid: number): Array<{ pid: number; command: string }> {
  const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(parentPid)], { encoding: 'utf8' })
  return out.trim().split('\n').filter(Boolean).map((line) => {
    const [pid, command] = line.trim().split(/\s+/, 2)
    return { pid: Number(pid), command: command ?? '' }
  })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('blockhook dev delivers a verified webhook for a transfer and stops cleanly', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'blockhook-dev-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const receiver = await startReceiver()
  t.teardown(receiver.close)

  // Nothing listens on this port, so dev must start (and later stop) its own redis-server.
  const unusedRedisPort = await freePort()
  const dev = devProcess(cwd, {
    ...process.env, REDIS_URL: `redis://127.0.0.1:${unusedRedisPort}`, PORT: '0', LOG_LEVEL: 'warn',
  })
  t.teardown(() => { if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL') })
  const exited = once(dev, 'exit') as Promise<[number | null, string | null]>

  let output = ''
  const banner = await new Promise<{ apiUrl: string; apiKey: string; rpcUrl: string }>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const apiUrl = /^\s*API\s+(http:\/\/\S+)/m.exec(output)?.[1]
      const apiKey = /^\s*API key\s+(bhk_\S+)/m.exec(output)?.[1]
      const rpcUrl = /^\s*chain\s+local\s+RPC\s+(http:\/\/\S+)/m.exec(output)?.[1]
      if (apiUrl && apiKey && rpcUrl) resolve({ apiUrl, apiKey, rpcUrl })
    }
    dev.stdout!.on('data', onData)
    dev.stderr!.on('data', onData)
    void exited.then(([code]) => reject(new Error(`blockhook dev exited with ${code} before it was ready:\n${output}`)))
  })
  t.match(output, /admin token\s+\S{32,}/, 'prints the admin token')
  const demoVerified = new Promise<void>((resolve) => {
    const check = () => { if (/✓ verified evm\.activity/.test(output)) resolve() }
    check()
    dev.stdout!.on('data', check)
  })

  // Only what dev itself starts: the tsx loader this test runs it with has a child of its own.
  const children = childPids(dev.pid!).filter((c) => c.command === 'anvil' || c.command === 'redis-server')
  t.same(children.map((c) => c.command).sort(), ['anvil', 'redis-server'], 'runs its own anvil and redis-server')

  const created = await fetch(`${banner.apiUrl}/watches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${banner.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      chain: 'local', type: 'evm.address_activity', filter: { addresses: [RECIPIENT] }, url: receiver.url,
    }),
  })
  t.equal(created.status, 201, 'the printed key registers a watch with a loopback URL')
  const watch = await created.json() as { id: string; secret: string }

  const transport = http(banner.rpcUrl)
  const chainClient = createPublicClient({ chain: foundry, transport })
  const wallet = createWalletClient({ chain: foundry, transport })
  // Not the first account, which dev's demo sends from.
  const sender = (await wallet.getAddresses())[3]
  const sent: Hash[] = []
  /** Resolves once the chain is past `number`; stops polling when `signal` aborts. */
  const blockAfter = (number: bigint, signal: AbortSignal) => new Promise<void>((resolve) => {
    const unwatch = chainClient.watchBlockNumber({
      pollingInterval: 100,
      onBlockNumber: (latest) => { if (latest > number) done() },
    })
    const done = () => {
      unwatch()
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
  for (let i = 0; i < MAX_TRANSFERS && receiver.received.length === 0; i++) {
    const hash = await wallet.sendTransaction({ account: sender!, to: RECIPIENT, value: 1000n + BigInt(i) })
    sent.push(hash)
    const receipt = await chainClient.waitForTransactionReceipt({ hash, pollingInterval: 100 })
    // A watch the subscriber has not learnt of yet misses this transfer: then send another.
    const stopWaiting = new AbortController()
    await Promise.race([receiver.next(), blockAfter(receipt.blockNumber + 1n, stopWaiting.signal)])
    stopWaiting.abort()
  }
  const [first] = receiver.received
  t.ok(first, `a webhook arrived within ${sent.length} transfers`)
  const event = new Webhook(watch.secret).verify(first!.body, first!.headers as Record<string, string>) as {
    type: string
    data: { watchId: string; chain: string; activity: { category: string; to: string; transactionHash: string } }
  }
  t.equal(event.type, 'evm.activity')
  t.equal(event.data.watchId, watch.id)
  t.equal(event.data.chain, 'local')
  t.equal(event.data.activity.category, 'external')
  t.equal(event.data.activity.to.toLowerCase(), RECIPIENT.toLowerCase())
  t.ok(sent.includes(event.data.activity.transactionHash as Hash), 'it reports one of the transfers sent')

  await demoVerified
  t.pass("dev's own demo transfer showed up verified in its inbox")

  dev.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0, `exits 0 on SIGTERM (signal ${signal})`)
  if (code !== 0) t.comment(output.slice(-4000))
  for (const child of children) t.notOk(isAlive(child.pid), `${child.command} (${child.pid}) is gone`)
})

t.test('without a Redis and without redis-server, dev says how to install it in one line and exits 1', async (t) => {
  // node is started by its absolute path; the PATH, an empty directory, finds no redis-server.
  const cwd = mkdtempSync(join(tmpdir(), 'blockhook-dev-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const dev = devProcess(cwd, { ...process.env, PATH: cwd, REDIS_URL: `redis://127.0.0.1:${await freePort()}` })
  let stderr = ''
  dev.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  dev.stdout!.resume()
  const [code] = await once(dev, 'exit') as [number | null]
  t.equal(code, 1)
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr.trim()}`)
  t.match(stderr, /apt-get install redis-server.*brew install redis/)
})
