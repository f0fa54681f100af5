import t from 'tap'
import { LATENCY_BOUNDS_MS, histogramQuantile, minuteIncrements, summarizeMinute } from '../src/delivery/delivery-minutes.js'

t.test('an attempt adds to its minute: a delivery with its latency in one histogram bucket, a failure as a count', async (t) => {
  t.same(minuteIncrements('failed', undefined), [['f', 1]])
  t.same(minuteIncrements('delivered', undefined), [['d', 1]], 'a replayed delivery has no latency sample')
  t.same(minuteIncrements('delivered', 1_200.4), [['d', 1], ['l', 1_200], ['h6', 1]], '1.2 s falls in (1 s, 2.5 s]')
  t.same(minuteIncrements('delivered', 10), [['d', 1], ['l', 10], ['h0', 1]], 'a bound belongs to its bucket')
  t.same(minuteIncrements('delivered', 7_200_000), [['d', 1], ['l', 7_200_000], [`h${LATENCY_BOUNDS_MS.length}`, 1]], 'above every bound')
})

t.test('percentiles interpolate within the bucket they fall in', async (t) => {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0)
  t.equal(histogramQuantile(counts, 0.5), 0, 'no sample')
  counts[6] = 10 // ten in (1000, 2500]
  t.equal(histogramQuantile(counts, 0.5), 1_750)
  t.equal(histogramQuantile(counts, 0.95), 2_425)
  counts[LATENCY_BOUNDS_MS.length] = 90 // and ninety above the last bound
  t.equal(histogramQuantile(counts, 0.05), 1_750)
  t.equal(histogramQuantile(counts, 0.95), LATENCY_BOUNDS_MS.at(-1), 'the open bucket answers its lower bound')
})

t.test('a bucket as the API shows it; an empty or unreadable one is zeros', async (t) => {
  t.same(summarizeMinute(29_000_000, {}), { minute: new Date(29_000_000 * 60_000).toISOString(), delivered: 0, failed: 0, latency: null })
  t.same(summarizeMinute(0, { d: '4', f: '1', l: '1200', h2: '1', h3: '3' }), {
    minute: '1970-01-01T00:00:00.000Z', delivered: 4, failed: 1, latency: { count: 4, meanMs: 300, p50Ms: 150, p95Ms: 240 },
  })
  t.same(summarizeMinute(0, { d: 'x', f: '-2' }).delivered + summarizeMinute(0, { d: 'x', f: '-2' }).failed, 0)
})
