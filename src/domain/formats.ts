import { base58 } from '@scure/base'
import type { Ajv } from 'ajv'
import { SOLANA_PUBKEY_FORMAT, SOLANA_SIGNATURE_FORMAT } from './watch-types.js'

function base58OfLength(bytes: number) {
  return (text: string): boolean => {
    if (text.length > 88) return false
    try {
      return base58.decode(text).length === bytes
    } catch {
      return false // not base58: the schema reports the format mismatch
    }
  }
}

/** The ajv formats the watch filter schemas use; fastify's ajv and the subscriber's both get them. */
export function registerChainFormats(ajv: Ajv): Ajv {
  ajv.addFormat(SOLANA_PUBKEY_FORMAT, { type: 'string', validate: base58OfLength(32) })
  ajv.addFormat(SOLANA_SIGNATURE_FORMAT, { type: 'string', validate: base58OfLength(64) })
  return ajv
}
