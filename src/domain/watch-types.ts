/**
 * The watch types (README, "Concepts"): their filter schemas (used by the API to validate, by the OpenAPI
 * document, and by the subscriber to check stored rules) and their TypeScript shapes.
 */
import type { ChainType, Commitment } from '../config/config.js'

export const EVM_ADDRESS_PATTERN = '^0x[0-9a-fA-F]{40}$'
export const EVM_TOPIC_PATTERN = '^0x[0-9a-fA-F]{64}$'
export const EVM_SELECTOR_PATTERN = '^0x[0-9a-fA-F]{8}$'
/** Custom ajv formats (registered by `registerChainFormats`): base58 of 32 and of 64 bytes. */
export const SOLANA_PUBKEY_FORMAT = 'solana-pubkey'
export const SOLANA_SIGNATURE_FORMAT = 'solana-signature'

/** Most addresses one watch may hold (README, "API tour", PATCH /watches/:id/addresses). */
export const MAX_WATCH_ADDRESSES = 100_000

const address = { type: 'string', pattern: EVM_ADDRESS_PATTERN } as const
const addressList = { type: 'array', maxItems: MAX_WATCH_ADDRESSES, items: address } as const
const topic = { type: 'string', pattern: EVM_TOPIC_PATTERN } as const
const pubkey = { type: 'string', format: SOLANA_PUBKEY_FORMAT } as const
const encoding = { enum: ['base64', 'jsonParsed'] } as const

export const filterSchemas = {
  'evm.logs': {
    type: 'object', additionalProperties: false,
    properties: {
      address: { anyOf: [address, { type: 'array', minItems: 1, maxItems: 1000, items: address }] },
      topics: {
        type: 'array', maxItems: 4,
        items: { anyOf: [topic, { type: 'null' }, { type: 'array', minItems: 1, maxItems: 100, items: topic }] },
      },
      abi: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', pattern: '^\\s*event\\s', maxLength: 2000 } },
    },
  },
  'evm.transactions': {
    type: 'object', additionalProperties: false,
    anyOf: [{ required: ['from'] }, { required: ['to'] }],
    properties: {
      from: addressList,
      to: addressList,
      status: { enum: ['success', 'failed', 'any'] },
      selector: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', pattern: EVM_SELECTOR_PATTERN } },
    },
  },
  'evm.address_activity': {
    type: 'object', additionalProperties: false, required: ['addresses'],
    properties: { addresses: addressList },
  },
  'evm.blocks': { type: 'object', additionalProperties: false, properties: {} },
  'evm.pending_transactions': {
    type: 'object', additionalProperties: false,
    properties: { from: addressList, to: addressList },
  },
  'solana.account': {
    type: 'object', additionalProperties: false, required: ['account'],
    properties: { account: pubkey, encoding },
  },
  'solana.program': {
    type: 'object', additionalProperties: false, required: ['programId'],
    properties: {
      programId: pubkey,
      encoding,
      filters: {
        type: 'array', maxItems: 4,
        items: {
          oneOf: [
            {
              type: 'object', additionalProperties: false, required: ['memcmp'],
              properties: {
                memcmp: {
                  type: 'object', additionalProperties: false, required: ['offset', 'bytes'],
                  properties: {
                    offset: { type: 'integer', minimum: 0, maximum: 10_485_760 },
                    bytes: { type: 'string', minLength: 1, maxLength: 175 },
                    encoding: { enum: ['base58', 'base64'] },
                  },
                },
              },
            },
            {
              type: 'object', additionalProperties: false, required: ['dataSize'],
              properties: { dataSize: { type: 'integer', minimum: 0, maximum: 10_485_760 } },
            },
          ],
        },
      },
    },
  },
  'solana.logs': {
    type: 'object', additionalProperties: false,
    oneOf: [{ required: ['mentions'] }, { required: ['all'] }],
    properties: {
      mentions: { type: 'array', minItems: 1, maxItems: 1, items: pubkey },
      all: { const: true },
    },
  },
  'solana.signature': {
    type: 'object', additionalProperties: false, required: ['signature'],
    properties: { signature: { type: 'string', format: SOLANA_SIGNATURE_FORMAT } },
  },
  'solana.slot': { type: 'object', additionalProperties: false, properties: {} },
} as const

export type WatchType = keyof typeof filterSchemas
export const WATCH_TYPES = Object.keys(filterSchemas) as WatchType[]

export function chainTypeOf(type: WatchType): ChainType {
  return type.startsWith('evm.') ? 'evm' : 'solana'
}

/** Watch types whose filter holds address lists that PATCH /watches/:id/addresses edits. */
export const ADDRESS_LIST_FIELDS: Partial<Record<WatchType, readonly ('addresses' | 'from' | 'to')[]>> = {
  'evm.address_activity': ['addresses'],
  'evm.transactions': ['from', 'to'],
}

export type TopicFilter = string | null | string[]

export interface EvmLogsFilter { address?: string | string[]; topics?: TopicFilter[]; abi?: string[] }
export interface EvmTransactionsFilter { from?: string[]; to?: string[]; status?: 'success' | 'failed' | 'any'; selector?: string[] }
export interface EvmAddressActivityFilter { addresses: string[] }
export type EvmBlocksFilter = Record<string, never>
export interface EvmPendingTransactionsFilter { from?: string[]; to?: string[] }
export interface SolanaAccountFilter { account: string; encoding?: 'base64' | 'jsonParsed' }
export type SolanaProgramFilterItem =
  | { memcmp: { offset: number; bytes: string; encoding?: 'base58' | 'base64' } }
  | { dataSize: number }
export interface SolanaProgramFilter { programId: string; encoding?: 'base64' | 'jsonParsed'; filters?: SolanaProgramFilterItem[] }
export type SolanaLogsFilter = { mentions: [string] } | { all: true }
export interface SolanaSignatureFilter { signature: string }
export type SolanaSlotFilter = Record<string, never>

export interface FilterByType {
  'evm.logs': EvmLogsFilter
  'evm.transactions': EvmTransactionsFilter
  'evm.address_activity': EvmAddressActivityFilter
  'evm.blocks': EvmBlocksFilter
  'evm.pending_transactions': EvmPendingTransactionsFilter
  'solana.account': SolanaAccountFilter
  'solana.program': SolanaProgramFilter
  'solana.logs': SolanaLogsFilter
  'solana.signature': SolanaSignatureFilter
  'solana.slot': SolanaSlotFilter
}

export type WatchStatus = 'active' | 'paused' | 'disabled' | 'completed'
export const WATCH_STATUSES: readonly WatchStatus[] = ['active', 'paused', 'disabled', 'completed']

interface WatchBase<T extends WatchType> {
  id: string
  tenantId: string
  chain: string
  type: T
  filter: FilterByType[T]
  /** Where webhooks go; a watch without one sends none (its events reach only the event stream). */
  url?: string
  status: WatchStatus
  /**
   * EVM: the first block the watch matches, the block after the chain's head when it was created
   * (an older block that the follower has not reached yet is not the user's to receive).
   */
  startBlock?: number
  /** EVM: `block` sends one `evm.batch` webhook per block with matches instead of one per event. */
  batch?: 'none' | 'block'
  /** At most one webhook in flight, sent in `sequence` order. */
  ordered?: boolean
  /** EVM only: resolved at creation from the chain's default when not given. */
  confirmations?: number
  /** Solana only: resolved at creation from the chain's default when not given. */
  commitment?: Commitment
  description?: string
  metadata?: Record<string, unknown>
  createdAt: string
  updatedAt: string
  /** Why blockhook disabled it (410, failing for too long). */
  disabledReason?: string
}

/** A stored watch rule, without its secret. */
export type Watch = { [T in WatchType]: WatchBase<T> }[WatchType]
export type WatchOf<T extends WatchType> = WatchBase<T>

/** Event types (README, "Concepts" and "The webhook"). */
export type EventType =
  | 'evm.log' | 'evm.log.removed'
  | 'evm.transaction' | 'evm.transaction.removed'
  | 'evm.activity' | 'evm.activity.removed'
  | 'evm.block' | 'evm.block.removed'
  | 'evm.batch' | 'evm.batch.removed'
  | 'evm.pending_transaction'
  | 'solana.account' | 'solana.program_account' | 'solana.logs' | 'solana.signature' | 'solana.slot'
  | 'webhook.test'
