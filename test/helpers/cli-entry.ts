/** `blockhook` run from the TypeScript sources (no build), for tests that spawn the CLI. */
import { main } from '../../src/cli.js'

await main(process.argv.slice(2))
