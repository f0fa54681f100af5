/** Tenants and their API keys (README, "API tour"), behind the admin token. */
import type { ApiRoutes } from '../src/api/route-context.js'
import { adminSecurity, errorResponses, idParams } from '../src/api/schemas.js'
import { API_KEY_PREFIX_LENGTH } from '../src/domain/ids.js'

const tenantIdParams = idParams('id', 'ten')

const tenantSchema = {
  type: 'object',
  required: ['id', 'name', 'createdAt', 'apiKeyPrefixes'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    apiKeyPrefixes: {
      type: 'array', items: { type: 'string' },
      description: 'The first 12 characters of each API key, to revoke one with',
    },
  },
} as const

const apiKeySchema = { type: 'string', description: 'Shown only once; stored as its SHA-256' } as const

interface TenantIdParams { id: string }

export const adminTenantRoutes: ApiRoutes = async (app, { services }) => {
  const { tenants } = services
  const common = { tags: ['tenants'], security: adminSecurity }

  app.post<{ Body: { name: string } }>('/admin/tenants', {
    schema: {
      ...common,
      summary: 'Create a tenant and its first API key',
      body: {
        type: 'object', required: ['name'], additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      response: {
        201: {
          type: 'object', required: ['id', 'name', 'apiKey', 'createdAt'],
          properties: { id: { type: 'string' }, name: { type: 'string' }, apiKey: apiKeySchema, createdAt: { type: 'string', format: 'date-time' } },
        },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const { tenant, apiKey } = await tenants.create(request.body.name)
    request.log.info({ tenantId: tenant.id }, 'tenant created')
    return reply.code(201).send({ id: tenant.id, name: tenant.name, apiKey, createdAt: tenant.createdAt })
  })

  app.get('/admin/tenants', {
    schema: {
      ...common,
      summary: 'List tenants',
      response: {
        200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: tenantSchema } } },
        ...errorResponses,
      },
    },
  }, async () => ({ items: await tenants.list() }))

  app.delete<{ Params: TenantIdParams }>('/admin/tenants/:id', {
    schema: {
      ...common,
      summary: 'Delete a tenant: its API keys stop working and its watches are deleted',
      params: tenantIdParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const tenantId = request.params.id
    const watches = await tenants.delete(tenantId)
    request.log.info({ tenantId, watches }, 'tenant deleted')
    return reply.code(204).send()
  })

  app.post<{ Params: TenantIdParams }>('/admin/tenants/:id/api-keys', {
    schema: {
      ...common,
      summary: 'Add an API key to a tenant',
      params: tenantIdParams,
      response: {
        201: { type: 'object', required: ['apiKey'], properties: { apiKey: apiKeySchema } },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const apiKey = await tenants.addApiKey(request.params.id)
    request.log.info({ tenantId: request.params.id, prefix: apiKey.slice(0, API_KEY_PREFIX_LENGTH) }, 'api key added')
    return reply.code(201).send({ apiKey })
  })

  app.delete<{ Params: TenantIdParams & { prefix: string } }>('/admin/tenants/:id/api-keys/:prefix', {
    schema: {
      ...common,
      summary: 'Revoke one API key, named by its first 12 characters',
      params: {
        type: 'object', required: ['id', 'prefix'], additionalProperties: false,
        properties: {
          id: tenantIdParams.properties.id,
          prefix: { type: 'string', minLength: API_KEY_PREFIX_LENGTH, maxLength: API_KEY_PREFIX_LENGTH },
        },
      },
      response: { 204: { type: 'null', description: 'Revoked' }, ...errorResponses },
    },
  }, async (request, reply) => {
    await tenants.revokeApiKey(request.params.id, request.params.prefix)
    request.log.info({ tenantId: request.params.id, prefix: request.params.prefix }, 'api key revoked')
    return reply.code(204).send()
  })
}
