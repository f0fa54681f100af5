/**
 * The one place that reads the environment and the config file: defaults, then the
 * file, then the environment, validated once and deep-frozen. Everything else receives a Config.
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import { BlockhookError } from '../domain/errors.js'
import { configFileSchema } from './config-schema.js'
import { parseDurationMs } from './duration.js'

export type ChainType = 'evm' | 'solana'
export type Commitment = 'processed' | 'confirmed' | 'finalized'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface ChainConfig {
  readonly id: string
  readonly type: ChainType
  readonly ws: readonly string[]
  readonly http: readonly string[]
  /** Default confirmations of EVM watches on this chain. */
  readonly confirmations: number
  readonly blockTimeMs: number
  /** Default commitment of Solana watches on this chain. */
  readonly commitment: Commitment
  /** Largest WebSocket frame accepted from this chain's nodes (a bigger one drops the connection). */
  readonly maxFrameBytes: number
  /**
   * The node's chain may be new each run (`blockhook dev`): on another chain id or genesis, start
   * again from its head instead of stopping.
   */
  readonly newChainEachRun?: boolean
}

/** Large enough for the receipts of a full mainnet block or a 10 MiB Solana account in base64. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024

export interface DeliveryConfig {
  readonly timeoutMs: number
  readonly retryScheduleMs: readonly number[]
  readonly maxConcurrencyPerUrl: number
  /** Jobs one worker process runs at once. */
  readonly concurrency: number
  /** A watch whose deliveries have all failed this long is disabled. */
  readonly disableAfterMs: number
  /** How long a delivered (or cancelled) record keeps its payload. */
  readonly payloadRetentionMs: number
  /** How long a delivered (or cancelled) record is kept. */
  readonly recordRetentionMs: number
  /** How long a failed record, payload included, is kept (so a retry still works). */
  readonly failedRetentionMs: number
}

export interface AlertsConfig {
  readonly url: string
  /** `whsec_…`: alerts are signed as Standard Webhooks under it. */
  readonly secret: string
}

export interface StreamConfig {
  /** How far back a stream client can resume; the event log keeps this much. */
  readonly retentionMs: number
  readonly maxConnectionsPerTenant: number
  /** A client this far behind (bytes queued on its socket) is closed with 1013. */
  readonly maxBufferedBytes: number
}

export interface Config {
  readonly redisUrl: string
  /** `REDIS_CLUSTER=true`: `redisUrl` lists cluster nodes, each in `redisClusterNodes`. */
  readonly redisCluster: boolean
  readonly redisClusterNodes: readonly string[]
  /** Every Redis key's hash tag starts with it (src/storage/keys.ts). */
  readonly redisPrefix: string
  readonly host: string
  readonly port: number
  readonly adminToken: string
  readonly allowPrivateUrls: boolean
  readonly encryptionKey: Buffer | undefined
  readonly logLevel: LogLevel
  readonly rateLimitPerSecond: number
  readonly chains: readonly ChainConfig[]
  readonly delivery: DeliveryConfig
  /** Where operator alerts go, signed under `secret`; undefined: no alerts. */
  readonly alerts: AlertsConfig | undefined
  readonly stream: StreamConfig
  /** Origins (`scheme://host[:port]`), besides the API's own, that may open the event stream. */
  readonly allowedOrigins: readonly string[]
  readonly configPath: string
  readonly dev: boolean
}

export class ConfigError extends BlockhookError {
  constructor(message: string) {
    super('BH_CONFIG_INVALID', message, 500)
    this.name = 'ConfigError'
  }
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const DEFAULT_CONFIG_PATH = './blockhook.config.json'
const DEFAULT_BLOCK_TIME_MS: Record<ChainType, number> = { evm: 12_000, solana: 400 }

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true })
const validateConfigFile = ajv.compile(configFileSchema)

type Env = Record<string, string | undefined>

export interface LoadConfigOptions {
  /** `blockhook dev` relaxes the admin token rule and supplies its own chain. */
  dev?: boolean
  /** Used instead of reading a file (tests, dev mode). */
  file?: unknown
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const at = e.instancePath || '(root)'
      if (e.keyword === 'additionalProperties') {
        return `${at}/${String(e.params.additionalProperty)} is not a known field`
      }
      return `${at} ${e.message ?? 'is invalid'}`
    })
    .join('; ')
}

function readConfigFile(path: string, explicit: boolean): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError(`BLOCKHOOK_CONFIG: cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`)
  }
}

function envInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
  }
  return value
}

function envBoolean(env: Env, name: string): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '' || raw === 'false') return false
  if (raw === 'true') return true
  throw new ConfigError(`${name} must be "true" or "false", got "${raw}"`)
}

/** REDIS_URL under REDIS_CLUSTER=true: comma-separated `redis://[user:password@]host:port` of cluster nodes. */
function clusterNodeUrls(raw: string): string[] {
  const urls = raw.split(',').map((part) => part.trim())
  for (const url of urls) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined
    if (parsed?.protocol !== 'redis:' || parsed.hostname === '' || parsed.port === '' || !['', '/'].includes(parsed.pathname)) {
      throw new ConfigError(`REDIS_URL with REDIS_CLUSTER=true must be comma-separated redis://host:port URLs of cluster nodes, got "${url}"`)
    }
  }
  return urls
}

function envEncryptionKey(env: Env): Buffer | undefined {
  const raw = env.BLOCKHOOK_ENCRYPTION_KEY
  if (raw === undefined || raw === '') return undefined
  const key = Buffer.from(raw, 'base64')
  if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, '')) {
    throw new ConfigError('BLOCKHOOK_ENCRYPTION_KEY must be 32 bytes encoded as base64')
  }
  return key
}

/** BLOCKHOOK_ALLOWED_ORIGINS: comma-separated origins, each normalized as a browser sends it. */
function envOrigins(env: Env): string[] {
  const raw = env.BLOCKHOOK_ALLOWED_ORIGINS ?? ''
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((text) => {
    let origin: string | undefined
    try {
      const url = new URL(text)
      if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text.replace(/\/$/, '')) origin = url.origin
    } catch {
      origin = undefined
    }
    if (!origin) throw new ConfigError(`BLOCKHOOK_ALLOWED_ORIGINS: "${text}" is not an origin like https://app.example.com`)
    return origin
  })
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const dev = options.dev ?? false
  const configPath = env.BLOCKHOOK_CONFIG || DEFAULT_CONFIG_PATH
  const file = structuredClone(options.file ?? readConfigFile(configPath, Boolean(env.BLOCKHOOK_CONFIG)))
  if (!validateConfigFile(file)) {
    throw new ConfigError(`${configPath}: ${describe(validateConfigFile.errors)}`)
  }
  const fileConfig = file as {
    chains: Array<{ id: string; type: ChainType; ws: string[]; http?: string[]; confirmations?: number; blockTimeMs?: number; commitment?: Commitment; maxFrameBytes?: number }>
    delivery: { timeoutMs: number; retrySchedule: string[]; maxConcurrencyPerUrl: number; concurrency: number; disableAfter: string; payloadRetention: string; recordRetention: string; failedRetention: string }
    stream: { retention: string; maxConnectionsPerTenant: number; maxBufferedBytes: number }
    api: { rateLimitPerSecond: number }
    alerts?: AlertsConfig
  }

  const seen = new Set<string>()
  for (const [i, chain] of fileConfig.chains.entries()) {
    if (seen.has(chain.id)) throw new ConfigError(`${configPath}: /chains/${i}/id "${chain.id}" is used twice`)
    seen.add(chain.id)
  }

  const adminToken = env.BLOCKHOOK_ADMIN_TOKEN ?? ''
  if (!dev && adminToken.length < 32) {
    throw new ConfigError('BLOCKHOOK_ADMIN_TOKEN is required and must be at least 32 characters')
  }

  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`)
  }

  const redisUrl = env.REDIS_URL || 'redis://127.0.0.1:6379'
  const redisCluster = envBoolean(env, 'REDIS_CLUSTER')
  const redisClusterNodes = redisCluster ? clusterNodeUrls(redisUrl) : []
  if (!redisCluster && !/^rediss?:\/\//.test(redisUrl)) throw new ConfigError('REDIS_URL must start with redis:// or rediss://')

  const config: Config = {
    redisUrl,
    redisCluster,
    redisClusterNodes,
    redisPrefix: 'blockhook',
    host: env.HOST || '0.0.0.0',
    port: envInteger(env, 'PORT', 3000, 0, 65535),
    adminToken,
    allowPrivateUrls: envBoolean(env, 'BLOCKHOOK_ALLOW_PRIVATE_URLS'),
    encryptionKey: envEncryptionKey(env),
    logLevel,
    rateLimitPerSecond: fileConfig.api.rateLimitPerSecond,
    chains: fileConfig.chains.map((c) => ({
      id: c.id,
      type: c.type,
      ws: c.ws,
      http: c.http ?? [],
      confirmations: c.confirmations ?? 0,
      blockTimeMs: c.blockTimeMs ?? DEFAULT_BLOCK_TIME_MS[c.type],
      commitment: c.commitment ?? 'confirmed',
      maxFrameBytes: c.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      newChainEachRun: dev,
    })),
    alerts: fileConfig.alerts,
    delivery: {
      timeoutMs: fileConfig.delivery.timeoutMs,
      retryScheduleMs: fileConfig.delivery.retrySchedule.map(parseDurationMs),
      maxConcurrencyPerUrl: fileConfig.delivery.maxConcurrencyPerUrl,
      concurrency: fileConfig.delivery.concurrency,
      disableAfterMs: parseDurationMs(fileConfig.delivery.disableAfter),
      payloadRetentionMs: parseDurationMs(fileConfig.delivery.payloadRetention),
      recordRetentionMs: parseDurationMs(fileConfig.delivery.recordRetention),
      failedRetentionMs: parseDurationMs(fileConfig.delivery.failedRetention),
    },
    stream: {
      retentionMs: parseDurationMs(fileConfig.stream.retention),
      maxConnectionsPerTenant: fileConfig.stream.maxConnectionsPerTenant,
      maxBufferedBytes: fileConfig.stream.maxBufferedBytes,
    },
    allowedOrigins: envOrigins(env),
    configPath,
    dev,
  }
  return deepFreeze(config)
}
