/**
 * The `subscriber` role: one ChainRunner per configured chain, each with the node connection of
 * its chain type and the per-chain lease that makes one process the chain's active subscriber
 * (docs/architecture.md, "Subscriber"). `close()` (SIGTERM) stops every chain (the cursor is saved
 * as each chunk is queued), frees their leases for a standby at once, then closes the wiring.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { EvmChainDeps } from '../src/chains/evm/evm-chain.js'
import { EvmChain } from '../src/chains/evm/evm-chain.js'
import { SolanaChain, type SolanaChainDeps } from '../src/chains/solana/solana-chain.js'
import type { ChainType, Config } from '../src/config/config.js'
import type { Logger } from '../src/logger.js'
import type { Metrics } from '../src/metrics.js'
import type { RunningRole } from '../src/roles.js'
import { ChainRunner, DEFAULT_LEASE_TIMING, type ChainDriver, type ChainDriverDeps, type LeaseTiming } from '../src/subscriber/chain-runner.js'
import { ChainLease } from '../src/subscriber/lease.js'
import { wire } from '../src/wiring.js'

export interface SubscriberRoleOptions {
  lease?: LeaseTiming
  /** EVM tuning for tests: small watchdog, ping and backoff, small chunks. */
  evm?: Pick<EvmChainDeps, 'socket' | 'follower'>
  /** Solana tuning for tests: small backoff and gap-recovery retry delays. */
  solana?: Pick<SolanaChainDeps, 'socket' | 'gapRetryDelaysMs'>
}

export interface RunningSubscriber extends RunningRole {
  /** Undefined when every chain this process leads or stands by for has a live node connection. */
  notReadyReason(): string | undefined
  readonly chains: ReadonlyMap<string, ChainRunner>
  /** This process's metrics (tests read them). */
  readonly metrics: Metrics
}

/** One driver per chain type, built from the same chain-generic deps plus its test tuning. */
const DRIVERS: Record<ChainType, (deps: ChainDriverDeps, options: SubscriberRoleOptions) => ChainDriver> = {
  evm: (deps, options) => new EvmChain({ ...deps, ...options.evm }),
  solana: (deps, options) => new SolanaChain({ ...deps, ...options.solana }),
}

export async function startSubscriber(config: Config, logger: Logger, options: SubscriberRoleOptions = {}): Promise<RunningSubscriber> {
  const wiring = wire(config, 'subscriber', logger)
  const { redis, keys, metrics, deliveryQueue, watches: store, watchService: watches } = wiring
  const timing = options.lease ?? DEFAULT_LEASE_TIMING
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`

  const chains = new Map<string, ChainRunner>()
  for (const chain of config.chains) {
    // Exposed at 0 from the start, so a dashboard or alert on it finds the series before the first reconnect.
    metrics.wsReconnects.inc({ chain: chain.id }, 0)
    const chainLogger = logger.child({ chain: chain.id })
    const driver = DRIVERS[chain.type]({ chain, redis, keys, store, watches, deliveryQueue, metrics, logger: chainLogger }, options)
    const lease = new ChainLease(redis, keys.chainLease(chain.id), owner, timing.ttlMs)
    chains.set(chain.id, new ChainRunner(driver, lease, timing.pollMs, chainLogger))
  }
  for (const runner of chains.values()) runner.start()
  wiring.metricsPublisher.start((err) => logger.warn({ err }, 'could not publish metrics'))
  logger.info({ chains: [...chains.keys()], owner }, 'subscriber started')

  let closing: Promise<void> | undefined
  return {
    name: 'subscriber',
    chains,
    metrics,
    notReadyReason: () => {
      const reasons = [...chains.values()].map((r) => r.driver.notReadyReason()).filter((r) => r !== undefined)
      return reasons.length > 0 ? reasons.join('; ') : undefined
    },
    close: () => {
      closing ??= (async () => {
        await Promise.all([...chains.values()].map((runner) =>
          runner.close().catch((err: unknown) => logger.error({ err, chain: runner.driver.chainId }, 'error while closing a chain'))))
        await wiring.close()
      })()
      return closing
    },
  }
}
