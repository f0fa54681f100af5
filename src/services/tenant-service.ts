/** Tenants and their API keys; deleting a tenant deletes its watches through the watch service. */
import { tenantNotFound, type Tenant, type TenantStore } from '../storage/tenant-store.js'
import type { WatchService } from './watch-service.js'

export class TenantService {
  readonly #tenants: TenantStore
  readonly #watches: WatchService

  constructor(tenants: TenantStore, watches: WatchService) {
    this.#tenants = tenants
    this.#watches = watches
  }

  create(name: string): Promise<{ tenant: Tenant; apiKey: string }> {
    return this.#tenants.create(name)
  }

  list(): Promise<Tenant[]> {
    return this.#tenants.list()
  }

  /** Its API keys stop working first, then its watches go, then the tenant. Returns how many watches it had. */
  async delete(tenantId: string): Promise<number> {
    if (!(await this.#tenants.get(tenantId))) throw tenantNotFound()
    await this.#tenants.revokeAllApiKeys(tenantId)
    const watches = await this.#watches.deleteAllOfTenant(tenantId)
    await this.#tenants.delete(tenantId)
    return watches
  }

  addApiKey(tenantId: string): Promise<string> {
    return this.#tenants.addApiKey(tenantId)
  }

  revokeApiKey(tenantId: string, prefix: string): Promise<void> {
    return this.#tenants.revokeApiKey(tenantId, prefix)
  }
}
