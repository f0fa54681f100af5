/**
 * JSON Schemas shared by the routes: they validate requests, shape responses (so no
 * field such as a secret leaks by accident), and feed /openapi.json.
 */
import { WATCH_STATUSES, WATCH_TYPES } from '../domain/watch-types.js'

export const errorBodySchema = {
  type: 'object',
  required: ['statusCode', 'error', 'code', 'message'],
  additionalProperties: false,
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
  },
} as const

/** Spread into every route's `response`: errors are always the error body of README, "API tour". */
export const errorResponses = {
  '4xx': { description: 'Client error', ...errorBodySchema },
  '5xx': { description: 'Server error', ...errorBodySchema },
} as const

export const tenantSecurity = [{ tenantApiKey: [] }]
export const adminSecurity = [{ adminToken: [] }]

export const idParams = (name: string, prefix: string) => ({
  type: 'object',
  required: [name],
  additionalProperties: false,
  properties: { [name]: { type: 'string', pattern: `^${prefix}_[a-z0-9]{1,64}$` } },
}) as const

export const watchIdParams = idParams('id', 'wch')

export const cursorQuery = { type: 'string', maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' } as const
export const limitQuery = { type: 'integer', minimum: 1, maximum: 100, default: 20 } as const

const dateTime = { type: 'string', format: 'date-time' } as const

/** A watch as clients see it: never its tenant's id nor its secret. */
export const watchSchema = {
  type: 'object',
  required: ['id', 'chain', 'type', 'filter', 'status', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string', pattern: '^wch_' },
    chain: { type: 'string' },
    type: { enum: WATCH_TYPES },
    filter: { type: 'object', additionalProperties: true, description: 'The filter of the watch type (see POST /watches)' },
    url: { type: 'string', format: 'uri', description: 'Absent: the watch sends no webhooks, its events reach only the event stream' },
    status: { enum: WATCH_STATUSES },
    batch: { enum: ['none', 'block'], description: 'EVM: `block` sends one evm.batch webhook per block' },
    ordered: { type: 'boolean', description: 'Webhooks go out one at a time in sequence order' },
    startBlock: { type: 'integer', description: "EVM: the first block matched live, the one after the chain's head when the watch was created" },
    confirmations: { type: 'integer', description: 'EVM only' },
    commitment: { enum: ['processed', 'confirmed', 'finalized'], description: 'Solana only' },
    description: { type: 'string' },
    metadata: { type: 'object', additionalProperties: true },
    disabledReason: { type: 'string', description: 'Why blockhook disabled the watch' },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const

export const watchStatsSchema = {
  type: 'object',
  required: ['matched', 'delivered', 'failed', 'pending', 'lastDeliveredAt'],
  properties: {
    matched: { type: 'integer' },
    delivered: { type: 'integer' },
    failed: { type: 'integer' },
    pending: { type: 'integer' },
    lastDeliveredAt: { type: ['string', 'null'] },
  },
} as const
