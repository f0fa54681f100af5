/** Operator views (README, "API tour"): /admin/status and the Prometheus /metrics, behind the admin token. */
import type { ApiRoutes } from '../src/api/route-context.js'
import { adminSecurity, errorResponses } from '../src/api/schemas.js'
import { WATCH_STATUSES } from '../src/domain/watch-types.js'

const nullableString = { type: ['string', 'null'] } as const
const counter = { type: 'integer' } as const

const statusSchema = {
  type: 'object',
  required: ['chains', 'queues', 'watches', 'redis'],
  properties: {
    chains: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'type', 'connected', 'endpoint', 'head', 'lastHeadAt', 'reconnects', 'subscriptions', 'cursor', 'updatedAt'],
        properties: {
          id: { type: 'string' },
          type: { enum: ['evm', 'solana'] },
          connected: { type: 'boolean', description: 'false also once the subscriber has not reported for 15 s' },
          endpoint: { ...nullableString, description: 'Scheme and host only' },
          head: {
            type: 'object', required: ['number', 'hash'],
            properties: { number: { type: ['integer', 'null'] }, hash: nullableString },
          },
          lastHeadAt: nullableString,
          reconnects: counter,
          subscriptions: counter,
          cursor: {
            type: ['object', 'null'], required: ['number', 'hash'], description: 'The last block whose deliveries are queued',
            properties: { number: counter, hash: nullableString },
          },
          updatedAt: { ...nullableString, description: "When the chain's subscriber last reported" },
        },
      },
    },
    queues: {
      type: 'object', required: ['waiting', 'active', 'delayed', 'failed'],
      properties: { waiting: counter, active: counter, delayed: counter, failed: counter },
    },
    watches: {
      type: 'object', required: [...WATCH_STATUSES],
      properties: Object.fromEntries(WATCH_STATUSES.map((s) => [s, counter])),
    },
    redis: {
      type: 'object', required: ['usedMemory', 'maxMemory'],
      properties: {
        usedMemory: { type: 'integer', description: 'Bytes (INFO used_memory)' },
        maxMemory: { type: 'integer', description: 'Bytes (maxmemory); 0 when Redis has no limit' },
      },
    },
  },
} as const

export const adminStatusRoutes: ApiRoutes = async (app, { config, services }) => {
  const { operations } = services

  app.get('/admin/status', {
    schema: {
      tags: ['operations'], security: adminSecurity,
      summary: 'Chains, queues, watches and Redis memory at a glance',
      response: { 200: statusSchema, ...errorResponses },
    },
  }, async () => {
    const [chains, queues, watches, redis] = await Promise.all([
      Promise.all(config.chains.map((chain) => operations.chainStatus(chain))),
      services.deliveries.queueCounts(),
      services.watches.countByStatus(),
      operations.redisMemory(),
    ])
    return { chains, queues, watches, redis }
  })

  app.get('/metrics', {
    schema: {
      tags: ['operations'], security: adminSecurity,
      summary: 'Prometheus metrics of every blockhook process sharing this Redis',
      response: { 200: { type: 'string', description: 'Prometheus text exposition format' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { text, contentType } = await operations.metricsText(config.chains)
    return reply.type(contentType).send(text)
  })
}
