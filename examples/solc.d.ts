/** The part of solc-js (which ships no types) that compile-token.ts uses. */
declare module 'solc' {
  interface Solc {
    version(): string
    compile(input: string, callbacks?: { import(path: string): { contents: string } | { error: string } }): string
  }
  const solc: Solc
  export default solc
}
