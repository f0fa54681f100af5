/**
 * Bearer authentication (README, "API tour"): tenant API keys for /watches and /deliveries, the admin token
 * for /admin and /metrics. Both run as `onRequest` hooks, before the body is read, so an
 * unauthenticated client learns nothing about what it sent. Tenant requests are then counted
 * against their key's rate limit.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { unauthorized } from '../domain/errors.js'
import type { TenantStore } from '../storage/tenant-store.js'
import type { RateLimiter } from './rate-limit.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated tenant; set by `tenantAuth` on every tenant-scoped route. */
    tenantId: string
  }
}

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/

export function bearerToken(request: FastifyRequest): string | undefined {
  return BEARER.exec(request.headers.authorization ?? '')?.[1]
}

export function tenantAuth(tenants: TenantStore, rateLimiter: RateLimiter): onRequestAsyncHookHandler {
  return async function authenticateTenant(request) {
    const token = bearerToken(request)
    const found = token ? await tenants.authenticate(token) : undefined
    if (!found) throw unauthorized()
    await rateLimiter.take(found.keyHash)
    request.tenantId = found.tenantId
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Compares digests, which have equal lengths, so neither content nor length leaks by timing. */
export function adminAuth(adminToken: string): onRequestAsyncHookHandler {
  const expected = digest(adminToken)
  return async function authenticateAdmin(request) {
    const token = bearerToken(request)
    if (!token || adminToken === '' || !timingSafeEqual(digest(token), expected)) throw unauthorized()
  }
}
