/** Watches (SPEC §3, §4), behind a tenant API key: CRUD, secrets, address lists. */
import type { ApiDeps, ApiRoutes } from '../src/api/app.js'
import {
  cursorQuery, errorResponses, limitQuery, tenantSecurity, watchIdParams, watchSchema, watchStatsSchema,
} from '../src/api/schemas.js'
import { filterError } from '../src/api/validation.js'
import {
  changeAddresses, chainSettings, checkChainSettings, checkTypeFitsChain, findChain, normalizeFilter,
} from '../src/api/watch-input.js'
import type { Commitment } from '../src/config/config.js'
import { badRequest } from '../src/domain/errors.js'
import { newId, newWebhookSecret } from '../src/domain/ids.js'
import { checkWebhookUrl } from '../src/domain/url-policy.js'
import {
  EVM_ADDRESS_PATTERN, filterSchemas, MAX_WATCH_ADDRESSES, WATCH_STATUSES, WATCH_TYPES,
  type Watch, type WatchStatus, type WatchType,
} from '../src/domain/watch-types.js'
import { watchNotFound } from '../src/storage/watch-store.js'

/** SPEC §3: the old secret keeps signing beside the new one for 24 h. */
export const SECRET_ROTATION_GRACE_MS = 24 * 60 * 60 * 1000

const url = { type: 'string', format: 'uri', maxLength: 2048, description: 'http or https; no credentials; not a private address' } as const
const confirmations = { type: 'integer', minimum: 0, maximum: 1000, description: "EVM only; default the chain's" } as const
const commitment = { enum: ['processed', 'confirmed', 'finalized'], description: "Solana only; default the chain's" } as const
const description = { type: 'string', maxLength: 1000 } as const
const metadata = { type: 'object', maxProperties: 50, additionalProperties: true, description: 'Yours, returned as given' } as const
const secretBody = { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } } } as const

/** One branch per type, picked by `type`: errors point into the right filter, and OpenAPI shows every shape. */
const createWatchBody = {
  type: 'object',
  required: ['chain', 'type', 'filter', 'url'],
  additionalProperties: false,
  properties: {
    chain: { type: 'string', maxLength: 64 },
    type: { enum: WATCH_TYPES },
    filter: { type: 'object' },
    url, confirmations, commitment, description, metadata,
  },
  discriminator: { propertyName: 'type' },
  oneOf: WATCH_TYPES.map((type) => ({
    title: type,
    properties: { type: { const: type }, filter: filterSchemas[type] },
  })),
} as const

const updateWatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    url,
    filter: { type: 'object', description: "A filter of the watch's type (see POST /watches); replaces the current one" },
    confirmations, commitment, description, metadata,
    status: { enum: ['active', 'paused'], description: '`active` also re-enables a watch blockhook disabled' },
  },
} as const

const addressList = { type: 'array', maxItems: MAX_WATCH_ADDRESSES, items: { type: 'string', pattern: EVM_ADDRESS_PATTERN } } as const

interface CreateWatchBody {
  chain: string
  type: WatchType
  filter: Watch['filter']
  url: string
  confirmations?: number
  commitment?: Commitment
  description?: string
  metadata?: Record<string, unknown>
}

type UpdateWatchBody = Partial<Omit<CreateWatchBody, 'chain' | 'type'>> & { status?: 'active' | 'paused' }

interface WatchParams { id: string }

interface ListQuery { chain?: string; type?: WatchType; status?: WatchStatus; limit: number; cursor?: string }

function toCount(text: string | undefined): number {
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : 0
}

/**
 * Removes the watch (the change feed tells subscribers to stop matching it), then cancels its
 * queued deliveries. Returns how many were cancelled.
 */
export async function deleteWatch(deps: ApiDeps, watch: Watch): Promise<number> {
  await deps.watches.delete(watch)
  return deps.deliveryQueue.cancelWatch(watch.id)
}

export const watchRoutes: ApiRoutes = async (app, { config, deps }) => {
  const common = { tags: ['watches'], security: tenantSecurity }

  async function checkUrl(text: string): Promise<void> {
    const verdict = await checkWebhookUrl(text, { allowPrivateUrls: config.allowPrivateUrls, resolve: deps.resolve })
    if (!verdict.ok) throw badRequest(verdict.code, `body/url ${verdict.reason}`)
  }

  app.post<{ Body: CreateWatchBody }>('/watches', {
    schema: {
      ...common,
      summary: 'Create a watch; the answer holds its signing secret',
      body: createWatchBody,
      response: { 201: { ...watchSchema, properties: { ...watchSchema.properties, secret: { type: 'string' } } }, ...errorResponses },
    },
  }, async (request, reply) => {
    const body = request.body
    const chain = findChain(config.chains, body.chain)
    checkTypeFitsChain(body.type, chain)
    const settings = chainSettings(body.type, chain, body)
    const filter = normalizeFilter(body.type, body.filter)
    await checkUrl(body.url)
    const now = new Date().toISOString()
    const watch = {
      id: newId('wch'),
      tenantId: request.tenantId,
      chain: chain.id,
      type: body.type,
      filter,
      url: body.url,
      status: 'active',
      ...settings,
      ...(body.description !== undefined && { description: body.description }),
      ...(body.metadata !== undefined && { metadata: body.metadata }),
      createdAt: now,
      updatedAt: now,
    } as Watch
    const secret = newWebhookSecret()
    await deps.watches.create(watch, secret)
    request.log.info({ watchId: watch.id, chain: watch.chain, type: watch.type }, 'watch created')
    return reply.code(201).send({ ...watch, secret })
  })

  app.get<{ Querystring: ListQuery }>('/watches', {
    schema: {
      ...common,
      summary: "List the tenant's watches, oldest first",
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          chain: { type: 'string', maxLength: 64 },
          type: { enum: WATCH_TYPES },
          status: { enum: WATCH_STATUSES },
          limit: limitQuery,
          cursor: { ...cursorQuery, description: 'nextCursor of the previous page' },
        },
      },
      response: {
        200: {
          type: 'object', required: ['items', 'nextCursor'],
          properties: { items: { type: 'array', items: watchSchema }, nextCursor: { type: ['string', 'null'] } },
        },
        ...errorResponses,
      },
    },
  }, async (request) => deps.watches.list(request.tenantId, request.query))

  app.get<{ Params: WatchParams }>('/watches/:id', {
    schema: {
      ...common,
      summary: 'A watch and its delivery counts',
      params: watchIdParams,
      response: {
        200: { ...watchSchema, required: [...watchSchema.required, 'stats'], properties: { ...watchSchema.properties, stats: watchStatsSchema } },
        ...errorResponses,
      },
    },
  }, async (request) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const stats = await deps.redis.hgetall(deps.keys.watchStats(watch.id))
    return {
      ...watch,
      stats: {
        matched: toCount(stats.matched),
        delivered: toCount(stats.delivered),
        failed: toCount(stats.failed),
        pending: toCount(stats.pending),
        lastDeliveredAt: stats.lastDeliveredAt || null,
      },
    }
  })

  app.patch<{ Params: WatchParams; Body: UpdateWatchBody }>('/watches/:id', {
    schema: {
      ...common,
      summary: 'Change a watch; subscribers see the change within a second',
      params: watchIdParams,
      body: updateWatchBody,
      response: { 200: watchSchema, ...errorResponses },
    },
  }, async (request) => {
    const tenantId = request.tenantId
    const body = request.body
    const current = await deps.watches.getForTenant(tenantId, request.params.id)
    checkChainSettings(current.type, body)
    let filter: Watch['filter'] | undefined
    if (body.filter !== undefined) {
      const error = filterError(current.type, body.filter)
      if (error) throw badRequest('BH_VALIDATION', error)
      filter = normalizeFilter(current.type, body.filter)
    }
    if (body.url !== undefined) await checkUrl(body.url)
    const updated = await deps.watches.update(current.id, (watch) => {
      if (watch.tenantId !== tenantId) throw watchNotFound()
      const next = { ...watch, ...body, ...(filter && { filter }), updatedAt: new Date().toISOString() } as Watch
      if (body.status === 'active') delete next.disabledReason
      return next
    })
    request.log.info({ watchId: updated.id, fields: Object.keys(body) }, 'watch updated')
    return updated
  })

  app.delete<{ Params: WatchParams }>('/watches/:id', {
    schema: {
      ...common,
      summary: 'Delete a watch',
      params: watchIdParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const cancelled = await deleteWatch(deps, watch)
    request.log.info({ watchId: watch.id, cancelled }, 'watch deleted')
    return reply.code(204).send()
  })

  app.get<{ Params: WatchParams }>('/watches/:id/secret', {
    schema: {
      ...common,
      summary: 'The secret webhooks are signed with',
      params: watchIdParams,
      response: { 200: secretBody, ...errorResponses },
    },
  }, async (request) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    return { secret: await deps.watches.currentSecret(watch.id) }
  })

  app.post<{ Params: WatchParams }>('/watches/:id/secret/rotate', {
    schema: {
      ...common,
      summary: 'Replace the secret; the old one keeps signing beside it for 24 hours',
      params: watchIdParams,
      response: { 200: secretBody, ...errorResponses },
    },
  }, async (request) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const secret = newWebhookSecret()
    await deps.watches.rotateSecret(watch.id, secret, SECRET_ROTATION_GRACE_MS)
    request.log.info({ watchId: watch.id }, 'watch secret rotated')
    return { secret }
  })

  app.patch<{ Params: WatchParams; Body: { add?: string[]; remove?: string[] } }>('/watches/:id/addresses', {
    schema: {
      ...common,
      summary: 'Add and remove addresses of an evm.address_activity or evm.transactions watch',
      description: `Applies to every address list the filter has (addresses; from and/or to). At most ${MAX_WATCH_ADDRESSES} addresses per watch; bodies are limited to 1 MiB, so send large lists in several requests.`,
      params: watchIdParams,
      body: {
        type: 'object', additionalProperties: false,
        properties: { add: addressList, remove: addressList },
      },
      response: {
        200: { type: 'object', required: ['count'], properties: { count: { type: 'integer', description: 'Distinct addresses the watch now holds' } } },
        ...errorResponses,
      },
    },
  }, async (request) => {
    const tenantId = request.tenantId
    let count = 0
    await deps.watches.update(request.params.id, (watch) => {
      if (watch.tenantId !== tenantId) throw watchNotFound()
      const changed = changeAddresses(watch, request.body)
      count = changed.count
      return { ...watch, filter: changed.filter, updatedAt: new Date().toISOString() } as Watch
    })
    return { count }
  })
}
