/**
 * Ordered watches: at most one webhook in flight per watch, in `sequence` order; a failing head
 * holds back only its own watch, and once its attempts are spent the next one goes. A real
 * worker and Redis, a receiver verifying every request with `standardwebhooks`.
 */
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import type { MatchedEvent } from '../src/delivery/delivery-record.js'
import { startRedis } from './helpers/processes.js'
import { setupDelivery, startReceiver, type Answer, type ReceivedWebhook } from './helpers/delivery.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const sequenceOf = (r: ReceivedWebhook) => (JSON.parse(r.body) as { data: { sequence: number } }).data.sequence

t.test('an ordered watch whose first webhook fails twice sends in sequence, one at a time; an unordered one on the same events finishes first', async (t) => {
  let releaseFirst!: () => void
  const firstHeld = new Promise<void>((resolve) => { releaseFirst = resolve })
  let orderedSeen = 0
  const receiver = await startReceiver(t, (request): Answer => {
    if (!request.path.startsWith('/ordered')) return { status: 204 }
    orderedSeen++
    if (orderedSeen === 1) return { status: 500, after: firstHeld }
    return { status: orderedSeen === 2 ? 503 : 200 }
  })
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: ['50ms', '50ms', '50ms'] } })
  const ordered = await d.createWatch(`${receiver.url}/ordered`, { ordered: true })
  const plain = await d.createWatch(`${receiver.url}/plain`)
  const events = (watch: typeof plain.watch, ordered: boolean): MatchedEvent[] =>
    [1, 2, 3].map((n) => ({ ...d.event(watch, n), ...(ordered ? { ordered: true as const } : {}) }))
  await d.deliveryQueue.enqueue([...events(ordered.watch, true), ...events(plain.watch, false)])

  // While the ordered head's first attempt is in flight, the unordered watch is delivered in full.
  const whilePlain = await receiver.waitForCount(4)
  t.same(whilePlain.filter((r) => r.path === '/ordered').length, 1, 'only the head of the ordered watch went out')
  t.equal(whilePlain.filter((r) => r.path === '/plain').length, 3, 'the unordered watch is not held back')
  releaseFirst()

  const all = await receiver.waitForCount(3 + 5)
  const toOrdered = all.filter((r) => r.path === '/ordered')
  t.same(toOrdered.map(sequenceOf), [1, 1, 1, 2, 3], 'twice failed, then in sequence order')
  const verifier = new Webhook(ordered.secret)
  for (const r of toOrdered) t.ok(verifier.verify(r.body, r.headers as Record<string, string>), 'signed')
  const plainLast = Math.max(...all.filter((r) => r.path === '/plain').map((r) => r.at))
  t.ok(plainLast <= toOrdered[toOrdered.length - 1]!.at, 'the unordered watch finished first')
  const last = await d.waitForRecord(events(ordered.watch, true)[2]!.id, (r) => r.status === 'delivered')
  t.equal(last.attempts.length, 1)
  t.equal(await d.redis.exists(d.keys.watchOrderedDeliveries(ordered.watch.id)), 0, 'nothing left waiting')
})

t.test('an ordered watch whose head spends its attempts: the head is failed and the next ones go', async (t) => {
  const receiver = await startReceiver(t, (request) => ({ status: sequenceOf(request) === 1 ? 500 : 200 }))
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: ['50ms'] } })
  const { watch, secret } = await d.createWatch(`${receiver.url}/ordered`, { ordered: true })
  const events = [1, 2, 3].map((n) => ({ ...d.event(watch, n), ordered: true as const }))
  await d.deliveryQueue.enqueue(events)

  const received = await receiver.waitForCount(4)
  t.same(received.map(sequenceOf), [1, 1, 2, 3])
  const verifier = new Webhook(secret)
  for (const r of received) t.ok(verifier.verify(r.body, r.headers as Record<string, string>))
  const head = await d.waitForRecord(events[0]!.id, (r) => r.status === 'failed')
  t.equal(head.attempts.length, 2, 'its attempts spent')
  await d.waitForRecord(events[2]!.id, (r) => r.status === 'delivered')

  // A manual retry of the failed head goes out again (nothing is ahead of it now).
  t.equal(await d.deliveryQueue.requeueFailed(head.id, watch.id), 'failed')
  const again = await receiver.waitForCount(5)
  t.equal(sequenceOf(again[4]!), 1)
})
