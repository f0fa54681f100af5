import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const SEALED_PREFIX = 'aes256gcm:'

/**
 * Webhook secrets at rest (README, "Configuration"; docs/architecture.md, "Data and secrets"): sealed with AES-256-GCM when BLOCKHOOK_ENCRYPTION_KEY is
 * set, kept as they are otherwise. Sealed values name their scheme, so a key added later still
 * reads the plain values written before it.
 */
export class SecretBox {
  readonly #key: Buffer | undefined

  constructor(key: Buffer | undefined) {
    this.#key = key
  }

  seal(plain: string): string {
    if (!this.#key) return plain
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')
  }

  open(stored: string): string {
    if (!stored.startsWith(SEALED_PREFIX)) return stored
    if (!this.#key) throw new Error('a webhook secret is encrypted but BLOCKHOOK_ENCRYPTION_KEY is not set')
    const raw = Buffer.from(stored.slice(SEALED_PREFIX.length), 'base64')
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  }
}
