import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { got } from 'got'
import { checkWebhookUrl, createCheckedLookup, isPublicAddress, type Resolver } from '../src/domain/url-policy.js'

const refuse = { allowPrivateUrls: false }
const resolveTo = (...addresses: string[]): Resolver => async () =>
  addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))

/** A deterministic generator, so a failing address can be reproduced. */
function* randomInts(seed: number): Generator<number> {
  let x = seed
  for (;;) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    yield x
  }
}

t.test('addresses inside the operator network are refused, public unicast passes', async (t) => {
  const refused = [
    '127.0.0.1', '127.255.1.2', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '169.254.0.1',
    '100.64.0.1', '100.100.100.200', '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255', '192.0.0.192',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd00:ec2::254', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:169.254.169.254', '::ffff:10.1.2.3',
    '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '2002:a00:1::1', '::7f00:1', '2001::1',
  ]
  for (const address of refused) t.notOk(isPublicAddress(address), `${address} is refused`)
  const allowed = ['93.184.215.14', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']
  for (const address of allowed) t.ok(isPublicAddress(address), `${address} is allowed`)
  t.notOk(isPublicAddress('not an address'))
})

t.test('generated addresses in every refused IPv4 range, and their IPv4-mapped IPv6 forms, are refused', async (t) => {
  const ranges: Array<[string, number]> = [
    ['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['169.254.0.0', 16],
    ['100.64.0.0', 10], ['224.0.0.0', 4], ['0.0.0.0', 8],
  ]
  const random = randomInts(42)
  for (const [base, bits] of ranges) {
    const baseInt = base.split('.').reduce((n, octet) => n * 256 + Number(octet), 0)
    for (let i = 0; i < 200; i++) {
      const host = baseInt + (random.next().value % 2 ** (32 - bits))
      const octets = [24, 16, 8, 0].map((shift) => Math.floor(host / 2 ** shift) % 256)
      const v4 = octets.join('.')
      const mapped = `::ffff:${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`
      if (isPublicAddress(v4) || isPublicAddress(mapped)) {
        t.fail(`${v4} / ${mapped} in ${base}/${bits} was allowed`)
        return
      }
    }
  }
  t.pass('1,600 generated addresses refused in both forms')
})

t.test('checkWebhookUrl: scheme, length, credentials, literal hosts in every spelling, resolved names', async (t) => {
  const cases: Array<[string, string | true, Resolver?]> = [
    ['https://hooks.example.com/x', true, resolveTo('93.184.215.14')],
    ['http://93.184.215.14:8080/x', true],
    ['ftp://hooks.example.com/', 'BH_URL_SCHEME'],
    ['javascript:alert(1)', 'BH_URL_SCHEME'],
    ['not a url', 'BH_URL_INVALID'],
    [`https://hooks.example.com/${'a'.repeat(2048)}`, 'BH_URL_TOO_LONG'],
    ['https://user:pass@hooks.example.com/', 'BH_URL_CREDENTIALS'],
    ['https://user@hooks.example.com/', 'BH_URL_CREDENTIALS'],
    ['http://127.0.0.1/', 'BH_URL_PRIVATE'],
    ['http://2130706433/', 'BH_URL_PRIVATE'],
    ['http://0x7f.1/', 'BH_URL_PRIVATE'],
    ['http://0177.0.0.1/', 'BH_URL_PRIVATE'],
    ['http://[::1]/', 'BH_URL_PRIVATE'],
    ['http://[::ffff:127.0.0.1]/', 'BH_URL_PRIVATE'],
    ['http://[0:0:0:0:0:ffff:a9fe:a9fe]/', 'BH_URL_PRIVATE'],
    ['http://[fd00:ec2::254]/latest/meta-data', 'BH_URL_PRIVATE'],
    ['http://169.254.169.254/latest/meta-data', 'BH_URL_PRIVATE'],
    ['http://localhost:3000/', 'BH_URL_PRIVATE', resolveTo('127.0.0.1', '::1')],
    ['https://mixed.example.com/', 'BH_URL_PRIVATE', resolveTo('93.184.215.14', '10.0.0.5')],
    // Nothing to reach yet; the delivery-time lookup checks whatever it resolves to later.
    ['https://gone.example.com/', true, async () => { throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' }) }],
  ]
  for (const [url, expected, resolve] of cases) {
    const verdict = await checkWebhookUrl(url, { ...refuse, resolve: resolve ?? resolveTo('10.9.9.9') })
    if (expected === true) t.ok(verdict.ok, url)
    else t.match(verdict, { ok: false, code: expected }, url)
  }
  const allowed = await checkWebhookUrl('http://127.0.0.1:9/hook', { allowPrivateUrls: true })
  t.ok(allowed.ok, 'BLOCKHOOK_ALLOW_PRIVATE_URLS skips the address checks')
  t.match(await checkWebhookUrl('ftp://127.0.0.1/', { allowPrivateUrls: true }), { ok: false, code: 'BH_URL_SCHEME' }, '…but not the others')
})

t.test('createCheckedLookup yields only checked addresses, in both lookup styles', async (t) => {
  const lookup = createCheckedLookup({ ...refuse, resolve: resolveTo('10.0.0.1', '93.184.215.14', '2606:4700:4700::1111') })
  const one = await new Promise<[unknown, unknown, unknown]>((resolve) => lookup('x.example', {}, (err, address, family) => resolve([err, address, family])))
  t.same(one, [null, '93.184.215.14', 4])
  const all = await new Promise<unknown>((resolve) => lookup('x.example', { all: true }, (_err, addresses) => resolve(addresses)))
  t.same(all, [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700:4700::1111', family: 6 }])
  const v6 = await new Promise<unknown>((resolve) => lookup('x.example', { family: 6 }, (_err, address) => resolve(address)))
  t.equal(v6, '2606:4700:4700::1111')

  const privateOnly = createCheckedLookup({ ...refuse, resolve: resolveTo('127.0.0.1') })
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => privateOnly('x.example', {}, (e) => resolve(e)))
  t.equal(err?.code, 'BH_URL_PRIVATE')
})

t.test('with got, a name that re-resolves to a private address after the check is refused at connection time', async (t) => {
  const server = createServer((_req, res) => res.end('reached'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo

  // DNS rebinding: the first answer (at the check) is public, later ones are loopback.
  let answers = 0
  const rebinding: Resolver = async () => (answers++ === 0 ? resolveTo('93.184.215.14') : resolveTo('127.0.0.1'))('')
  const url = `http://rebind.example:${port}/hook`
  t.ok((await checkWebhookUrl(url, { ...refuse, resolve: rebinding })).ok, 'the check at save time passes')
  const refused = await got.post(url, { dnsLookup: createCheckedLookup({ ...refuse, resolve: rebinding }), retry: { limit: 0 }, timeout: { request: 5000 } })
    .then(() => undefined, (e: { code?: string }) => e)
  t.equal(refused?.code, 'BH_URL_PRIVATE', 'the connection is refused')

  const allowed = await got.post(url, { dnsLookup: createCheckedLookup({ allowPrivateUrls: true, resolve: resolveTo('127.0.0.1') }), retry: { limit: 0 }, timeout: { request: 5000 } })
  t.equal(allowed.body, 'reached', 'the same lookup connects when private URLs are allowed')
})
