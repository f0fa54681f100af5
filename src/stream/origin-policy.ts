/**
 * Cross-site WebSocket hijacking defence: a browser always sends `Origin` on a WebSocket upgrade,
 * and a page of another site must not open a tenant's stream with credentials it holds. Clients
 * that are not browsers (the listen CLI, servers) send no Origin and are let through to the key check.
 */

/** `host` as a browser's Origin would carry it for `scheme`: without the scheme's default port. */
function withoutDefaultPort(host: string, scheme: 'http:' | 'https:'): string {
  const defaultPort = scheme === 'https:' ? ':443' : ':80'
  return host.endsWith(defaultPort) ? host.slice(0, -defaultPort.length) : host
}

/**
 * True when `origin` may open the stream: none given, the API's own (same host as the request's
 * `Host`, http or https, since TLS usually ends at a proxy), or one of `allowed` (normalized origins).
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false
  if (allowed.includes(url.origin)) return true
  if (!host) return false
  return url.host === withoutDefaultPort(host.toLowerCase(), url.protocol)
}
