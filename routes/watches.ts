/** Watches (README, "API tour" and "Concepts"), behind a tenant API key: CRUD, secrets, address lists. */
import type { ApiRoutes } from '../src/api/route-context.js'
import {
  cursorQuery, errorResponses, limitQuery, tenantSecurity, watchIdParams, watchSchema, watchStatsSchema,
} from '../src/api/schemas.js'
import { MAX_BACKFILL_DEPTH } from '../src/delivery/replay-requests.js'
import {
  EVM_ADDRESS_PATTERN, filterSchemas, MAX_WATCH_ADDRESSES, WATCH_STATUSES, WATCH_TYPES,
  type WatchStatus, type WatchType,
} from '../src/domain/watch-types.js'
import type { CreateWatchInput, UpdateWatchInput } from '../src/services/watch-service.js'

const url = { type: 'string', format: 'uri', maxLength: 2048, description: 'http or https; no credentials; not a private address' } as const
const confirmations = { type: 'integer', minimum: 0, maximum: 1000, description: "EVM only; default the chain's" } as const
const commitment = { enum: ['processed', 'confirmed', 'finalized'], description: "Solana only; default the chain's" } as const
const description = { type: 'string', maxLength: 1000 } as const
/** Yours, returned as given; bounded so that what is stored can always be returned. */
const metadata = {
  type: 'object', maxProperties: 50, additionalProperties: true, 'x-maxDepth': 8,
  description: 'Yours, returned as given: at most 50 keys, nested at most 8 levels',
} as const
const secretBody = { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } } } as const
const batch = {
  enum: ['none', 'block'],
  description: 'EVM: `block` sends one evm.batch webhook per block with matches (in parts under 256 KiB) instead of one per event; default `none`',
} as const
const ordered = {
  type: 'boolean',
  description: "At most one webhook of the watch in flight, sent in sequence order (retractions included); a failing one holds back only this watch, and once its attempts are spent it is failed and the next goes; default false",
} as const
const fromBlock = {
  type: 'integer', minimum: 0,
  description: `EVM: also deliver every match from this block on (at most ${MAX_BACKFILL_DEPTH} blocks behind the head), under the webhook-ids a live or replayed delivery has`,
} as const

const backfillReplayId = {
  type: 'string', pattern: '^rpl_',
  description: 'With fromBlock: the backfill, whose progress GET /watches/:id/replays/:replayId shows',
} as const

/** One branch per type, picked by `type`: errors point into the right filter, and OpenAPI shows every shape. */
const createWatchBody = {
  type: 'object',
  required: ['chain', 'type', 'filter'],
  additionalProperties: false,
  properties: {
    chain: { type: 'string', maxLength: 64 },
    type: { enum: WATCH_TYPES },
    filter: { type: 'object' },
    url: { ...url, description: `${url.description}. Without one the watch sends no webhooks: its events reach only the event stream` },
    confirmations, commitment, description, metadata, batch, ordered, fromBlock,
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

const watchWithStats = { ...watchSchema, required: [...watchSchema.required, 'stats'], properties: { ...watchSchema.properties, stats: watchStatsSchema } } as const

interface WatchParams { id: string }

interface ListQuery { chain?: string; type?: WatchType; status?: WatchStatus; limit: number; cursor?: string }

export const watchRoutes: ApiRoutes = async (app, { services }) => {
  const watches = services.watches
  const common = { tags: ['watches'], security: tenantSecurity }

  app.post<{ Body: CreateWatchInput }>('/watches', {
    schema: {
      ...common,
      summary: 'Create a watch; the answer holds its signing secret',
      body: createWatchBody,
      response: {
        201: { ...watchSchema, properties: { ...watchSchema.properties, secret: { type: 'string' }, replayId: backfillReplayId } },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const { watch, secret, replayId } = await watches.create(request.tenantId, request.body)
    request.log.info({ watchId: watch.id, chain: watch.chain, type: watch.type, replayId }, 'watch created')
    return reply.code(201).send({ ...watch, secret, ...(replayId && { replayId }) })
  })

  app.get<{ Querystring: ListQuery }>('/watches', {
    schema: {
      ...common,
      summary: "List the tenant's watches, oldest first, each with its delivery counts",
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
          properties: { items: { type: 'array', items: watchWithStats }, nextCursor: { type: ['string', 'null'] } },
        },
        ...errorResponses,
      },
    },
  }, async (request) => watches.list(request.tenantId, request.query))

  app.get<{ Params: WatchParams }>('/watches/:id', {
    schema: {
      ...common,
      summary: 'A watch and its delivery counts',
      params: watchIdParams,
      response: {
        200: watchWithStats,
        ...errorResponses,
      },
    },
  }, async (request) => {
    const watch = await watches.getForTenant(request.tenantId, request.params.id)
    return { ...watch, stats: await watches.stats(watch.id) }
  })

  app.patch<{ Params: WatchParams; Body: UpdateWatchInput }>('/watches/:id', {
    schema: {
      ...common,
      summary: 'Change a watch; subscribers see the change within a second',
      params: watchIdParams,
      body: updateWatchBody,
      response: { 200: watchSchema, ...errorResponses },
    },
  }, async (request) => {
    const updated = await watches.update(request.tenantId, request.params.id, request.body)
    request.log.info({ watchId: updated.id, fields: Object.keys(request.body) }, 'watch updated')
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
    const watch = await watches.getForTenant(request.tenantId, request.params.id)
    const cancelled = await watches.delete(watch)
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
    return { secret: await watches.currentSecret(request.tenantId, request.params.id) }
  })

  app.post<{ Params: WatchParams }>('/watches/:id/secret/rotate', {
    schema: {
      ...common,
      summary: 'Replace the secret; the old one keeps signing beside it for 24 hours',
      params: watchIdParams,
      response: { 200: secretBody, ...errorResponses },
    },
  }, async (request) => {
    const secret = await watches.rotateSecret(request.tenantId, request.params.id)
    request.log.info({ watchId: request.params.id }, 'watch secret rotated')
    return { secret }
  })

  app.patch<{ Params: WatchParams; Body: { add?: string[]; remove?: string[]; fromBlock?: number } }>('/watches/:id/addresses', {
    schema: {
      ...common,
      summary: 'Add and remove addresses of an evm.address_activity or evm.transactions watch',
      description: `Applies to every address list the filter has (addresses; from and/or to). At most ${MAX_WATCH_ADDRESSES} addresses per watch; bodies are limited to 1 MiB, so send large lists in several requests.`,
      params: watchIdParams,
      body: {
        type: 'object', additionalProperties: false,
        properties: {
          add: addressList,
          remove: addressList,
          fromBlock: { ...fromBlock, description: `Also deliver the added addresses' matches from this block on (at most ${MAX_BACKFILL_DEPTH} blocks behind the head); the other addresses' are not sent again` },
        },
      },
      response: {
        200: {
          type: 'object', required: ['count'],
          properties: { count: { type: 'integer', description: 'Distinct addresses the watch now holds' }, replayId: backfillReplayId },
        },
        ...errorResponses,
      },
    },
  }, async (request) => {
    const { count, backfill } = await watches.changeAddresses(request.tenantId, request.params.id, request.body)
    if (backfill) request.log.info({ watchId: request.params.id, ...backfill }, 'added addresses backfill requested')
    return { count, ...(backfill && { replayId: backfill.replayId }) }
  })
}
