/**
 * JSON.parse for Solana node messages that keeps u64 values exact. Accounts report `rentEpoch`
 * 18446744073709551615 (u64::MAX, every rent-exempt account), and lamports or token amounts can
 * pass 2^53 too; plain JSON.parse would round them and the webhook would carry a number the node
 * never sent. An integer beyond Number's safe range becomes its decimal string instead (README, "The webhook":
 * numbers that can exceed 2^53 are decimal strings); every other value parses as usual.
 */

/** 16+ digits in a row anywhere: only then can an unsafe integer be present (2^53 has 16). */
const LONG_DIGIT_RUN = /\d{16}/

const isDigit = (code: number) => code >= 48 && code <= 57
const isNumberChar = (code: number) => isDigit(code) || code === 46 || code === 101 || code === 69 || code === 43 || code === 45

/** The text with each unsafe integer literal (outside strings) put in quotes. */
export function quoteUnsafeIntegers(text: string): string {
  const parts: string[] = []
  let copiedUpTo = 0
  let i = 0
  while (i < text.length) {
    const code = text.charCodeAt(i)
    if (code === 34) {
      // Skip a string, escapes included.
      i++
      while (i < text.length) {
        const inner = text.charCodeAt(i)
        if (inner === 92) i += 2
        else if (inner === 34) { i++; break } else i++
      }
      continue
    }
    if (code === 45 || isDigit(code)) {
      const start = i
      i++
      while (i < text.length && isNumberChar(text.charCodeAt(i))) i++
      const literal = text.slice(start, i)
      if (/^-?\d{16,}$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
        parts.push(text.slice(copiedUpTo, start), '"', literal, '"')
        copiedUpTo = i
      }
      continue
    }
    i++
  }
  if (copiedUpTo === 0) return text
  parts.push(text.slice(copiedUpTo))
  return parts.join('')
}

export function parseSolanaJson(text: string): unknown {
  return JSON.parse(LONG_DIGIT_RUN.test(text) ? quoteUnsafeIntegers(text) : text)
}
