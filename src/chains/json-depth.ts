/**
 * Nesting depth of a JSON text, measured before it is parsed. Nothing a node legitimately sends
 * nests deeply (an EVM block with access lists is about 6 levels, Solana's jsonParsed accounts
 * stay well under 32), while a frame of millions of brackets would make everything that later
 * walks the parsed value (serializers, loggers) recurse until the stack overflows.
 */
export const MAX_NODE_JSON_DEPTH = 64

/** True when `text` nests arrays/objects deeper than `maxDepth`; brackets inside strings don't count. */
export function jsonDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // Jump to the end of the string literal: the next quote not escaped by a backslash.
      let end = text.indexOf('"', i + 1)
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1)
      if (end === -1) return false
      i = end
    } else if (c === 91 || c === 123) {
      if (++depth > maxDepth) return true
    } else if (c === 93 || c === 125) {
      depth--
    }
  }
  return false
}

/** Whether the character at `at` follows an odd run of backslashes. */
function isEscaped(text: string, at: number): boolean {
  let backslashes = 0
  for (let j = at - 1; j >= 0 && text.charCodeAt(j) === 92; j--) backslashes++
  return backslashes % 2 === 1
}
