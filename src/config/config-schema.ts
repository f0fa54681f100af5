import { DURATION_PATTERN } from './duration.js'

export const CHAIN_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$'

/** JSON Schema of blockhook.config.json (README, "Configuration"). Defaults are filled in by ajv. */
export const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    chains: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'type', 'ws'],
        properties: {
          id: { type: 'string', pattern: CHAIN_ID_PATTERN },
          type: { enum: ['evm', 'solana'] },
          ws: {
            type: 'array', minItems: 1, maxItems: 16,
            items: { type: 'string', pattern: '^wss?://', maxLength: 2048 },
          },
          http: {
            type: 'array', maxItems: 16,
            items: { type: 'string', pattern: '^https?://', maxLength: 2048 },
          },
          confirmations: { type: 'integer', minimum: 0, maximum: 1000 },
          blockTimeMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
          commitment: { enum: ['processed', 'confirmed', 'finalized'] },
          maxFrameBytes: { type: 'integer', minimum: 65_536, maximum: 268_435_456 },
        },
      },
    },
    delivery: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        timeoutMs: { type: 'integer', minimum: 100, maximum: 120_000, default: 10_000 },
        retrySchedule: {
          type: 'array', minItems: 0, maxItems: 50,
          items: { type: 'string', pattern: DURATION_PATTERN },
          default: ['5s', '5m', '30m', '2h', '5h', '10h', '14h', '20h', '24h'],
        },
        maxConcurrencyPerUrl: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
        concurrency: { type: 'integer', minimum: 1, maximum: 5000, default: 100 },
        disableAfter: { type: 'string', pattern: DURATION_PATTERN, default: '24h' },
        payloadRetention: { type: 'string', pattern: DURATION_PATTERN, default: '24h' },
        recordRetention: { type: 'string', pattern: DURATION_PATTERN, default: '7d' },
        failedRetention: { type: 'string', pattern: DURATION_PATTERN, default: '14d' },
      },
    },
    alerts: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'secret'],
      properties: {
        url: { type: 'string', pattern: '^https?://', maxLength: 2048 },
        secret: { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]{16,}={0,2}$' },
      },
    },
    stream: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        retention: { type: 'string', pattern: DURATION_PATTERN, default: '24h' },
        maxConnectionsPerTenant: { type: 'integer', minimum: 1, maximum: 10_000, default: 20 },
        maxBufferedBytes: { type: 'integer', minimum: 1024, maximum: 1_073_741_824, default: 8 * 1024 * 1024 },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        rateLimitPerSecond: { type: 'integer', minimum: 1, maximum: 100_000, default: 50 },
      },
    },
  },
} as const
