/** Liveness and readiness (README, "API tour"), unauthenticated so orchestrators can probe them. */
import type { ApiRoutes } from '../src/api/route-context.js'
import { errorBody } from '../src/api/errors.js'
import { errorBodySchema } from '../src/api/schemas.js'

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const

export const healthRoutes: ApiRoutes = async (app, { services, readinessChecks }) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], summary: 'The process is running', response: { 200: statusSchema } },
  }, async () => ({ status: 'ok' }))

  async function notReadyReason(): Promise<string | undefined> {
    const redisReason = await services.operations.redisNotReadyReason()
    if (redisReason !== undefined) return redisReason
    for (const check of readinessChecks) {
      const reason = check()
      if (reason !== undefined) return reason
    }
    return undefined
  }

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Redis answers and takes writes (and, with a subscriber in this process, every chain is connected)',
      response: { 200: statusSchema, 503: { description: 'Not ready, with the reason', ...errorBodySchema } },
    },
  }, async (request, reply) => {
    const reason = await notReadyReason()
    if (reason === undefined) return { status: 'ready' }
    request.log.warn({ reason }, 'not ready')
    return reply.code(503).send(errorBody(503, 'BH_NOT_READY', reason))
  })
}

