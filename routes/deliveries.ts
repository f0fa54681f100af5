/**
 * The delivery log and the delivery actions (README, "API tour"), behind a tenant API key: read one delivery
 * with its attempts and payload, list a watch's deliveries and count them per minute, send a failed
 * one again, send a test event now, and replay a block range.
 */
import type { ApiRoutes } from '../src/api/route-context.js'
import { cursorQuery, errorResponses, idParams, limitQuery, tenantSecurity, watchIdParams } from '../src/api/schemas.js'
import { LATENCY_BOUNDS_MS, MAX_MINUTES } from '../src/delivery/delivery-minutes.js'
import type { DeliveryStatus, DeliverySummary } from '../src/delivery/delivery-record.js'
import {
  MAX_PENDING_REPLAY_BLOCKS, MAX_PENDING_REPLAYS, MAX_REPLAY_BLOCKS, REPLAY_CHUNK_BLOCKS, type ReplayProgress,
} from '../src/delivery/replay-requests.js'

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
  block: {
    type: ['object', 'null'], required: ['number', 'hash'],
    properties: { number: { type: 'integer' }, hash: { type: ['string', 'null'] } },
    description: 'The block (or slot) of the event; null for events without one',
  },
  eventKey: { type: ['string', 'null'] },
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
    payload: {
      type: ['object', 'null'], additionalProperties: true,
      description: 'The webhook body as sent; null once delivery.payloadRetention has passed (a replay sends it again)',
    },
    payloadExpired: { type: 'boolean' },
  },
} as const

const deliveryIdParams = idParams('id', 'evt')
const replayIdParams = idParams('replayId', 'rpl')

const replaySchema = {
  type: 'object',
  required: ['replayId', 'watchId', 'status', 'fromBlock', 'toBlock', 'blocksDone', 'eventsQueued', 'createdAt', 'updatedAt', 'completedAt'],
  properties: {
    replayId: { type: 'string', pattern: '^rpl_' },
    watchId: { type: 'string' },
    status: {
      enum: ['queued', 'running', 'completed'],
      description: '`queued` until its first blocks are scanned, `running` while more remain, then `completed`',
    },
    kind: { enum: ['replay', 'backfill'], description: '`backfill`: a `fromBlock` of POST /watches or PATCH /watches/:id/addresses' },
    fromBlock: blockNumber,
    toBlock: blockNumber,
    blocksDone: {
      type: 'integer', minimum: 0,
      description: 'Blocks scanned so far. A replay completes without scanning blocks not yet confirmed for the watch when it gets there: the follower delivers those',
    },
    eventsQueued: { type: 'integer', minimum: 0, description: 'Matches queued for delivery so far' },
    createdAt: dateTime,
    updatedAt: dateTime,
    completedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const

function replayView(progress: ReplayProgress) {
  const { replayId, watchId, status, fromBlock, toBlock, nextBlock, eventsQueued, createdAt, updatedAt, completedAt } = progress
  return {
    replayId, watchId, status, kind: progress.backfill ? 'backfill' : 'replay', fromBlock, toBlock,
    blocksDone: nextBlock - fromBlock, eventsQueued, createdAt, updatedAt, completedAt,
  }
}

const latencyMs = { type: 'integer', minimum: 0 } as const
const deliveryMinuteSchema = {
  type: 'object',
  required: ['minute', 'delivered', 'failed', 'latency'],
  properties: {
    minute: { ...dateTime, description: 'Start of the minute' },
    delivered: { type: 'integer', description: 'Attempts answered 2xx' },
    failed: { type: 'integer', description: 'Attempts that failed, whether retried or final' },
    latency: {
      type: ['object', 'null'], required: ['count', 'meanMs', 'p50Ms', 'p95Ms'],
      description: `Event to delivery (first sight of the event to its 2xx) of the minute's deliveries, replays and manual retries left out; null when there was none. Percentiles are interpolated in a histogram with bounds ${LATENCY_BOUNDS_MS.join(', ')} ms`,
      properties: { count: { type: 'integer' }, meanMs: latencyMs, p50Ms: latencyMs, p95Ms: latencyMs },
    },
  },
} as const

interface IdParams { id: string }
interface ReplayParams { id: string; replayId: string }
interface ListQuery { status?: DeliveryStatus; limit: number; cursor?: string }
interface ReplayBody { fromBlock: number; toBlock: number }
interface MinutesQuery { minutes: number }

function summary(record: DeliverySummary) {
  const { id, watchId, type, status, attempts, nextAttemptAt, createdAt, block, eventKey } = record
  return { id, watchId, type, status, attempts, nextAttemptAt, createdAt, block, eventKey }
}

export const deliveryRoutes: ApiRoutes = async (app, { services }) => {
  const { deliveries } = services
  const common = { tags: ['deliveries'], security: tenantSecurity } as const

  app.get<{ Params: IdParams }>('/deliveries/:id', {
    schema: {
      ...common,
      summary: 'A delivery: its status, every attempt, and the payload',
      params: deliveryIdParams,
      response: { 200: deliverySchema, ...errorResponses },
    },
  }, async (request) => {
    const record = await deliveries.getForTenant(request.tenantId, request.params.id)
    return { ...summary(record), ...deliveries.payloadOf(record) }
  })

  app.post<{ Params: IdParams }>('/deliveries/:id/retry', {
    schema: {
      ...common,
      summary: 'Send a failed delivery again, with a fresh set of attempts',
      params: deliveryIdParams,
      response: { 202: deliverySummarySchema, ...errorResponses },
    },
  }, async (request, reply) => {
    const record = await deliveries.retry(request.tenantId, request.params.id)
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
    const page = await deliveries.listForWatch(request.tenantId, request.params.id, request.query)
    return { items: page.items.map(summary), nextCursor: page.nextCursor }
  })

  app.get<{ Params: IdParams; Querystring: MinutesQuery }>('/watches/:id/stats/minutes', {
    schema: {
      ...common,
      summary: "A watch's delivery attempts and event-to-delivery latency per minute, oldest first, the current minute last",
      description: `Every minute of the window is listed, zeros included. Kept for ${MAX_MINUTES / 60} hours.`,
      params: watchIdParams,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { minutes: { type: 'integer', minimum: 1, maximum: MAX_MINUTES, default: 60, description: 'How many minutes, up to now' } },
      },
      response: {
        200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: deliveryMinuteSchema } } },
        ...errorResponses,
      },
    },
  }, async (request) => ({ items: await deliveries.minutesForWatch(request.tenantId, request.params.id, request.query.minutes) }))

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
    const result = await deliveries.sendTest(request.tenantId, request.params.id)
    request.log.info({ watchId: request.params.id, statusCode: result.statusCode, delivered: result.delivered }, 'test webhook sent')
    return result
  })

  app.post<{ Params: IdParams; Body: ReplayBody }>('/watches/:id/replay', {
    schema: {
      ...common,
      summary: 'Scan a block range again and deliver every match again, under its original webhook-id',
      description: `EVM watches; at most ${MAX_REPLAY_BLOCKS} blocks per request. Replays of every tenant take turns, `
        + `${REPLAY_CHUNK_BLOCKS} blocks at a time. A tenant's unfinished replays and backfills hold at most `
        + `${MAX_PENDING_REPLAYS} requests and ${MAX_PENDING_REPLAY_BLOCKS} blocks: past that, 429 with code BH_REPLAY_QUOTA_EXCEEDED. `
        + 'Follow one with GET /watches/:id/replays/:replayId.',
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
    const { fromBlock, toBlock } = request.body
    const replayId = await deliveries.replay(request.tenantId, request.params.id, fromBlock, toBlock)
    request.log.info({ watchId: request.params.id, replayId, fromBlock, toBlock }, 'replay requested')
    return reply.code(202).send({ replayId })
  })

  app.get<{ Params: ReplayParams }>('/watches/:id/replays/:replayId', {
    schema: {
      ...common,
      summary: 'A replay or backfill of the watch, and how far it got',
      params: {
        type: 'object', required: ['id', 'replayId'], additionalProperties: false,
        properties: { id: watchIdParams.properties.id, replayId: replayIdParams.properties.replayId },
      },
      response: { 200: replaySchema, ...errorResponses },
    },
  }, async (request) => replayView(await deliveries.replayProgress(request.tenantId, request.params.id, request.params.replayId)))
}
