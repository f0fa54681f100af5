/**
 * The REST API as a Fastify app that is built but not started: tests call `inject()`
 * on it, `server.ts` listens. Routes live in `routes/` as plugins registered into two scopes, one
 * behind tenant API keys and one behind the admin token; a route file added later needs one
 * `register` line in the scope it belongs to.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { ErrorObject } from 'ajv'
import type { Config } from '../config/config.js'
import { WebhookHttpClient } from '../delivery/http-client.js'
import { USER_AGENT } from '../delivery/user-agent.js'
import type { Resolver } from '../domain/url-policy.js'
import type { Logger } from '../logger.js'
import type { Wiring } from '../wiring.js'
import { DeliveryService } from '../services/delivery-service.js'
import { OperationsService } from '../services/operations-service.js'
import { isOutOfMemory, refusedWriteLog } from '../storage/redis-memory.js'
import { TenantService } from '../services/tenant-service.js'
import { adminStatusRoutes } from '../../routes/admin-status.js'
import { adminTenantRoutes } from '../../routes/admin-tenants.js'
import { chainRoutes } from '../../routes/chains.js'
import { healthRoutes } from '../../routes/health.js'
import { watchRoutes } from '../../routes/watches.js'
import { deliveryRoutes } from '../../routes/deliveries.js'
import { eventStreamRoutes } from '../../routes/events-stream.js'
import { EventStream, type StreamTiming } from '../stream/event-stream.js'
import { uiRoutes } from '../../routes/ui.js'
import { adminAuth, tenantAuth } from './auth.js'
import { errorBody, RetryLaterError, toErrorBody, writeClientError } from './errors.js'
import { RateLimiter } from './rate-limit.js'
import type { ApiContext, ApiServices, ReadinessCheck } from './route-context.js'
import { bodyAjv, formatValidationErrors, urlAjv } from './validation.js'

/** What the routes' services are built on (see wiring.ts), and the api's own settings. */
export interface ApiDeps extends Pick<Wiring, 'redis' | 'keys' | 'tenants' | 'watches' | 'metrics' | 'deliveryQueue' | 'metricsPublisher' | 'watchService'> {
  logger: Logger
  /** DNS for the test sends' URL policy; the system resolver when absent (tests inject one). */
  resolve?: Resolver
  /** Extra readiness conditions (the subscriber's connections in `blockhook all`). */
  readinessChecks?: ReadinessCheck[]
  /** The event stream's ping interval and pong timeout; 15 s and 30 s when absent (tests shorten them). */
  streamTiming?: StreamTiming
}

/** The services the routes call, over the stores and the queue of `deps`. */
function buildServices(config: Config, deps: ApiDeps): ApiServices {
  const watches = deps.watchService
  // The api's own client for test sends: same policy, timeout and agents as the worker's.
  const httpClient = new WebhookHttpClient({
    timeoutMs: config.delivery.timeoutMs,
    userAgent: USER_AGENT,
    allowPrivateUrls: config.allowPrivateUrls,
    resolve: deps.resolve,
  })
  return {
    tenants: new TenantService(deps.tenants, watches),
    watches,
    deliveries: new DeliveryService({ redis: deps.redis, keys: deps.keys, deliveryQueue: deps.deliveryQueue, watches, httpClient }),
    operations: new OperationsService({ redis: deps.redis, keys: deps.keys, metrics: deps.metrics, metricsPublisher: deps.metricsPublisher }),
    stream: new EventStream({
      redis: deps.redis, keys: deps.keys, tenants: deps.tenants, watches: deps.watches, metrics: deps.metrics, logger: deps.logger,
      stream: config.stream, ...(deps.streamTiming ? { timing: deps.streamTiming } : {}),
    }),
  }
}

/** README, "API tour": bodies over 1 MiB get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024

/** Bodies validate without coercion, querystrings and params with it (see validation.ts). */
function installValidators(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : urlAjv.compile(schema))
}

/**
 * JSON only (anything else is 415; Fastify would also take text/plain). An empty body with
 * `content-type: application/json` (curl -X DELETE -H …) reads as no body.
 */
function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString()
    if (text === '') done(null, undefined)
    else parseJson(request, text, done)
  })
}

async function installDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'blockhook',
        description: 'Blockchain node subscriptions turned into signed, retried webhooks.',
        version: '1',
      },
      components: {
        securitySchemes: {
          tenantApiKey: { type: 'http', scheme: 'bearer', description: 'A tenant API key (bhk_…)' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'BLOCKHOOK_ADMIN_TOKEN' },
        },
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export async function buildApi(config: Config, deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    clientErrorHandler: writeClientError,
    schemaErrorFormatter: (errors, dataVar) => new Error(formatValidationErrors(errors as ErrorObject[], dataVar)),
  })
  installValidators(app)
  installJsonParser(app)
  app.decorateRequest('tenantId', '')

  // While Redis is full every write fails alike: one line a minute says so, not one per request.
  app.setErrorHandler((err, request, reply) => {
    const body = toErrorBody(err)
    if (isOutOfMemory(err)) {
      if (refusedWriteLog.allow()) request.log.error({ redisError: (err as Error).message }, body.message)
    } else if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
    if (err instanceof RetryLaterError) reply.header('retry-after', String(err.retryAfterSec))
    return reply.code(body.statusCode).send(body)
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(404, 'BH_ROUTE_NOT_FOUND', `route ${request.method} ${request.url.split('?')[0]} not found`)))

  await installDocs(app)

  const services = buildServices(config, deps)
  app.addHook('onClose', async () => services.deliveries.close())
  // The array itself, not a copy: a role started later in the process may still add its check.
  const context: ApiContext = { config, services, readinessChecks: deps.readinessChecks ?? [] }
  const rateLimiter = new RateLimiter(deps.redis, deps.keys, config.rateLimitPerSecond)

  await app.register(healthRoutes, context)
  // Its own authentication: browsers cannot send Authorization on a WebSocket (see the route).
  await app.register(eventStreamRoutes, context)
  await app.register(uiRoutes, context)

  await app.register(async function tenantScope(scope) {
    scope.addHook('onRequest', tenantAuth(deps.tenants, rateLimiter))
    await scope.register(watchRoutes, context)
    await scope.register(deliveryRoutes, context)
    await scope.register(chainRoutes, context)
  })

  await app.register(async function adminScope(scope) {
    scope.addHook('onRequest', adminAuth(config.adminToken))
    await scope.register(adminTenantRoutes, context)
    await scope.register(adminStatusRoutes, context)
  })

  return app
}
