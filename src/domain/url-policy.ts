/**
 * Which webhook URLs blockhook may call (README, "Concepts"): http/https, at most 2,048 characters, no
 * credentials, and a host that neither is nor resolves to an address inside the operator's
 * network (loopback, private, link-local, multicast, unspecified, CGNAT, cloud metadata), in
 * IPv4, IPv6 and IPv6 forms that embed an IPv4 address. The API checks a URL when it is saved;
 * the delivery worker connects only through `createCheckedLookup`, so a name that re-resolves
 * to a private address after the check (DNS rebinding) is still refused at connection time.
 */
import { withTimeout } from './timeout.js'
import { lookup as systemLookup } from 'node:dns/promises'
import type { LookupAddress, LookupOptions } from 'node:dns'
import ipaddr from 'ipaddr.js'

export const MAX_WEBHOOK_URL_LENGTH = 2048
const RESOLVE_TIMEOUT_MS = 5_000

export type UrlRefusalCode =
  | 'BH_URL_INVALID'
  | 'BH_URL_SCHEME'
  | 'BH_URL_TOO_LONG'
  | 'BH_URL_CREDENTIALS'
  | 'BH_URL_PRIVATE'

export type UrlCheck =
  | { ok: true; url: URL }
  | { ok: false; code: UrlRefusalCode; reason: string }

/** Every address a host name resolves to; `dns.lookup` by default, injectable for tests. */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>

export interface UrlPolicyOptions {
  /** BLOCKHOOK_ALLOW_PRIVATE_URLS: skip the address checks (dev, tests), keep the others. */
  allowPrivateUrls: boolean
  resolve?: Resolver
}

const systemResolver: Resolver = (hostname) => systemLookup(hostname, { all: true, verbatim: true })

function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const range = address.range()
  const bytes = address.toByteArray()
  if (range === 'ipv4Mapped') return address.toIPv4Address()
  // NAT64 (64:ff9b::/96): the IPv4 address is the last 32 bits.
  if (range === 'rfc6052') return new ipaddr.IPv4(bytes.slice(12, 16))
  // 6to4 (2002::/16): the IPv4 address is bits 16–48.
  if (range === '6to4') return new ipaddr.IPv4(bytes.slice(2, 6))
  return undefined
}

/**
 * True when an address may receive webhooks: only globally routable unicast passes (an allow
 * list, so a range ipaddr.js names in a later version is refused until reviewed). The cloud
 * metadata services sit in ranges this refuses: 169.254.169.254 (link-local), fd00:ec2::254
 * (unique local), 100.100.100.200 (CGNAT), 192.0.0.192 (IETF reserved).
 */
export function isPublicAddress(text: string): boolean {
  if (!ipaddr.isValid(text)) return false
  const address = ipaddr.parse(text)
  if (address.kind() === 'ipv4') return address.range() === 'unicast'
  const v6 = address as ipaddr.IPv6
  const inner = embeddedIPv4(v6)
  if (inner) return isPublicAddress(inner.toString())
  // IPv4-compatible ::a.b.c.d (deprecated, ::/96) is not routable; ipaddr.js calls it unicast.
  if (v6.toByteArray().slice(0, 12).every((b) => b === 0)) return false
  return v6.range() === 'unicast'
}

function hostOf(url: URL): string {
  // WHATWG URL keeps IPv6 literals in brackets and has already normalised 0x7f.1 and 2130706433.
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')
}

async function resolveBounded(resolve: Resolver, hostname: string): Promise<LookupAddress[]> {
  return withTimeout(resolve(hostname), RESOLVE_TIMEOUT_MS, `resolving took longer than ${RESOLVE_TIMEOUT_MS} ms`)
}

/** The checks that need no DNS: scheme, length, credentials. */
export function checkUrlShape(text: string): UrlCheck {
  if (text.length > MAX_WEBHOOK_URL_LENGTH) {
    return { ok: false, code: 'BH_URL_TOO_LONG', reason: `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters` }
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { ok: false, code: 'BH_URL_INVALID', reason: 'is not a valid URL' }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, code: 'BH_URL_SCHEME', reason: 'must use http or https' }
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, code: 'BH_URL_CREDENTIALS', reason: 'must not contain credentials' }
  }
  if (hostOf(url) === '') return { ok: false, code: 'BH_URL_INVALID', reason: 'has no host' }
  return { ok: true, url }
}

/**
 * Decides whether `text` may be used as a webhook URL; the reason reads after the field name.
 * Every address a name resolves to must pass, so a name with one private address is refused.
 */
export async function checkWebhookUrl(text: string, options: UrlPolicyOptions): Promise<UrlCheck> {
  const shape = checkUrlShape(text)
  if (!shape.ok || options.allowPrivateUrls) return shape
  const host = hostOf(shape.url)
  if (ipaddr.isValid(host)) {
    return isPublicAddress(host)
      ? shape
      : { ok: false, code: 'BH_URL_PRIVATE', reason: `points at a private or reserved address (${host})` }
  }
  let addresses: LookupAddress[]
  try {
    addresses = await resolveBounded(options.resolve ?? systemResolver, host)
  } catch {
    // A name that does not resolve (yet, or from here) reaches nothing; refusing it would only
    // make saving a watch depend on this process's DNS. Delivery checks what it resolves to then.
    return shape
  }
  const refused = addresses.find((a) => !isPublicAddress(a.address))
  if (refused) {
    return { ok: false, code: 'BH_URL_PRIVATE', reason: `host "${host}" resolves to a private or reserved address (${refused.address})` }
  }
  return shape
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `dns.lookup`-compatible function (got's `dnsLookup`, http's `lookup`) that yields only
 * addresses passing `isPublicAddress`, so the connection goes to an address that was checked
 * in the same step that chose it. Host names only: Node does not call `lookup` for IP literals,
 * which `checkWebhookUrl` refuses up front.
 */
export function createCheckedLookup(options: UrlPolicyOptions) {
  const resolve = options.resolve ?? systemResolver
  return function checkedLookup(hostname: string, lookupOptions: LookupOptions | number | LookupCallback, maybeCallback?: LookupCallback): void {
    const callback = (typeof lookupOptions === 'function' ? lookupOptions : maybeCallback) as LookupCallback
    const opts: LookupOptions = typeof lookupOptions === 'object' ? lookupOptions : typeof lookupOptions === 'number' ? { family: lookupOptions } : {}
    resolveBounded(resolve, hostname).then(
      (all) => {
        const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : opts.family
        const usable = all
          .filter((a) => !family || a.family === family)
          .filter((a) => options.allowPrivateUrls || isPublicAddress(a.address))
        if (usable.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`${hostname} has no address that webhooks may be sent to`)
          err.code = all.length === 0 ? 'ENOTFOUND' : 'BH_URL_PRIVATE'
          callback(err, '')
          return
        }
        if (opts.all) callback(null, usable)
        else callback(null, usable[0]!.address, usable[0]!.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    )
  }
}
