import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { renderWebhookBody } from '../src/delivery/delivery-record.js'
import { USER_AGENT } from '../src/delivery/user-agent.js'
import { DELIVER_JOB, deliveryJobOptions } from '../src/delivery/delivery-queue.js'
import { startRedis } from './helpers/processes.js'
import { setupDelivery, startReceiver } from './helpers/delivery.js'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

const FAST_RETRIES = { retrySchedule: ['50ms', '50ms', '50ms'] }

t.test('every delivery is signed over its exact body; during a rotation both signatures verify', async (t) => {
  const d = await setupDelivery(t, redisServer.url)
  const receiver = await startReceiver(t)
  const { watch, secret: previous } = await d.createWatch(`${receiver.url}/hook`)
  const current = 'whsec_' + Buffer.alloc(32, 9).toString('base64')
  await d.watches.rotateSecret(watch.id, current, 60_000)
  const events = [1, 2, 3].map((n) => d.event(watch, n))
  t.equal(await d.deliveryQueue.enqueue(events), 3)

  const received = await receiver.waitForCount(3)
  for (const request of received) {
    const headers = request.headers as Record<string, string>
    t.equal(headers['content-type'], 'application/json')
    t.equal(headers['user-agent'], USER_AGENT)
    t.match(headers['user-agent'], /^blockhook\/\d+\.\d+\.\d+/)
    t.equal(headers['webhook-signature']!.split(' ').length, 2, 'two signatures during the rotation')
    for (const secret of [current, previous]) {
      const payload = new Webhook(secret).verify(request.body, headers) as { type: string; data: { watchId: string } }
      t.equal(payload.type, 'evm.block')
      t.equal(payload.data.watchId, watch.id)
    }
  }
  t.same(received.map((r) => r.headers['webhook-id']).sort(), events.map((e) => e.id).sort())

  const record = await d.waitForRecord(events[0]!.id, (r) => r.status === 'delivered')
  const sent = received.find((r) => r.headers['webhook-id'] === record.id)!
  t.equal(sent.body, renderWebhookBody(record), 'the body is the stored record rendered byte for byte')
  t.same(JSON.parse(sent.body).data, { watchId: watch.id, chain: 'eth', sequence: record.sequence, ...events[0]!.data })
  t.match(record.attempts, [{ statusCode: 200, error: null }])
  t.equal(record.nextAttemptAt, null)
  for (const e of events) await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  const stats = await d.redis.hgetall(d.keys.watchStats(watch.id))
  t.match(stats, { matched: '3', delivered: '3', pending: '0' })
  t.ok(Date.parse(stats.lastDeliveredAt!) > 0, 'lastDeliveredAt is a time')
  t.equal(await d.redis.zcard(d.keys.watchPendingDeliveries(watch.id)), 0)
  t.ok((await d.redis.pttl(d.keys.delivery(record.id, 0))) > 0, 'a delivered record expires after the retention')
  t.equal((await d.metrics.deliveries.get()).values.find((v) => v.labels.outcome === 'delivered')?.value, 3)
  t.equal((await d.metrics.eventToDelivery.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value, 3)
})

t.test('a receiver answering 500 twice then 200 gets the same webhook-id three times; three attempts recorded', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: FAST_RETRIES, random: () => 0.5 })
  const receiver = await startReceiver(t, (_, i) => ({ status: i < 2 ? 500 : 200, body: i < 2 ? 'try later' : 'ok' }))
  const { watch } = await d.createWatch(receiver.url)
  const e = d.event(watch, 7)
  await d.deliveryQueue.enqueue([e])

  const record = await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  t.same(receiver.received.map((r) => r.headers['webhook-id']), [e.id, e.id, e.id])
  t.same(new Set(receiver.received.map((r) => r.body)).size, 1, 'the same body every time')
  t.match(record.attempts, [
    { statusCode: 500, error: /BH_DELIVERY_STATUS/, response: 'try later' },
    { statusCode: 500, error: /BH_DELIVERY_STATUS/ },
    { statusCode: 200, error: null, response: 'ok' },
  ])
  t.equal(record.attempts.length, 3)
  for (const attempt of record.attempts) t.type(attempt.durationMs, 'number')
  const stats = await d.redis.hgetall(d.keys.watchStats(watch.id))
  t.match(stats, { delivered: '1', pending: '0' })
  t.equal(stats.failed ?? '0', '0', 'failed attempts that ended delivered do not count as failed')
})

t.test('a receiver answering with a megabyte has the first KiB of it recorded, and the next webhook still goes out', async (t) => {
  const d = await setupDelivery(t, redisServer.url)
  const big = 'x'.repeat(1024) + 'y'.repeat(1024 * 1024)
  const receiver = await startReceiver(t, (_, i) => ({ status: 200, body: i === 0 ? big : 'ok' }))
  const { watch } = await d.createWatch(receiver.url, { ordered: true })
  const [first, second] = [d.event(watch, 1), d.event(watch, 2)]
  await d.deliveryQueue.enqueue([first, second])

  t.match((await d.waitForRecord(first.id, (r) => r.status === 'delivered')).attempts, [{ statusCode: 200, response: 'x'.repeat(1024) }])
  t.match((await d.waitForRecord(second.id, (r) => r.status === 'delivered')).attempts, [{ statusCode: 200, response: 'ok' }])
})

t.test('Retry-After: 2 on a 503 is honoured exactly', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: FAST_RETRIES })
  const receiver = await startReceiver(t, (_, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '2' } } : { status: 200 }))
  const { watch } = await d.createWatch(receiver.url)
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])

  const retrying = await d.waitForRecord(e.id, (r) => r.attempts.length === 1)
  t.equal(Date.parse(retrying.nextAttemptAt!) - Date.parse(retrying.attempts[0]!.at), 2000, 'next attempt exactly 2 s later, no jitter')
  const [first, second] = await receiver.waitForCount(2)
  t.ok(second!.at - first!.at >= 2000 - 5, `the second request came ${second!.at - first!.at} ms after the first`)
  await d.waitForRecord(e.id, (r) => r.status === 'delivered')
})

t.test('a 302 is not followed and counts as a failure', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: [] } })
  const receiver = await startReceiver(t, (r) => (r.path === '/old' ? { status: 302, headers: { location: '/new' } } : { status: 200 }))
  const { watch } = await d.createWatch(`${receiver.url}/old`)
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])

  const record = await d.waitForRecord(e.id, (r) => r.status === 'failed')
  t.same(receiver.received.map((r) => r.path), ['/old'], 'the redirect target was never requested')
  t.match(record.attempts, [{ statusCode: 302, error: /BH_DELIVERY_REDIRECT/ }])
  t.match(await d.redis.hgetall(d.keys.watchStats(watch.id)), { failed: '1', pending: '0' })
  t.equal((await d.metrics.deliveries.get()).values.find((v) => v.labels.outcome === 'failed')?.value, 1)
})

t.test('a hanging receiver is timed out', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: [], timeoutMs: 300 } })
  const receiver = await startReceiver(t, () => 'hang')
  const { watch } = await d.createWatch(receiver.url)
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])

  const record = await d.waitForRecord(e.id, (r) => r.status === 'failed')
  t.equal(receiver.received.length, 1)
  t.match(record.attempts, [{ statusCode: null, error: /BH_DELIVERY_TIMEOUT/ }])
  t.ok(record.attempts[0]!.durationMs >= 300, 'it waited for the timeout')
})

t.test('410 disables the watch and cancels its queued deliveries', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { ...FAST_RETRIES, maxConcurrencyPerUrl: 1 }, startWorker: false })
  const worker = d.startWorker()
  const receiver = await startReceiver(t, () => ({ status: 410 }))
  const { watch } = await d.createWatch(receiver.url)
  const events = [1, 2, 3, 4, 5].map((n) => d.event(watch, n))
  await d.deliveryQueue.enqueue(events)

  const disabled = await (async () => {
    for (;;) {
      const w = await d.watches.get(watch.id)
      if (w?.status === 'disabled') return w
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  t.match(disabled.disabledReason, /410/)
  const records = await Promise.all(events.map((e) => d.waitForRecord(e.id, (r) => r.status !== 'pending')))
  t.equal(receiver.received.length, 1, 'one request, then nothing more to the URL')
  t.same(records.map((r) => r.status).sort(), ['cancelled', 'cancelled', 'cancelled', 'cancelled', 'failed'])
  t.match(records.find((r) => r.status === 'failed')!.attempts, [{ statusCode: 410, error: /BH_DELIVERY_GONE/ }])
  t.match(await d.redis.hgetall(d.keys.watchStats(watch.id)), { failed: '1', pending: '0' })
  // The record is final before BullMQ finishes the job that wrote it: closing the worker waits for that.
  await worker.close()
  // A job that was being postponed (over the URL's cap of 1) while the watch was cancelled was
  // locked and could not be removed: it may be left delayed. Run whatever is left: it sends nothing.
  const queue = d.deliveryQueue.queues[0]!
  await queue.promoteJobs()
  const rerun = d.startWorker()
  const left = () => queue.getJobCounts('waiting', 'delayed', 'active')
  while (Object.values(await left()).some((n) => n > 0)) await new Promise((resolve) => setTimeout(resolve, 20))
  await rerun.close()
  t.same(await left(), { waiting: 0, delayed: 0, active: 0 }, 'no job of the watch is left in the queue')
  t.equal(receiver.received.length, 1, 'the jobs left over sent nothing')
})

t.test('a URL whose name resolves to 127.0.0.1 is refused at delivery time', async (t) => {
  const receiver = await startReceiver(t)
  const port = new URL(receiver.url).port
  const d = await setupDelivery(t, redisServer.url, {
    allowPrivateUrls: false,
    delivery: { retrySchedule: [] },
    // The name passed the check when the watch was saved; it now resolves to loopback (DNS rebinding).
    resolve: async () => [{ address: '127.0.0.1', family: 4 }],
  })
  const { watch } = await d.createWatch(`http://hooks.example.com:${port}/hook`)
  const literal = await d.createWatch(`http://127.0.0.1:${port}/hook`)
  const e = d.event(watch, 1)
  const e2 = d.event(literal.watch, 1)
  await d.deliveryQueue.enqueue([e, e2])

  for (const id of [e.id, e2.id]) {
    const record = await d.waitForRecord(id, (r) => r.status === 'failed')
    t.match(record.attempts, [{ statusCode: null, error: /BH_DELIVERY_URL_REFUSED.*private/ }])
  }
  t.equal(receiver.received.length, 0, 'nothing reached the loopback receiver')
})

t.test('one URL hanging with 200 deliveries queued does not delay another URL; its cap holds across workers', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { timeoutMs: 60_000, maxConcurrencyPerUrl: 10, concurrency: 50 } })
  d.startWorker() // a second worker: the per-URL cap is shared through Redis
  const hanging = await startReceiver(t, () => 'hang')
  const healthy = await startReceiver(t)
  const slow = await d.createWatch(hanging.url)
  const fine = await d.createWatch(healthy.url)
  await d.deliveryQueue.enqueue(Array.from({ length: 200 }, (_, n) => d.event(slow.watch, n)))
  await hanging.waitForCount(10)
  const promptEvents = Array.from({ length: 20 }, (_, n) => d.event(fine.watch, n))
  await d.deliveryQueue.enqueue(promptEvents)

  await healthy.waitForCount(20)
  for (const e of promptEvents) await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  t.equal(hanging.received.length, 10, 'the hanging URL never had more than maxConcurrencyPerUrl requests, from both workers together')
  t.equal(hanging.peakOpen, 10)
  const pending = await d.redis.hget(d.keys.watchStats(slow.watch.id), 'pending')
  t.equal(pending, '200', 'the hanging URL’s deliveries are all still pending, none spent')
})

t.test('a watch whose deliveries all fail for disableAfter is disabled', async (t) => {
  const d = await setupDelivery(t, redisServer.url, {
    delivery: { retrySchedule: Array(20).fill('100ms'), disableAfter: '500ms' },
  })
  const receiver = await startReceiver(t, () => ({ status: 500 }))
  const { watch } = await d.createWatch(receiver.url)
  await d.deliveryQueue.enqueue([d.event(watch, 1)])
  for (;;) {
    const w = await d.watches.get(watch.id)
    if (w?.status === 'disabled') {
      t.match(w.disabledReason, /every delivery failed since/)
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(receiver.received.length >= 2, 'it took several failed attempts')
  const record = await d.waitForRecord(d.event(watch, 1).id, (r) => r.status === 'failed')
  t.match(record.attempts.at(-1), { statusCode: null, error: /watch is disabled/ }, 'the rest of its attempts are not sent')
  t.equal(await d.redis.exists(d.keys.watchFailingSince(watch.id)), 0, 're-enabling it starts a fresh failure window')
})

t.test('a paused watch’s deliveries wait, unspent, until it is active again', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { tuning: { pausedRecheckMs: 100 } })
  const receiver = await startReceiver(t)
  const { watch } = await d.createWatch(receiver.url, { status: 'paused' })
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])
  await d.waitForRecord(e.id, () => true)
  const delayedJob = await (async () => {
    for (;;) {
      const [job] = await d.deliveryQueue.queues[0]!.getJobs(['delayed'])
      if (job) return job
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  t.equal(delayedJob.attemptsMade, 0, 'postponing spends no attempt')
  t.equal(receiver.received.length, 0)
  await d.watches.update(watch.id, (w) => ({ ...w, status: 'active' }))
  const record = await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  t.equal(record.attempts.length, 1)
})

t.test('a deleted watch’s deliveries are cancelled: queued ones at once, running ones when picked up', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { startWorker: false })
  const receiver = await startReceiver(t)
  const { watch } = await d.createWatch(receiver.url)
  const queued = [1, 2, 3].map((n) => d.event(watch, n))
  await d.deliveryQueue.enqueue(queued)
  await d.watches.delete(watch)
  t.equal(await d.deliveryQueue.cancelWatch(watch.id), 3)
  for (const e of queued) t.equal((await d.deliveryQueue.store.get(e.id))?.status, 'cancelled')
  t.same(await d.deliveryQueue.queues[0]!.getJobCounts('waiting', 'delayed'), { waiting: 0, delayed: 0 })

  // Deleted while its job waits, without the API's cancel: the worker cancels it itself.
  const other = await d.createWatch(receiver.url)
  const late = d.event(other.watch, 9)
  await d.deliveryQueue.enqueue([late])
  await d.watches.delete(other.watch)
  d.startWorker()
  await d.waitForRecord(late.id, (r) => r.status === 'cancelled')
  t.equal(receiver.received.length, 0)
})

t.test('a replay re-sends delivered events with their original webhook-id and body', async (t) => {
  const d = await setupDelivery(t, redisServer.url)
  const receiver = await startReceiver(t)
  const { watch } = await d.createWatch(receiver.url)
  const events = [1, 2].map((n) => d.event(watch, n))
  await d.deliveryQueue.enqueue(events)
  for (const e of events) await d.waitForRecord(e.id, (r) => r.status === 'delivered')
  const first = [...(await receiver.waitForCount(2))]

  t.equal(await d.deliveryQueue.enqueue(events), 0, 'without a replay id nothing is sent twice')
  t.equal(await d.deliveryQueue.enqueue(events, { replayId: 'rpl_one' }), 0, 'a replay creates no new record')
  const all = await receiver.waitForCount(4)
  const replayed = all.slice(2)
  for (const original of first) {
    const again = replayed.find((r) => r.headers['webhook-id'] === original.headers['webhook-id'])
    t.ok(again, `${original.headers['webhook-id']} was sent again`)
    t.equal(again?.body, original.body, 'byte for byte the same body')
  }
  for (const e of events) {
    const record = await d.waitForRecord(e.id, (r) => r.status === 'delivered' && r.attempts.length === 2)
    t.equal(record.sequence, events.indexOf(e) + 1, 'the sequence is not spent again')
  }
  t.match(await d.redis.hgetall(d.keys.watchStats(watch.id)), { matched: '2', delivered: '4', pending: '0' })
})

t.test('a job that fails for a reason of its own (a corrupt stored watch) ends failed, not pending for ever', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: ['50ms'] } })
  const receiver = await startReceiver(t)
  const { watch } = await d.createWatch(receiver.url)
  await d.redis.set(d.keys.watch(watch.id), '{not json')
  const e = d.event(watch, 1)
  await d.deliveryQueue.enqueue([e])

  const record = await d.waitForRecord(e.id, (r) => r.status !== 'pending')
  t.equal(record.status, 'failed')
  t.match(record.attempts, [{ statusCode: null, error: /BH_DELIVERY_INTERNAL/ }], 'one record of it, after the job’s last attempt')
  t.equal(receiver.received.length, 0)
})

t.test('a corrupt stored watch fails only its own deliveries, not those of a watch queued with it', async (t) => {
  const d = await setupDelivery(t, redisServer.url, { delivery: { retrySchedule: ['50ms'] } })
  const receiver = await startReceiver(t)
  const { watch: broken } = await d.createWatch(receiver.url)
  const { watch: fine } = await d.createWatch(receiver.url)
  await d.redis.set(d.keys.watch(broken.id), '{not json')
  const events = [1, 2, 3].flatMap((n) => [d.event(broken, n), d.event(fine, n)])
  await d.deliveryQueue.enqueue(events)

  for (const e of events) {
    const record = await d.waitForRecord(e.id, (r) => r.status !== 'pending')
    t.equal(record.status, e.watchId === fine.id ? 'delivered' : 'failed', `${e.watchId === fine.id ? 'the fine' : 'the broken'} watch's delivery ${e.id}`)
  }
  t.equal(receiver.received.length, 3)
})

t.test('jobs queued before they named their watch, or naming another watch than their record’s, are sent with the record’s watch', async (t) => {
  const d = await setupDelivery(t, redisServer.url)
  const receiver = await startReceiver(t)
  const { watch, secret } = await d.createWatch(`${receiver.url}/right`)
  const { watch: other } = await d.createWatch(`${receiver.url}/wrong`)
  const [legacy, misnamed] = [d.event(watch, 1), d.event(watch, 2)]
  await d.deliveryQueue.store.storeMatched([legacy, misnamed], undefined, Date.now())
  const queue = d.deliveryQueue.queueOf(watch.id)
  await queue.add(DELIVER_JOB, { deliveryId: legacy.id }, deliveryJobOptions(d.config.delivery, legacy.id))
  await queue.add(DELIVER_JOB, { deliveryId: misnamed.id, watchId: other.id }, deliveryJobOptions(d.config.delivery, misnamed.id))

  const received = await receiver.waitForCount(2)
  t.same(received.map((r) => r.path), ['/right', '/right'])
  for (const request of received) new Webhook(secret).verify(request.body, request.headers as Record<string, string>)
  t.same(received.map((r) => r.headers['webhook-id']).sort(), [legacy.id, misnamed.id].sort())
})
