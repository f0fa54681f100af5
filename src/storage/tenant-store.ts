/**
 * Tenants and their API keys. A key is stored only as its SHA-256 (docs/architecture.md, "Data and secrets"): the lookup is by
 * hash, so a request's key is never compared byte by byte with a stored key and timing reveals
 * nothing about one. A key's first 12 characters (`bhk_` + 8) name it for revocation.
 */
import type { RedisClient } from './redis.js'
import { BlockhookError } from '../domain/errors.js'
import { API_KEY_PREFIX_LENGTH, newApiKey, newId, sha256Hex } from '../domain/ids.js'
import type { RedisKeys } from './keys.js'

export interface Tenant {
  id: string
  name: string
  createdAt: string
  /** The first 12 characters of each of its API keys. */
  apiKeyPrefixes: string[]
}

/** Two keys of one tenant sharing a prefix (48 random bits) is unlikely; retrying is cheap. */
const MAX_KEY_ATTEMPTS = 5

export const tenantNotFound = () => new BlockhookError('BH_TENANT_NOT_FOUND', 'tenant not found', 404)

export class TenantStore {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis
    this.#keys = keys
  }

  async create(name: string, now = new Date()): Promise<{ tenant: Tenant; apiKey: string }> {
    const id = newId('ten')
    const apiKey = newApiKey()
    const keyHash = sha256Hex(apiKey)
    const prefix = apiKey.slice(0, API_KEY_PREFIX_LENGTH)
    const k = this.#keys
    await this.#redis
      .multi()
      .hset(k.tenant(id), { id, name, createdAt: now.toISOString() })
      .zadd(k.tenants, now.getTime(), id)
      .hset(k.apiKeys, keyHash, `${id} ${prefix}`)
      .hset(k.tenantApiKeys(id), prefix, keyHash)
      .exec()
    return { tenant: { id, name, createdAt: now.toISOString(), apiKeyPrefixes: [prefix] }, apiKey }
  }

  async get(tenantId: string): Promise<Tenant | undefined> {
    const [stored, prefixes] = await Promise.all([
      this.#redis.hgetall(this.#keys.tenant(tenantId)),
      this.#redis.hkeys(this.#keys.tenantApiKeys(tenantId)),
    ])
    if (!stored.id) return undefined
    return { id: stored.id, name: stored.name ?? '', createdAt: stored.createdAt ?? '', apiKeyPrefixes: prefixes }
  }

  /** Every tenant, oldest first. Tenants are few (one per customer), so no paging. */
  async list(): Promise<Tenant[]> {
    const ids = await this.#redis.zrange(this.#keys.tenants, '0', '-1')
    const tenants = await Promise.all(ids.map((id) => this.get(id)))
    return tenants.filter((t): t is Tenant => t !== undefined)
  }

  /** The tenant an API key belongs to, or undefined for an unknown or revoked key. */
  async authenticate(apiKey: string): Promise<{ tenantId: string; keyHash: string } | undefined> {
    const keyHash = sha256Hex(apiKey)
    const entry = await this.#redis.hget(this.#keys.apiKeys, keyHash)
    if (entry === null) return undefined
    return { tenantId: entry.slice(0, entry.indexOf(' ')), keyHash }
  }

  async addApiKey(tenantId: string): Promise<string> {
    if (!(await this.#redis.exists(this.#keys.tenant(tenantId)))) throw tenantNotFound()
    for (let attempt = 0; attempt < MAX_KEY_ATTEMPTS; attempt++) {
      const apiKey = newApiKey()
      const prefix = apiKey.slice(0, API_KEY_PREFIX_LENGTH)
      const keyHash = sha256Hex(apiKey)
      if (!(await this.#redis.hsetnx(this.#keys.tenantApiKeys(tenantId), prefix, keyHash))) continue
      await this.#redis.hset(this.#keys.apiKeys, keyHash, `${tenantId} ${prefix}`)
      return apiKey
    }
    throw new BlockhookError('BH_KEY_COLLISION', 'could not create a distinct API key, try again', 503)
  }

  async revokeApiKey(tenantId: string, prefix: string): Promise<void> {
    const keyHash = await this.#redis.hget(this.#keys.tenantApiKeys(tenantId), prefix)
    if (keyHash === null) throw new BlockhookError('BH_API_KEY_NOT_FOUND', `no API key with prefix "${prefix}"`, 404)
    await this.#redis.multi().hdel(this.#keys.apiKeys, keyHash).hdel(this.#keys.tenantApiKeys(tenantId), prefix).exec()
  }

  /** Revokes every key of the tenant at once (the first step of deleting it). */
  async revokeAllApiKeys(tenantId: string): Promise<void> {
    const k = this.#keys
    const keyHashes = await this.#redis.hvals(k.tenantApiKeys(tenantId))
    const tx = this.#redis.multi()
    if (keyHashes.length > 0) tx.hdel(k.apiKeys, ...keyHashes)
    await tx.del(k.tenantApiKeys(tenantId)).exec()
  }

  /**
   * Removes the tenant record, last: the caller revokes its keys and deletes its watches first,
   * so a deletion interrupted halfway can be repeated and finishes the job.
   */
  async delete(tenantId: string): Promise<void> {
    await this.revokeAllApiKeys(tenantId)
    await this.#redis.multi().zrem(this.#keys.tenants, tenantId).del(this.#keys.tenant(tenantId)).exec()
  }
}
