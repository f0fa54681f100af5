/**
 * fast-check arbitraries from the JSON Schemas the routes publish in /openapi.json: `valid(schema)`
 * draws values the schema accepts (mostly: formats are only approximated), `mutated(schema)`
 * mixes those with the near misses a fuzzer should try: a wrong type, an unknown field, a
 * required field left out, a bound passed by one, or any JSON at all. Only the keywords the
 * routes use are understood; others are ignored. `hints` give, by property name, values no
 * schema can guess (a configured chain id, a URL that answers).
 */
import fc from 'fast-check'
import { base58 } from '@scure/base'
import { SOLANA_PUBKEY_FORMAT, SOLANA_SIGNATURE_FORMAT } from '../../src/domain/watch-types.js'

export type Schema = Record<string, unknown>
export type Hints = Readonly<Record<string, fc.Arbitrary<unknown>>>

const MAX_ITEMS = 4
const MAX_DEPTH = 5
const ABSENT = Symbol('absent')

const asSchemas = (v: unknown): Schema[] => (Array.isArray(v) ? (v as Schema[]) : [])

/** `schema` with one branch of its oneOf/anyOf folded in (properties and required merged). */
function withBranch(schema: Schema, branch: Schema): Schema {
  const { oneOf: _oneOf, anyOf: _anyOf, ...base } = schema
  return {
    ...base, ...branch,
    properties: { ...(base.properties as Schema | undefined), ...(branch.properties as Schema | undefined) },
    required: [...asSchemas(base.required), ...asSchemas(branch.required)],
  }
}

function stringOf(schema: Schema): fc.Arbitrary<string> {
  const maxLength = typeof schema.maxLength === 'number' ? Math.min(schema.maxLength, 64) : 32
  const minLength = typeof schema.minLength === 'number' ? schema.minLength : 0
  if (typeof schema.pattern === 'string') {
    return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= minLength && s.length <= (schema.maxLength as number ?? Infinity))
  }
  if (schema.format === 'uri') return fc.webUrl({ withQueryParameters: true })
  if (schema.format === SOLANA_PUBKEY_FORMAT) return fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => base58.encode(b))
  if (schema.format === SOLANA_SIGNATURE_FORMAT) return fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => base58.encode(b))
  if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
  return fc.string({ minLength, maxLength: Math.max(minLength, maxLength), unit: 'binary' })
}

function typed(type: string, schema: Schema, depth: number, hints: Hints): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': return stringOf(schema)
    case 'integer': {
      const min = typeof schema.minimum === 'number' ? schema.minimum : -1_000_000
      const max = typeof schema.maximum === 'number' ? Math.min(schema.maximum, Number.MAX_SAFE_INTEGER) : 1_000_000
      return fc.oneof(fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) }), fc.constantFrom(min, max))
    }
    case 'number': return fc.double({ noNaN: true, noDefaultInfinity: true })
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': {
      const items = (schema.items as Schema | undefined) ?? {}
      const minLength = typeof schema.minItems === 'number' ? schema.minItems : 0
      const maxLength = Math.max(minLength, Math.min(typeof schema.maxItems === 'number' ? schema.maxItems : MAX_ITEMS, MAX_ITEMS))
      return fc.array(valid(items, hints, depth + 1), { minLength, maxLength })
    }
    case 'object': return objectOf(schema, depth, hints)
    default: return fc.jsonValue({ maxDepth: 2 })
  }
}

function objectOf(schema: Schema, depth: number, hints: Hints): fc.Arbitrary<Record<string, unknown>> {
  const properties = (schema.properties as Record<string, Schema> | undefined) ?? {}
  const required = asSchemas(schema.required) as unknown as string[]
  const names = Object.keys(properties)
  if (names.length === 0 && schema.additionalProperties !== false) {
    return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: MAX_ITEMS })
  }
  // An optional field is present one time in four: many only fit some inputs (a chain's type), so
  // bodies with all of them would almost never be accepted.
  const model = Object.fromEntries(names.map((name) => {
    const value = hints[name] ?? valid(properties[name]!, hints, depth + 1)
    return [name, required.includes(name) ? value : fc.oneof({ arbitrary: fc.constant(ABSENT), weight: 3 }, { arbitrary: value, weight: 1 })]
  }))
  return fc.record(model).map((object) => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== ABSENT)))
}

/** Values `schema` accepts. */
export function valid(schema: Schema, hints: Hints = {}, depth = 0): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]))
  const branches = asSchemas(schema.oneOf ?? schema.anyOf)
  if (branches.length > 0) return fc.oneof(...branches.map((branch) => valid(withBranch(schema, branch), hints, depth)))
  if (depth > MAX_DEPTH) return fc.constant(null)
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : typeof schema.type === 'string' ? [schema.type] : []
  if (types.length === 0) return schema.properties ? objectOf(schema, depth, hints) : fc.jsonValue({ maxDepth: 2 })
  return fc.oneof(...types.map((type) => typed(type, schema, depth, hints)))
}

/** Values one step off `schema`: what a careless or hostile client sends. */
function nearMiss(schema: Schema, hints: Hints): fc.Arbitrary<unknown> {
  const misses: fc.Arbitrary<unknown>[] = [fc.anything({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 })]
  if (schema.type === 'object' || schema.properties) {
    const object = valid(schema, hints).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v))
    misses.push(
      fc.tuple(object, fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })).map(([v, k, x]) => ({ ...v, [k]: x })),
      fc.tuple(object, fc.nat()).map(([v, i]) => {
        const keys = Object.keys(v)
        if (keys.length === 0) return v
        const { [keys[i % keys.length]!]: _dropped, ...rest } = v
        return rest
      }),
      fc.tuple(object, fc.nat(), fc.anything({ maxDepth: 2 })).map(([v, i, x]) => {
        const keys = Object.keys(v)
        return keys.length === 0 ? v : { ...v, [keys[i % keys.length]!]: x }
      }),
    )
  }
  if (typeof schema.maximum === 'number') misses.push(fc.constant(schema.maximum + 1))
  if (typeof schema.minimum === 'number') misses.push(fc.constant(schema.minimum - 1))
  if (typeof schema.maxLength === 'number') misses.push(fc.constant('x'.repeat(schema.maxLength + 1)))
  return fc.oneof(...misses)
}

/** Mostly valid values, often near misses. */
export function mutated(schema: Schema, hints: Hints = {}): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid(schema, hints), weight: 3 }, { arbitrary: nearMiss(schema, hints), weight: 2 })
}
