/** Events the delivery benchmarks share. */
import type { MatchedEvent } from '../src/delivery/delivery-record.js'
import { webhookId } from '../src/domain/ids.js'

/** An evm.log-sized event (one ERC-20 Transfer): the same bodies for every run that compares two things. */
export function benchEvent(watchId: string, n: number, tenantId = 'ten_bench'): MatchedEvent {
  const hex = (width: number, seed: number) => '0x' + seed.toString(16).padStart(width, '0')
  return {
    id: webhookId(watchId, ['eth', hex(64, n), n, 'evm.log']),
    watchId, tenantId, chain: 'eth', type: 'evm.log',
    timestamp: '2026-11-22T10:00:00.000Z',
    data: {
      confirmations: 0, eventKey: `eth:${hex(64, n)}:0`,
      block: { number: 19_000_000 + n, hash: hex(64, n), timestamp: 1_763_800_000 },
      log: {
        address: hex(40, 0xa0b8), topics: [hex(64, 0xddf2), hex(64, n), hex(64, n + 1)], data: hex(64, 1000),
        blockNumber: '0x' + (19_000_000 + n).toString(16), blockHash: hex(64, n), transactionHash: hex(64, n * 3),
        transactionIndex: '0x0', logIndex: '0x0', removed: false,
      },
      decoded: { name: 'Transfer', args: { from: hex(40, n), to: hex(40, n + 1), value: '1000' } },
    },
    firstSeenAt: Date.now(),
  }
}

