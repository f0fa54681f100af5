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
import puppeteer, { type Page } from 'puppeteer-core'
import { startApi } from '../src/api/server.js'
import type { RunningRole } from '../src/roles.js'
import { startWorker } from '../workers/delivery-worker.js'
import { startSubscriber } from '../workers/subscriber.js'
import { ADMIN } from './helpers/api.js'
import { TEST_ADMIN_TOKEN, testConfig } from './helpers/config.js'
import { freePort, startAnvil, startRedis } from './helpers/processes.js'
import { CHAIN, FAST, rpc } from './helpers/subscriber-harness.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = new URL('../.tap/dashboard/', import.meta.url).pathname

await promisify(execFile)(process.execPath, [new URL('../ui/build.mjs', import.meta.url).pathname])
await mkdir(SCREENSHOTS, { recursive: true })

/** Answers 200 (or 500 while `failing`) and lets the test await the next request. */
async function startReceiver() {
  let failing = false
  const requests: string[] = []
  const waiters: Array<() => void> = []
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      requests.push(String(req.headers['webhook-id']))
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
  roles.push(await startSubscriber(config, logger.child({ role: 'subscriber' }), FAST))
  roles.push(await startApi(config, logger.child({ role: 'api' })))
  const apiUrl = `http://127.0.0.1:${config.port}`

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
  const consoleErrors: string[] = []
  const foreignRequests: string[] = []
  // Chromium logs every 4xx answer to fetch as an error; the wrong key and the bad URL above get theirs on purpose.
  const expectedHttpError = /^Failed to load resource: the server responded with a status of 4(00|01)/
  page.on('console', (message) => { if (message.type() === 'error' && !expectedHttpError.test(message.text())) consoleErrors.push(message.text()) })
  page.on('pageerror', (err) => consoleErrors.push(String(err)))
  page.on('request', (request) => { if (new URL(request.url()).origin !== apiUrl) foreignRequests.push(request.url()) })
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
  t.match(await textOf('#watch-url-error'), /url/, "the API's message names the field")
  t.equal(await page.$eval('#watch-url', (el) => el.getAttribute('aria-describedby')), 'watch-url-error', 'and is tied to the URL field')
  await shot('watch-form-error')
  await page.$eval('#watch-url', (el) => { (el as HTMLInputElement).value = '' })
  await aria('URL').fill(receiver.url)
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
  // Mining until a block reaches the receiver: the subscriber picks a new watch up within a second.
  while (receiver.requests.length === 0) {
    const next = receiver.nextRequest()
    await rpc(anvil.url, 'evm_mine')
    await Promise.race([next, new Promise((resolve) => setTimeout(resolve, 300))])
  }
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
  await shot('operator')

  t.same(consoleErrors, [], 'no console errors')
  t.same(foreignRequests, [], 'no request to another host')
})
