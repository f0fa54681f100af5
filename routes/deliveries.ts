/**
 * The delivery log and the delivery actions (SPEC §3), behind a tenant API key: read one delivery
 * with its attempts and payload, list a watch's deliveries, send a failed one again, send a test
 * event now, and replay a block range.
 */
import type { ApiRoutes } from '../src/api/app.js'
import { cursorQuery, errorResponses, idParams, limitQuery, tenantSecurity, watchIdParams } from '../src/api/schemas.js'
import type { DeliveryRecord, DeliveryStatus } from '../src/delivery/delivery-record.js'
import { renderWebhookBody } from '../src/delivery/delivery-record.js'
import { WebhookHttpClient } from '../src/delivery/http-client.js'
import { MAX_REPLAY_BLOCKS, requestReplay } from '../src/delivery/replay-requests.js'
import { sendTestWebhook } from '../src/delivery/test-send.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import { badRequest, BlockhookError } from '../src/domain/errors.js'
import { chainTypeOf } from '../src/domain/watch-types.js'

const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed', 'cancelled']
const dateTime = { type: 'string', format: 'date-time' } as const
const blockNumber = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const

const attemptSchema = {
  type: 'object',
  required: ['at', 'statusCode', 'durationMs', 'error'],
  properties: {
    at: dateTime,
    statusCode: { type: ['integer', 'null'], description: 'null when no HTTP answer arrived' },
    durationMs: { type: 'integer' },
    error: { type: ['string', 'null'], description: 'Why the attempt failed; null for a 2xx' },
    response: { type: 'string', description: "The start of the receiver's answer, at most 1 KiB" },
  },
} as const

const deliverySummaryProperties = {
  id: { type: 'string', description: 'The webhook-id' },
  watchId: { type: 'string' },
  type: { type: 'string', description: 'The event type' },
  status: { enum: DELIVERY_STATUSES },
  attempts: { type: 'array', items: attemptSchema },
  nextAttemptAt: { type: ['string', 'null'], format: 'date-time' },
  createdAt: dateTime,
} as const

const deliverySummarySchema = {
  type: 'object',
  required: ['id', 'watchId', 'type', 'status', 'attempts', 'nextAttemptAt', 'createdAt'],
  properties: deliverySummaryProperties,
} as const

const deliverySchema = {
  type: 'object',
  required: [...deliverySummarySchema.required, 'payload'],
  properties: {
    ...deliverySummaryProperties,
    payload: { type: 'object', additionalProperties: true, description: 'The webhook body as sent' },
  },
} as const

const deliveryIdParams = idParams('id', 'evt')

interface IdParams { id: string }
interface ListQuery { status?: DeliveryStatus; limit: number; cursor?: string }
interface ReplayBody { fromBlock: number; toBlock: number }

function summary(record: DeliveryRecord) {
  const { id, watchId, type, status, attempts, nextAttemptAt, createdAt } = record
  return { id, watchId, type, status, attempts, nextAttemptAt, createdAt }
}

export const deliveryRoutes: ApiRoutes = async (app, { config, deps }) => {
  const store = deps.deliveryQueue.store
  // The api's own client for test sends: same policy, timeout and agents as the worker's.
  const httpClient = new WebhookHttpClient({
    timeoutMs: config.delivery.timeoutMs,
    userAgent: USER_AGENT,
    allowPrivateUrls: config.allowPrivateUrls,
    resolve: deps.resolve,
  })
  app.addHook('onClose', async () => httpClient.close())
  const common = { tags: ['deliveries'], security: tenantSecurity } as const

  app.get<{ Params: IdParams }>('/deliveries/:id', {
    schema: {
      ...common,
      summary: 'A delivery: its status, every attempt, and the payload',
      params: deliveryIdParams,
      response: { 200: deliverySchema, ...errorResponses },
    },
  }, async (request) => {
    const record = await store.getForTenant(request.tenantId, request.params.id)
    return { ...summary(record), payload: JSON.parse(renderWebhookBody(record)) as unknown }
  })

  app.post<{ Params: IdParams }>('/deliveries/:id/retry', {
    schema: {
      ...common,
      summary: 'Send a failed delivery again, with a fresh set of attempts',
      params: deliveryIdParams,
      response: { 202: deliverySummarySchema, ...errorResponses },
    },
  }, async (request, reply) => {
    const record = await store.getForTenant(request.tenantId, request.params.id)
    if (!(await deps.watches.get(record.watchId))) {
      throw new BlockhookError('BH_WATCH_DELETED', 'the watch of this delivery was deleted', 409)
    }
    const previous = await deps.deliveryQueue.requeueFailed(record.id, record.watchId)
    if (previous !== 'failed') {
      throw new BlockhookError('BH_DELIVERY_NOT_FAILED', `only a failed delivery can be retried; this one is ${previous ?? 'gone'}`, 409)
    }
    request.log.info({ deliveryId: record.id, watchId: record.watchId }, 'delivery queued again')
    return reply.code(202).send({ ...summary(record), status: 'pending', nextAttemptAt: null })
  })

  app.get<{ Params: IdParams; Querystring: ListQuery }>('/watches/:id/deliveries', {
    schema: {
      ...common,
      summary: "A watch's deliveries, newest first (payloads: GET /deliveries/:id)",
      params: watchIdParams,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { status: { enum: DELIVERY_STATUSES }, limit: limitQuery, cursor: cursorQuery },
      },
      response: {
        200: {
          type: 'object', required: ['items', 'nextCursor'],
          properties: { items: { type: 'array', items: deliverySummarySchema }, nextCursor: { type: ['string', 'null'] } },
        },
        ...errorResponses,
      },
    },
  }, async (request) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const page = await store.listByWatch(watch.id, request.query)
    return { items: page.items.map(summary), nextCursor: page.nextCursor }
  })

  app.post<{ Params: IdParams }>('/watches/:id/test', {
    schema: {
      ...common,
      summary: 'Send one webhook.test event to the watch URL now and report the answer',
      params: watchIdParams,
      response: {
        200: {
          type: 'object', required: ['delivered', 'statusCode', 'durationMs'],
          properties: {
            delivered: { type: 'boolean', description: 'The URL answered 2xx' },
            statusCode: { type: ['integer', 'null'], description: 'null when no HTTP answer arrived' },
            durationMs: { type: 'integer' },
            error: { type: ['string', 'null'] },
          },
        },
        ...errorResponses,
      },
    },
  }, async (request) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const result = await sendTestWebhook(httpClient, watch, await deps.watches.signingSecrets(watch.id))
    request.log.info({ watchId: watch.id, statusCode: result.statusCode, delivered: result.delivered }, 'test webhook sent')
    return result
  })

  app.post<{ Params: IdParams; Body: ReplayBody }>('/watches/:id/replay', {
    schema: {
      ...common,
      summary: 'Scan a block range again and deliver every match again, under its original webhook-id',
      description: `EVM watches; at most ${MAX_REPLAY_BLOCKS} blocks per request.`,
      params: watchIdParams,
      body: {
        type: 'object', additionalProperties: false, required: ['fromBlock', 'toBlock'],
        properties: { fromBlock: blockNumber, toBlock: blockNumber },
      },
      response: {
        202: { type: 'object', required: ['replayId'], properties: { replayId: { type: 'string', pattern: '^rpl_' } } },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const watch = await deps.watches.getForTenant(request.tenantId, request.params.id)
    const { fromBlock, toBlock } = request.body
    if (chainTypeOf(watch.type) !== 'evm') throw badRequest('BH_REPLAY_UNSUPPORTED', `replay is for EVM watches; this one is ${watch.type}`)
    if (toBlock < fromBlock) throw badRequest('BH_VALIDATION', 'body/toBlock must be at least body/fromBlock')
    if (toBlock - fromBlock + 1 > MAX_REPLAY_BLOCKS) {
      throw badRequest('BH_VALIDATION', `body/toBlock must be within ${MAX_REPLAY_BLOCKS} blocks of body/fromBlock`)
    }
    const replayId = await requestReplay(deps.redis, deps.keys, watch.chain, { watchId: watch.id, fromBlock, toBlock })
    request.log.info({ watchId: watch.id, replayId, fromBlock, toBlock }, 'replay requested')
    return reply.code(202).send({ replayId })
  })
}
