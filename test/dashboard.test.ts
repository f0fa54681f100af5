/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by puppeteer-core; no
 * browser is downloaded) against the api, subscriber and worker on a real anvil and Redis: what a
 * tenant and an operator see and do, found by the accessible names the README lists. Screenshots
 * go to .tap/dashboard/ (test artefacts, not committed).
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import { promisify } from 'node:util'
import t from 'tap'
import { pino } from 'pino'
import puppeteer from 'puppeteer-core'
import { Redis } from 'ioredis'
import { startApi } from '../src/api/server.js'
import type { EvmChain } from '../src/chains/evm/evm-chain.js'
import type { RunningRole } from '../src/roles.js'
import { redisKeys } from '../src/storage/keys.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'
import { ADMIN } from './helpers/api.js'
import { TEST_ADMIN_TOKEN, testConfig } from './helpers/config.js'
import { freePort, startAnvil, startRedis } from './helpers/processes.js'
import { CHAIN, FAST, rpc } from './helpers/subscriber-harness.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** anvil's first two default accounts; the form's evm.address_activity example watches the second. */
const ANVIL_ACCOUNTS = ['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'] as const
const SCREENSHOTS = new URL('../.tap/dashboard/', import.meta.url).pathname

await promisify(execFile)(process.execPath, [new URL('../ui/build.mjs', import.meta.url).pathname])
await mkdir(SCREENSHOTS, { recursive: true })

/** Answers 200 (or 500 while `failing`) and lets the test await the next request. */
async function startReceiver() {
  let failing = false
  const requests: string[] = []
  const answered = { 200: 0, 500: 0 }
  const waiters: Array<() => void> = []
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      requests.push(String(req.headers['webhook-id']))
      answered[failing ? 500 : 200]++
      res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' }).end(failing ? 'receiver down' : 'ok')
      for (const wake of waiters.splice(0)) wake()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    answered,
    set failing(value: boolean) { failing = value },
    nextRequest: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }),
  }
}

interface DeliveryPage { items: Array<{ id: string; status: string }> }

/** A delivery's status is recorded just after the receiver answers: asked again until it is. */
async function until<T>(read: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await read()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const redisServer = await startRedis()
const anvil = await startAnvil(['--no-mining'])
t.teardown(async () => {
  await anvil.stop()
  await redisServer.stop()
})

t.test('a tenant and an operator use the console in a browser', async (t) => {
  const receiver = await startReceiver()
  const config = testConfig({
    redisUrl: redisServer.url,
    host: '127.0.0.1',
    port: await freePort(),
    allowPrivateUrls: true,
    file: {
      chains: [{ id: CHAIN, type: 'evm', ws: [anvil.wsUrl], confirmations: 0, blockTimeMs: 1_000 }],
      // One retry a second later: a failing receiver makes a failed delivery quickly.
      delivery: { timeoutMs: 5_000, retrySchedule: ['1s'] },
      api: { rateLimitPerSecond: 1_000 },
    },
  })
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const roles: RunningRole[] = []
  t.teardown(async () => {
    for (const role of roles.reverse()) await role.close()
    await receiver.close()
  })
  roles.push(await startWorker(config, logger.child({ role: 'worker' })))
  const subscriber = await startSubscriber(config, logger.child({ role: 'subscriber' }), FAST)
  roles.push(subscriber)
  roles.push(await startApi(config, logger.child({ role: 'api' })))
  const apiUrl = `http://127.0.0.1:${config.port}`
  const redis = new Redis(redisServer.url)
  t.teardown(() => redis.quit())
  const keys = redisKeys(config.redisPrefix)
  /** Resolves once the subscriber has applied every watch change so far: a block mined after it matches a new watch. */
  async function subscriberSeesWatches(): Promise<void> {
    const runner = subscriber.chains.get(CHAIN)!
    await runner.whenLeading()
    const [last] = await redis.xrevrange(keys.watchChanges, '+', '-', 'COUNT', 1)
    await (runner.driver as EvmChain).watchSet!.whenApplied(last?.[0] ?? '0-0')
  }
  /** A real ETH transfer to anvil's second account, mined now (anvil runs without automine). */
  async function transfer(): Promise<void> {
    await rpc(anvil.url, 'eth_sendTransaction', [{ from: ANVIL_ACCOUNTS[0], to: ANVIL_ACCOUNTS[1], value: '0xde0b6b3a7640000' }])
    await rpc(anvil.url, 'evm_mine')
  }

  async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
    const response = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`)
    return (await response.json()) as T
  }
  const tenant = await api<{ apiKey: string }>('POST', '/admin/tenants', ADMIN.authorization.slice(7), { name: 'acme' })
  // More watches than one page holds, paused so that only the watch made in the browser gets blocks.
  for (let i = 0; i < 26; i++) {
    const seeded = await api<{ id: string }>('POST', '/watches', tenant.apiKey, { chain: CHAIN, type: 'evm.blocks', filter: {}, url: `${receiver.url}/${i}`, description: `seeded ${i}` })
    await api('PATCH', `/watches/${seeded.id}`, tenant.apiKey, { status: 'paused' })
  }

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    // puppeteer-core makes a fresh temporary user-data-dir per launch and removes it on close.
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.setViewport({ width: 1100, height: 800 })
  const consoleErrors: string[] = []
  const foreignRequests: string[] = []
  // Chromium logs every 4xx answer to fetch as an error; the wrong key and the bad URL above get theirs on purpose.
  const expectedHttpError = /^Failed to load resource: the server responded with a status of 4(00|01)/
  page.on('console', (message) => { if (message.type() === 'error' && !expectedHttpError.test(message.text())) consoleErrors.push(message.text()) })
  page.on('pageerror', (err) => consoleErrors.push(String(err)))
  page.on('request', (request) => { if (new URL(request.url()).origin !== apiUrl) foreignRequests.push(request.url()) })
  /** Replaces a field's value as typing would (Preact reads it from the input event). */
  const setField = (selector: string, value: string) => page.$eval(selector, (el, v) => {
    (el as HTMLInputElement).value = v
    el.dispatchEvent(new Event('input', { bubbles: true }))
  }, value)
  const shot = (name: string) => page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true })
  const aria = (name: string, role?: string) => page.locator(`::-p-aria([name="${name}"]${role ? `[role="${role}"]` : ''})`)
  const textOf = (selector: string) => page.$eval(selector, (el) => el.textContent ?? '')
  const waitForText = (selector: string, text: string) =>
    page.waitForFunction((s, x) => [...document.querySelectorAll(s)].some((el) => el.textContent?.includes(x)), {}, selector, text)

  const response = await page.goto(`${apiUrl}/`)
  t.equal(response?.status(), 200, 'GET / serves the console')
  t.match(response?.headers()['content-security-policy'], /default-src 'self'/, "the page's CSP allows only its own origin")
  t.equal(response?.headers()['set-cookie'], undefined, 'no cookie is set')

  // --- sign in: a wrong key is refused, the tenant's key accepted ---------------------------------
  await aria('API key or admin token').fill('bhk_not-a-real-key')
  await aria('Sign in', 'button').click()
  await waitForText('[role=alert]', 'not accepted')
  await shot('sign-in-refused')
  t.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept')

  await aria('API key or admin token').fill(tenant.apiKey)
  await aria('Sign in', 'button').click()
  await page.waitForSelector('::-p-text(seeded 0)')
  t.equal(await page.evaluate(() => sessionStorage.getItem('blockhook.token')), tenant.apiKey, 'the key lives in sessionStorage')
  t.equal(await page.evaluate(() => document.cookie), '', 'and not in a cookie')

  // --- the watch list, in pages -----------------------------------------------------------------
  t.equal(await page.$$eval('table[aria-label=Watches] tbody tr', (rows) => rows.length), 25, 'the first page holds 25 watches')
  await aria('Next page', 'button').click()
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label=Watches] tbody tr').length === 1)
  t.match(await textOf('table[aria-label=Watches] tbody'), /seeded 25/, 'the second page holds the newest')
  await shot('watch-list')

  // --- a new watch through the form, with a validation error beside its field ---------------------
  await aria('New watch', 'button').click()
  const type = await page.waitForSelector('::-p-aria([name="Type"][role="combobox"])')
  await type!.select('evm.blocks')
  t.equal(await page.$eval('#watch-filter', (el) => (el as HTMLTextAreaElement).value), '{}', 'Filter is prefilled for the type')
  await aria('URL').fill('not a url')
  await aria('Create watch', 'button').click()
  await page.waitForSelector('#watch-url-error')
  t.match(await textOf('#watch-url-error'), /^body\/url /, "the API's message names the field")
  t.match(await page.$eval('#watch-url', (el) => el.getAttribute('aria-describedby')), /\bwatch-url-error\b/, 'and is tied to the URL field')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'watch-url', 'the keyboard is on the field to fix')
  await shot('watch-form-error')
  await setField('#watch-url', receiver.url)
  await setField('#watch-fromBlock', '-1')
  await aria('Create watch', 'button').click()
  await page.waitForSelector('#watch-fromBlock-error')
  t.match(await textOf('#watch-fromBlock-error'), /^body\/fromBlock /, 'a message about fromBlock shows beside From block')
  t.equal(await page.$('#watch-url-error'), null, 'and the fixed URL no longer shows one')
  await setField('#watch-fromBlock', '')
  await aria('Create watch', 'button').click()
  await page.waitForSelector('[data-testid=watch-status]')
  t.equal(await textOf('[data-testid=watch-status]'), 'active', 'the new watch is shown, active')
  const watchId = /#\/watches\/(wch_\w+)/.exec(page.url())?.[1]
  t.ok(watchId, 'the page is the new watch')

  // --- pause and resume ----------------------------------------------------------------------------
  await aria('Pause', 'button').click()
  await waitForText('[data-testid=watch-status]', 'paused')
  t.equal((await api<{ status: string }>('GET', `/watches/${watchId}`, tenant.apiKey)).status, 'paused', 'Pause reached the API')
  await aria('Resume', 'button').click()
  await waitForText('[data-testid=watch-status]', 'active')
  t.equal((await api<{ status: string }>('GET', `/watches/${watchId}`, tenant.apiKey)).status, 'active', 'Resume reached the API')

  // --- a delivery arrives; its attempts are shown ---------------------------------------------------
  await subscriberSeesWatches()
  const first = receiver.nextRequest()
  await rpc(anvil.url, 'evm_mine')
  await first
  const delivered = await until(async () =>
    (await api<DeliveryPage>('GET', `/watches/${watchId}/deliveries?status=delivered`, tenant.apiKey)).items[0])
  await aria('Refresh deliveries', 'button').click()
  await aria(delivered.id, 'button').click()
  await page.waitForSelector(`table[aria-label="Attempts of ${delivered.id}"] tbody tr`)
  t.match(await textOf(`table[aria-label="Attempts of ${delivered.id}"] tbody`), /200/, 'the attempt shows the receiver\'s 200')
  t.match(await textOf('[aria-label=Payload]'), /evm\.block/, 'and the payload is shown')
  await shot('watch-delivered')

  // --- a failed delivery, retried ---------------------------------------------------------------
  receiver.failing = true
  await rpc(anvil.url, 'evm_mine')
  const failed = await until(async () =>
    (await api<DeliveryPage>('GET', `/watches/${watchId}/deliveries?status=failed`, tenant.apiKey)).items[0])
  await aria('Refresh deliveries', 'button').click()
  await page.waitForSelector(`::-p-aria([name="Delivery ${failed.id}"]) ::-p-aria([name="Retry"][role="button"])`)
  await shot('watch-failed')
  receiver.failing = false
  const retried = receiver.nextRequest()
  await page.locator(`::-p-aria([name="Delivery ${failed.id}"]) ::-p-aria([name="Retry"][role="button"])`).click()
  await retried
  t.equal(receiver.requests.at(-1), failed.id, 'Retry sent the failed delivery again')
  await until(async () => (await api<{ status: string }>('GET', `/deliveries/${failed.id}`, tenant.apiKey)).status === 'delivered' || undefined)

  // --- the chart: attempts per minute and latency, with a table as its text alternative ------------
  await aria('Refresh deliveries', 'button').click()
  const chartTotals = () => page.$$eval('table[aria-label="Deliveries per minute"] tbody tr', (rows) => rows.reduce(
    (sum, row) => ({ delivered: sum.delivered + Number(row.cells[1]!.textContent), failed: sum.failed + Number(row.cells[2]!.textContent) }),
    { delivered: 0, failed: 0 }))
  await page.waitForFunction((want) => {
    const rows = [...document.querySelectorAll('table[aria-label="Deliveries per minute"] tbody tr')] as HTMLTableRowElement[]
    return rows.reduce((n, row) => n + Number(row.cells[1]!.textContent), 0) === want
  }, {}, receiver.answered[200])
  t.same(await chartTotals(), { delivered: receiver.answered[200], failed: receiver.answered[500] },
    "the chart's table counts every attempt the receiver answered, 2xx as delivered, 500 as failed")
  t.match(await textOf('table[aria-label="Deliveries per minute"] tbody'), /\d+(\.\d)? (ms|s)/, 'with the latency of the deliveries')
  t.match(await page.$eval('svg[aria-label^="Delivery attempts per minute"]', (el) => el.getAttribute('aria-label')),
    new RegExp(`${receiver.answered[200]} delivered, ${receiver.answered[500]} failed`), 'the chart image says the same in its name')
  await aria(delivered.id, 'button').click() // closed again, so the screenshot shows the retried one
  await page.$eval(`::-p-aria([name="Delivery ${failed.id}"]) button[aria-expanded]`, (el) => (el as HTMLButtonElement).click())
  await page.waitForSelector(`table[aria-label="Attempts of ${failed.id}"] tbody tr`)
  await shot('watch')

  // --- a watch made for the live tail: no URL, one webhook per block, ordered -----------------------
  await page.evaluate(() => { location.hash = '#/watches' })
  await aria('New watch', 'button').click()
  const liveType = await page.waitForSelector('::-p-aria([name="Type"][role="combobox"])')
  await liveType!.select('evm.address_activity')
  const batch = await page.waitForSelector('::-p-aria([name="Batch"][role="combobox"])')
  await batch!.select('block')
  await aria('Ordered', 'checkbox').click()
  await aria('Description').fill('live tail')
  await aria('Create watch', 'button').click()
  await waitForText('h2', 'live tail')
  const liveWatchId = /#\/watches\/(wch_\w+)/.exec(page.url())![1]!
  t.match(await api('GET', `/watches/${liveWatchId}`, tenant.apiKey), { batch: 'block', ordered: true, url: undefined }, 'batch and ordered reached the API')
  t.match(await textOf('main dl'), /one webhook per block · ordered/, 'and the watch page shows them')

  // --- the live tail updates without a reload -------------------------------------------------------
  await aria('Live events of this watch', 'link').click()
  await waitForText('[role=status]', 'Stream connected')
  await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true })
  await subscriberSeesWatches()
  const liveRows = () => page.$$eval('ol[aria-label="Live events"] li', (rows) => rows.length)
  await transfer()
  await page.waitForSelector('ol[aria-label="Live events"] li')
  t.match(await textOf('ol[aria-label="Live events"] li'), new RegExp(`evm\\.batch · ${liveWatchId} · evt_\\w+ · block \\d+ · 1 event`), 'the matched transfer appears in the tail')
  t.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'without a reload')
  await shot('live-events')

  await aria('Pause live events', 'checkbox').click()
  await transfer()
  await waitForText('[role=status]', '1 new event held while paused')
  t.equal(await liveRows(), 1, 'paused: the next event is held, not shown')
  await aria('Pause live events', 'checkbox').click()
  await page.waitForFunction(() => document.querySelectorAll('ol[aria-label="Live events"] li').length === 2)
  t.pass('resumed: the held event is shown')

  await aria('Event type').fill('evm.activity')
  await page.waitForFunction(() => document.querySelectorAll('ol[aria-label="Live events"] li').length === 0)
  t.match(await textOf('main'), /0 of 2 shown/, 'the type filter hides other types')
  await setField('input[list=event-types]', 'evm.batch')
  await page.waitForFunction(() => document.querySelectorAll('ol[aria-label="Live events"] li').length === 2)
  t.pass('and shows the type asked for')

  // --- the operator view ----------------------------------------------------------------------
  await aria('Sign out', 'button').click()
  await aria('API key or admin token').fill(TEST_ADMIN_TOKEN)
  await aria('Sign in', 'button').click()
  await page.waitForSelector('table[aria-label=Chains] tbody tr')
  t.match(await textOf('table[aria-label=Chains] tbody'), new RegExp(`${CHAIN}\\s*evm`), 'chains are listed')
  await waitForText('table[aria-label=Tenants] tbody', 'acme')
  t.match(await textOf('main'), /Redis memory\s*[\d.]+ MiB used/, 'Redis memory is shown')
  await aria('Tenant name').fill('globex')
  await aria('Create tenant', 'button').click()
  await waitForText('[role=status]', 'shown once: bhk_')
  await waitForText('table[aria-label=Tenants] tbody', 'globex')
  t.match(await textOf('main'), /Queues\s*waiting \d+, active \d+, delayed \d+, failed \d+/, 'queue depths are shown')
  await aria('New API key for globex', 'button').click()
  await waitForText('[role=status]', 'New API key for ten_')
  const added = /shown once: (bhk_\S+)/.exec(await textOf('[role=status]'))![1]!
  const prefix = added.slice(0, 12)
  await aria(`Revoke key ${prefix}`, 'button').click()
  await waitForText('[role=status]', `Key ${prefix}… revoked.`)
  await page.waitForFunction((p) => !document.querySelector('table[aria-label=Tenants] tbody')?.textContent?.includes(p), {}, prefix)
  t.equal((await fetch(`${apiUrl}/watches`, { headers: { authorization: `Bearer ${added}` } })).status, 401, 'a revoked key is refused')
  await shot('operator')

  t.same(consoleErrors, [], 'no console errors')
  t.same(foreignRequests, [], 'no request to another host')
})
