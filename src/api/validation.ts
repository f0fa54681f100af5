/**
 * The ajv instances behind every route schema, and the error text they produce. Bodies are
 * validated without type coercion (`"confirmations": "12"` is a wrong type, 400); querystrings
 * and path parameters arrive as strings and are coerced. Unknown fields are errors, never
 * silently stripped (Fastify's default).
 */
import { Ajv, type ErrorObject, type Options as AjvOptions, type SchemaValidateFunction, type ValidateFunction } from 'ajv'
import ajvFormats from 'ajv-formats'
import { registerChainFormats } from '../domain/formats.js'
import { filterSchemas, WATCH_TYPES, type WatchType } from '../domain/watch-types.js'

const BASE_AJV_OPTIONS: AjvOptions = {
  useDefaults: true,
  removeAdditional: false,
  allErrors: false,
  strict: false,
  discriminator: true,
}

function buildAjv(options: AjvOptions): Ajv {
  const ajv = new Ajv({ ...BASE_AJV_OPTIONS, ...options })
  ajvFormats.default(ajv)
  return registerChainFormats(ajv)
}

export const bodyAjv = registerJsonBounds(buildAjv({ coerceTypes: false }))
export const urlAjv = buildAjv({ coerceTypes: 'array' })

/**
 * `x-maxDepth` bounds how deeply a free-form value (watch `metadata`) nests. Without it a body of
 * a few thousand nested objects is accepted, stored, and then overflows the stack of everything
 * that walks it again (the response serializer, answering 500 after the watch was saved).
 * Measured without recursion, so the check itself cannot overflow.
 */
function registerJsonBounds(ajv: Ajv): Ajv {
  const validateDepth: SchemaValidateFunction = (maxDepth: number, data: unknown) => {
    if (!exceedsDepth(data, maxDepth)) return true
    validateDepth.errors = [{ keyword: 'x-maxDepth', message: `must not nest deeper than ${maxDepth} levels`, params: { maxDepth } }]
    return false
  }
  ajv.addKeyword({ keyword: 'x-maxDepth', schemaType: 'number', errors: true, validate: validateDepth })
  return ajv
}

function exceedsDepth(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }]
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth > maxDepth) return true
    for (const child of Object.values(v)) stack.push({ value: child, depth: depth + 1 })
  }
  return false
}

const COMBINATORS = new Set(['anyOf', 'oneOf', 'if'])

/**
 * With `anyOf`/`oneOf` ajv reports every branch's failure; the deepest one names the field best
 * (`/filter/topics/0/0 must match pattern …` rather than `/filter/topics/0 must be null`).
 */
function mostSpecific(errors: readonly ErrorObject[]): string[] {
  const leaves = errors.filter((e) => !COMBINATORS.has(e.keyword))
  if (leaves.length === 0) return errors.filter((e) => e.keyword !== 'if').map((e) => `${e.instancePath} ${e.message ?? 'is invalid'}`)
  const deepest = Math.max(...leaves.map((e) => e.instancePath.length))
  const atDeepest = leaves.filter((e) => e.instancePath.length === deepest)
  const first = atDeepest[0]!
  if (atDeepest.length > 1 && atDeepest.every((e) => e.keyword === 'required')) {
    const names = atDeepest.map((e) => `'${String(e.params.missingProperty)}'`).join(' or ')
    return [`${first.instancePath} must have property ${names}`]
  }
  if (first.keyword === 'additionalProperties') {
    return [`${first.instancePath}/${String(first.params.additionalProperty)} is not a known field`]
  }
  if (first.keyword === 'enum') {
    const allowed = (first.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')
    return [`${first.instancePath} must be one of ${allowed}`]
  }
  return [`${first.instancePath} ${first.message ?? 'is invalid'}`]
}

/** Fastify's readable form, `body/filter/address must match pattern "…"`, one message per failure. */
export function formatValidationErrors(errors: readonly ErrorObject[], dataVar: string): string {
  return mostSpecific(errors).map((text) => `${dataVar}${text}`).join(', ')
}

const filterValidators = Object.fromEntries(
  WATCH_TYPES.map((type) => [type, bodyAjv.compile(filterSchemas[type])]),
) as Record<WatchType, ValidateFunction>

/**
 * Checks a filter against its type's schema, for the API and for the subscriber re-checking what
 * it loads; the message names the field under `dataVar`.
 */
export function filterError(type: WatchType, filter: unknown, dataVar = 'body/filter'): string | undefined {
  const validate = filterValidators[type]
  return validate(filter) ? undefined : formatValidationErrors(validate.errors ?? [], dataVar)
}
