/**
 * What every route plugin is registered with: the config and the services. Routes see no Redis
 * connection, key or queue; a route that needs more asks a service for it.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config/config.js'
import type { DeliveryService } from '../services/delivery-service.js'
import type { OperationsService } from '../services/operations-service.js'
import type { TenantService } from '../services/tenant-service.js'
import type { WatchService } from '../services/watch-service.js'
import type { EventStream } from '../stream/event-stream.js'

export interface ApiServices {
  tenants: TenantService
  watches: WatchService
  deliveries: DeliveryService
  operations: OperationsService
  stream: EventStream
}

/** A condition /readyz also waits for (the subscriber's connections in `blockhook all`): a string is the 503 reason. */
export type ReadinessCheck = () => string | undefined

export interface ApiContext {
  config: Config
  services: ApiServices
  readinessChecks: readonly ReadinessCheck[]
}

export type ApiRoutes = FastifyPluginAsync<ApiContext>
