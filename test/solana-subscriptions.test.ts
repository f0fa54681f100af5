import t from 'tap'
import type { Watch } from '../src/domain/watch-types.js'
import { webhookId } from '../src/domain/ids.js'
import {
  slotSubscription, subscriptionOf, SubscriptionRegistry, type SolanaWatch,
} from '../src/chains/solana/subscriptions.js'
import { isRejection, matchedEvents, parseNotification, type SolanaNotification } from '../src/chains/solana/notifications.js'
import { parseSolanaJson } from '../src/chains/solana/json.js'
import { solanaFixture } from './helpers/solana-node.js'

const ACCOUNT = 'CM78CPUeXjn8o3yroDHxUtKsZZgoy4GPkPPXfouKNH12'
const PROGRAM = '11111111111111111111111111111111'
const SIGNATURE = '2EBVM6cB8vAAD93Ktr6Vd8p67XPbQzCJX47MpReuiCXJAtcjaxpvWpcg9Ege1Nr5Tk3a2GFrByT7WPBjdsTycY9b'

function watch(id: string, type: SolanaWatch['type'], filter: unknown, extra: Partial<Watch> = {}): SolanaWatch {
  return {
    id, tenantId: 'ten_a', chain: 'sol', type, filter, url: 'https://example.com/hook', status: 'active',
    createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...extra,
  } as SolanaWatch
}

t.test('each watch type maps to its documented subscribe request, with the commitment in it', async (t) => {
  const request = (w: SolanaWatch) => {
    const s = subscriptionOf(w, 'finalized')
    return [s.method, s.params, s.unsubscribeMethod]
  }
  t.same(request(watch('w1', 'solana.account', { account: ACCOUNT })),
    ['accountSubscribe', [ACCOUNT, { commitment: 'finalized', encoding: 'base64' }], 'accountUnsubscribe'])
  t.same(request(watch('w2', 'solana.account', { account: ACCOUNT, encoding: 'jsonParsed' }, { commitment: 'processed' })),
    ['accountSubscribe', [ACCOUNT, { commitment: 'processed', encoding: 'jsonParsed' }], 'accountUnsubscribe'])
  t.same(request(watch('w3', 'solana.program', { programId: PROGRAM, filters: [{ dataSize: 80 }, { memcmp: { offset: 4, bytes: '3Mc6vR' } }] })),
    ['programSubscribe', [PROGRAM, { commitment: 'finalized', encoding: 'base64', filters: [{ dataSize: 80 }, { memcmp: { offset: 4, bytes: '3Mc6vR' } }] }], 'programUnsubscribe'])
  t.same(request(watch('w4', 'solana.logs', { mentions: [ACCOUNT] })),
    ['logsSubscribe', [{ mentions: [ACCOUNT] }, { commitment: 'finalized' }], 'logsUnsubscribe'])
  t.same(request(watch('w5', 'solana.logs', { all: true }, { commitment: 'confirmed' })),
    ['logsSubscribe', ['all', { commitment: 'confirmed' }], 'logsUnsubscribe'])
  t.same(request(watch('w6', 'solana.signature', { signature: SIGNATURE })),
    ['signatureSubscribe', [SIGNATURE, { commitment: 'finalized' }], 'signatureUnsubscribe'])
  t.same(request(watch('w7', 'solana.slot', {}, { commitment: 'processed' })), ['slotSubscribe', [], 'slotUnsubscribe'])
})

t.test('identical requests share one key whatever the field order; another commitment does not', async (t) => {
  const a = subscriptionOf(watch('a', 'solana.account', { encoding: 'base64', account: ACCOUNT }), 'confirmed')
  const b = subscriptionOf(watch('b', 'solana.account', { account: ACCOUNT }), 'confirmed')
  const c = subscriptionOf(watch('c', 'solana.account', { account: ACCOUNT }, { commitment: 'finalized' }), 'confirmed')
  t.equal(a.key, b.key)
  t.not(a.key, c.key)
  t.equal(subscriptionOf(watch('s', 'solana.slot', {}), 'confirmed').key, slotSubscription('finalized').key)
})

t.test('the registry opens a subscription for its first holder and closes it after its last', async (t) => {
  const registry = new SubscriptionRegistry()
  const first = subscriptionOf(watch('a', 'solana.account', { account: ACCOUNT }), 'confirmed')
  const keys = (list: { key: string }[]) => list.map((s) => s.key)

  t.same(keys(registry.put('a', first).open), [first.key])
  t.same(registry.put('b', first), { open: [], close: [] }, 'a second watch shares it')
  t.same(registry.put('b', first), { open: [], close: [] }, 'an unchanged watch changes nothing')
  t.same(registry.holdersOf(first.key).sort(), ['a', 'b'])
  t.same(registry.remove('a'), { open: [], close: [] }, 'one holder left')

  const other = subscriptionOf(watch('b', 'solana.account', { account: ACCOUNT }, { commitment: 'finalized' }), 'confirmed')
  const moved = registry.put('b', other)
  t.same([keys(moved.open), keys(moved.close)], [[other.key], [first.key]], 'a changed watch moves, the old one closes')
  t.same(keys(registry.remove('b').close), [other.key])
  t.same([registry.holdersOf(first.key), registry.holdersOf(other.key)], [[], []], 'nothing held after the last holder left')
  t.same(keys(registry.put('c', first).open), [first.key], 'so the next holder opens it again')
  t.same(registry.remove('never-held'), { open: [], close: [] })
})

t.test('a subscription the node ended is forgotten with every holder, nothing to close', async (t) => {
  const registry = new SubscriptionRegistry()
  const sub = subscriptionOf(watch('a', 'solana.signature', { signature: SIGNATURE }), 'confirmed')
  registry.put('a', sub)
  registry.put('b', sub)
  t.same(registry.forget(sub.key).sort(), ['a', 'b'])
  t.same(registry.remove('a'), { open: [], close: [] })
  t.same(keys(registry.put('a', sub).open), [sub.key], 'watching it again subscribes again')
  function keys(list: { key: string }[]) { return list.map((s) => s.key) }
})

t.test('the documentation\'s notifications parse; malformed ones are rejected with a code', async (t) => {
  const result = (name: string) => solanaFixture(name).params.result
  t.same(parseNotification('accountSubscribe', result('account-notification')),
    { slot: 5199307, value: result('account-notification').value })
  t.same(parseNotification('programSubscribe', result('program-notification')),
    { slot: 5208469, value: result('program-notification').value })
  t.same(parseNotification('logsSubscribe', result('logs-notification')), { slot: 5208469, value: result('logs-notification').value })
  t.same(parseNotification('signatureSubscribe', result('signature-notification')), { slot: 5207624, value: { err: null } })
  t.same(parseNotification('slotSubscribe', result('slot-notification')), { slot: 76, value: { parent: 75, root: 44, slot: 76 } })

  const rejected = (method: Parameters<typeof parseNotification>[0], value: unknown) => {
    const parsed = parseNotification(method, value)
    return isRejection(parsed) ? parsed.code : 'accepted'
  }
  t.equal(rejected('accountSubscribe', null), 'BH_SOLANA_MALFORMED_NOTIFICATION')
  t.equal(rejected('accountSubscribe', { value: {} }), 'BH_SOLANA_MALFORMED_NOTIFICATION', 'no context')
  t.equal(rejected('accountSubscribe', { context: { slot: -1 }, value: {} }), 'BH_SOLANA_MALFORMED_NOTIFICATION')
  t.equal(rejected('logsSubscribe', { context: { slot: 1 }, value: { err: null } }), 'BH_SOLANA_MALFORMED_NOTIFICATION', 'no signature')
  t.equal(rejected('programSubscribe', { context: { slot: 1 }, value: { pubkey: ACCOUNT } }), 'BH_SOLANA_MALFORMED_NOTIFICATION')
  t.equal(rejected('slotSubscribe', { parent: 1 }), 'BH_SOLANA_MALFORMED_NOTIFICATION')
  t.equal(rejected('signatureSubscribe', result('signature-notification-received')), 'BH_SOLANA_NOT_TERMINAL')
})

t.test('events carry {slot, value} as sent and ids named by watch and event', async (t) => {
  const a = watch('wch_a', 'solana.logs', { mentions: [ACCOUNT] })
  const b = watch('wch_b', 'solana.logs', { mentions: [ACCOUNT] })
  const n = parseNotification('logsSubscribe', solanaFixture('logs-notification').params.result) as SolanaNotification
  const events = matchedEvents('solana.logs', n, [a, b], 1_700_000_000_000)
  const signature = (n.value as { signature: string }).signature
  t.same(events.map((e) => e.id), [
    webhookId('wch_a', ['sol', 'solana.logs', 5208469, signature]),
    webhookId('wch_b', ['sol', 'solana.logs', 5208469, signature]),
  ])
  t.same(events[0]!.data, { slot: 5208469, value: n.value })
  t.equal(events[0]!.timestamp, new Date(1_700_000_000_000).toISOString())
  t.same(matchedEvents('solana.logs', n, [a], 1)[0]!.id, events[0]!.id, 'the same event, the same id')

  const account = watch('wch_c', 'solana.account', { account: ACCOUNT })
  const later = matchedEvents('solana.account', { slot: 2, value: {} }, [account], 1)[0]!
  const earlier = matchedEvents('solana.account', { slot: 1, value: {} }, [account], 1)[0]!
  t.not(later.id, earlier.id, 'account events differ by slot')
  const recovered = matchedEvents('solana.logs', { ...n, blockTime: 1_763_747_336 }, [a], 1)[0]!
  t.equal(recovered.id, events[0]!.id, 'a recovered transaction has the id its notification would have had')
  t.equal(recovered.timestamp, '2025-11-21T17:48:56.000Z')
})

t.test('u64 values beyond 2^53 parse to their exact decimal string; everything else as JSON.parse does', async (t) => {
  const text = '{"rentEpoch":18446744073709551615,"safe":9007199254740991,"unsafe":9007199254740993,' +
    '"negative":-18446744073709551615,"float":1.5e300,"list":[12345678901234567890, 1],' +
    '"inString":"18446744073709551615","escaped":"a\\"18446744073709551615\\"b","after":18446744073709551616}'
  t.same(parseSolanaJson(text), {
    rentEpoch: '18446744073709551615', safe: 9007199254740991, unsafe: '9007199254740993',
    negative: '-18446744073709551615', float: 1.5e300, list: ['12345678901234567890', 1],
    inString: '18446744073709551615', escaped: 'a"18446744073709551615"b', after: '18446744073709551616',
  })
  const plain = JSON.stringify(solanaFixture('program-notification'))
  t.same(parseSolanaJson(plain), JSON.parse(plain))
  t.throws(() => parseSolanaJson('{"a":18446744073709551615'), SyntaxError, 'malformed text still fails to parse')
})
