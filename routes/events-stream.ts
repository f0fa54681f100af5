/**
 * GET /events/stream: a tenant's events over a WebSocket (README "Event stream"). Everything that
 * can refuse a connection runs before the upgrade, as plain HTTP errors: the Origin check (403),
 * the API key from `Authorization` or the `bearer.<key>` subprotocol (401), the query (400), the
 * watches (404 for another tenant's) and the connection limit (429).
 */
import websocket from '@fastify/websocket'
import type { FastifyRequest } from 'fastify'
import type { ApiRoutes } from '../src/api/route-context.js'
import { bearerToken } from '../src/api/auth.js'
import { errorResponses } from '../src/api/schemas.js'
import { BlockhookError, unauthorized } from '../src/domain/errors.js'
import type { Admission } from '../src/stream/event-stream.js'
import { originAllowed } from '../src/stream/origin-policy.js'
import { CURSOR_MAX_LENGTH, CURSOR_PATTERN } from '../src/stream/stream-entry.js'

/** The subprotocol a browser asks for, and the server answers with. */
export const STREAM_PROTOCOL = 'blockhook.v1'
const BEARER_PROTOCOL = 'bearer.'
/** Client frames over this close the connection with 1009. */
export const MAX_CLIENT_FRAME_BYTES = 4 * 1024

declare module 'fastify' {
  interface FastifyRequest {
    streamAdmission?: Admission
  }
}

interface StreamQuery { watch?: string[]; after?: string }

const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    watch: { type: 'array', maxItems: 100, items: { type: 'string', pattern: '^wch_[a-z0-9]{1,64}$' }, description: 'Repeatable; default every watch of the tenant' },
    after: { type: 'string', pattern: CURSOR_PATTERN, maxLength: CURSOR_MAX_LENGTH, description: 'Resume after this cursor (a message\'s `cursor`, opaque)' },
  },
} as const

function offeredProtocols(request: FastifyRequest): string[] {
  const header = request.headers['sec-websocket-protocol']
  return typeof header === 'string' ? header.split(',').map((p) => p.trim()).filter((p) => p !== '') : []
}

/** The API key: the Authorization header, or for browsers (which cannot set it) the subprotocols. */
function streamApiKey(request: FastifyRequest): string | undefined {
  const fromHeader = bearerToken(request)
  if (fromHeader) return fromHeader
  const protocols = offeredProtocols(request)
  const bearer = protocols.find((p) => p.startsWith(BEARER_PROTOCOL))
  if (!bearer || !protocols.includes(STREAM_PROTOCOL)) return undefined
  return bearer.slice(BEARER_PROTOCOL.length) || undefined
}


export const eventStreamRoutes: ApiRoutes = async (app, { config, services }) => {
  const stream = services.stream
  stream.start()
  await app.register(websocket, {
    options: {
      maxPayload: MAX_CLIENT_FRAME_BYTES,
      // Answer blockhook.v1 when offered; the bearer.<key> entry is never echoed back.
      handleProtocols: (protocols) => (protocols.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
    },
    // Closing the app closes the streams first, with 1001 (the plugin's default would use 1000).
    preClose: (done) => { stream.close().then(() => done(), done) },
  })

  app.get<{ Querystring: StreamQuery }>('/events/stream', {
    websocket: true,
    schema: {
      summary: 'Stream the tenant\'s events over a WebSocket',
      querystring: streamQuery,
      response: errorResponses,
    },
    onRequest: async (request) => {
      if (!originAllowed(request.headers.origin, request.headers.host, config.allowedOrigins)) {
        throw new BlockhookError('BH_STREAM_ORIGIN_FORBIDDEN', `origin ${request.headers.origin} may not open the event stream`, 403)
      }
      const key = streamApiKey(request)
      const tenantId = key ? await stream.authenticate(key) : undefined
      if (!tenantId) throw unauthorized()
      request.tenantId = tenantId
    },
    preHandler: async (request) => {
      if (!request.ws) throw new BlockhookError('BH_STREAM_UPGRADE_REQUIRED', 'GET /events/stream is a WebSocket: send an upgrade request', 426)
      request.streamAdmission = await stream.admit(request.tenantId, request.query.watch ?? [], request.query.after)
      // The client may vanish before the upgrade completes; then nothing else frees its slot.
      request.raw.socket.once('close', () => {
        if (request.streamAdmission && !admitted.has(request.streamAdmission)) void stream.reject(request.streamAdmission)
      })
    },
  }, async (socket, request) => {
    const admission = request.streamAdmission!
    admitted.add(admission)
    await stream.open(socket, admission)
  })
  const admitted = new WeakSet<Admission>()
}
