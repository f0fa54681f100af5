/** Liveness and readiness (SPEC §3), unauthenticated so orchestrators can probe them. */
import { once } from 'node:events'
import type { Redis } from 'ioredis'
import type { ApiRoutes } from '../src/api/app.js'
import { errorBody } from '../src/api/errors.js'
import { errorBodySchema } from '../src/api/schemas.js'

/** A probe answers within this, however Redis is doing. */
const PING_TIMEOUT_MS = 1_000

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const

/**
 * PING once connected; while (re)connecting, wait for the connection instead of queueing a PING
 * per probe in ioredis's offline queue.
 */
async function redisAnswers(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await once(redis, 'ready', { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
  await withTimeout(redis.ping(), PING_TIMEOUT_MS)
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export const healthRoutes: ApiRoutes = async (app, { deps }) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], summary: 'The process is running', response: { 200: statusSchema } },
  }, async () => ({ status: 'ok' }))

  async function notReadyReason(): Promise<string | undefined> {
    try {
      await redisAnswers(deps.redis)
    } catch (err) {
      return `redis does not answer (${deps.redis.status}): ${(err as Error).message}`
    }
    for (const check of deps.readinessChecks ?? []) {
      const reason = check()
      if (reason !== undefined) return reason
    }
    return undefined
  }

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Redis answers (and, with a subscriber in this process, every chain is connected)',
      response: { 200: statusSchema, 503: { description: 'Not ready, with the reason', ...errorBodySchema } },
    },
  }, async (request, reply) => {
    const reason = await notReadyReason()
    if (reason === undefined) return { status: 'ready' }
    request.log.warn({ reason }, 'not ready')
    return reply.code(503).send(errorBody(503, 'BH_NOT_READY', reason))
  })
}

