/** Operator views (README, "API tour"): /admin/status and the Prometheus /metrics, behind the admin token. */
import type { ApiRoutes } from '../src/api/route-context.js'
import { adminSecurity, errorResponses } from '../src/api/schemas.js'
import type { ChainConfig } from '../src/config/config.js'
import { redactUrl } from '../src/domain/redact.js'
import { WATCH_STATUSES } from '../src/domain/watch-types.js'

const nullableString = { type: ['string', 'null'] } as const
const counter = { type: 'integer' } as const

const statusSchema = {
  type: 'object',
  required: ['chains', 'queues', 'watches'],
  properties: {
    chains: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'type', 'connected', 'endpoint', 'head', 'lastHeadAt', 'reconnects', 'subscriptions'],
        properties: {
          id: { type: 'string' },
          type: { enum: ['evm', 'solana'] },
          connected: { type: 'boolean' },
          endpoint: { ...nullableString, description: 'Scheme and host only' },
          head: {
            type: 'object', required: ['number', 'hash'],
            properties: { number: { type: ['integer', 'null'] }, hash: nullableString },
          },
          lastHeadAt: nullableString,
          reconnects: counter,
          subscriptions: counter,
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
  },
} as const

function integerOrNull(text: string | undefined): number | null {
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : null
}

/** The subscriber writes times as ISO strings or Unix ms; render both as ISO. */
function isoOrNull(text: string | undefined): string | null {
  if (!text) return null
  const ms = /^[0-9]+$/.test(text) ? Number(text) : Date.parse(text)
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null
}

/** `keys.chainStatus(id)` as /admin/status shows it (README, "API tour"); a chain no subscriber reported on reads as disconnected. */
export function renderChainStatus(chain: ChainConfig, stored: Record<string, string>) {
  return {
    id: chain.id,
    type: chain.type,
    connected: stored.connected === 'true',
    endpoint: stored.endpoint ? redactUrl(stored.endpoint) : null,
    head: { number: integerOrNull(stored.headNumber), hash: stored.headHash || null },
    lastHeadAt: isoOrNull(stored.lastHeadAt),
    reconnects: integerOrNull(stored.reconnects) ?? 0,
    subscriptions: integerOrNull(stored.subscriptions) ?? 0,
  }
}

export const adminStatusRoutes: ApiRoutes = async (app, { config, services }) => {
  const { operations } = services

  app.get('/admin/status', {
    schema: {
      tags: ['operations'], security: adminSecurity,
      summary: 'Chains, queues and watches at a glance',
      response: { 200: statusSchema, ...errorResponses },
    },
  }, async () => {
    const [chains, queues, watches] = await Promise.all([
      Promise.all(config.chains.map(async (chain) =>
        renderChainStatus(chain, await operations.chainStatus(chain)))),
      services.deliveries.queueCounts(),
      services.watches.countByStatus(),
    ])
    return { chains, queues, watches }
  })

  app.get('/metrics', {
    schema: {
      tags: ['operations'], security: adminSecurity,
      summary: 'Prometheus metrics of every blockhook process sharing this Redis',
      response: { 200: { type: 'string', description: 'Prometheus text exposition format' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { text, contentType } = await operations.metricsText()
    return reply.type(contentType).send(text)
  })
}
