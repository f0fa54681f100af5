import t from 'tap'
import { reconcile, type HeaderAnswer, type ReconcileInput } from '../src/chains/evm/reconcile.js'

const hash = (label: string) => `0x${Buffer.from(label).toString('hex').padEnd(64, '0')}`
const ZERO = `0x${'0'.repeat(64)}`
const block = (number: number, label: string, parentLabel: string): HeaderAnswer =>
  ({ number, hash: hash(label), parentHash: parentLabel === 'zero' ? ZERO : hash(parentLabel) })

// We hold a10 <- a11 <- a12 (cursor a12).
const held = [block(10, 'a10', 'a9'), block(11, 'a11', 'a10'), block(12, 'a12', 'a11')]
const input = (over: Partial<ReconcileInput>): ReconcileInput => ({
  cursor: { number: 12, hash: hash('a12') }, window: held, head: null, byNumber: new Map(), byHash: new Map(), ...over,
})

/** Answers `reconcile`'s questions from a scripted node until it names a case. */
function run(over: Partial<ReconcileInput>, node: HeaderAnswer[], missingByNumber: number[] = []) {
  const byNumber = new Map<number, HeaderAnswer | null>()
  const byHash = new Map<string, HeaderAnswer | null>()
  const asked: string[] = []
  for (;;) {
    const decision = reconcile(input({ ...over, byNumber, byHash }))
    if (decision.case === 'need-number') {
      asked.push(`number ${decision.number}`)
      byNumber.set(decision.number, missingByNumber.includes(decision.number) ? null : node.find((b) => b.number === decision.number) ?? null)
    } else if (decision.case === 'need-hash') {
      asked.push(`hash of ${decision.number}`)
      byHash.set(decision.hash, node.find((b) => b.hash === decision.hash) ?? null)
    } else {
      return { decision, asked }
    }
  }
}

t.test('idle: the head is our cursor', async (t) => {
  t.same(run({ head: held[2]! }, []).decision, { case: 'idle' })
})

t.test('extend: the next block names the cursor as its parent', async (t) => {
  const next = block(13, 'a13', 'a12')
  t.same(run({ head: block(15, 'a15', 'a14') }, [next]).decision, { case: 'extend', head: 15 })
})

t.test('node-behind: no head, a head below the cursor, or no block below its head; never a retraction', async (t) => {
  t.equal(run({ head: null }, []).decision.case, 'node-behind')
  const lagging = run({ head: block(9, 'a9', 'a8') }, [])
  t.equal(lagging.decision.case, 'node-behind')
  t.same(lagging.asked, [], 'nothing is read, nothing is walked back')
  t.equal(run({ head: block(14, 'a14', 'a13') }, [], [13]).decision.case, 'node-behind')
})

t.test('reorg: another block at the cursor height, its parents read by hash down to a block we hold', async (t) => {
  const b12 = block(12, 'b12', 'b11')
  const b11 = block(11, 'b11', 'a10')
  const { decision, asked } = run({ head: block(13, 'b13', 'b12') }, [block(13, 'b13', 'b12'), b12, b11, held[0]!])
  t.same(decision, { case: 'reorg', ancestor: { number: 10, hash: hash('a10') }, replaced: [hash('a12'), hash('a11')], deeperThanKept: false })
  t.same(asked, ['number 13', 'hash of 12', 'hash of 11', 'hash of 10'])
})

t.test('reorg: the head itself replaces the cursor at the same height', async (t) => {
  const { decision } = run({ head: block(12, 'b12', 'a11') }, [held[1]!])
  t.same(decision, { case: 'reorg', ancestor: { number: 11, hash: hash('a11') }, replaced: [hash('a12')], deeperThanKept: false })
})

t.test('reorg deeper than the blocks held: every held block replaced, go on from the oldest height', async (t) => {
  const node = [block(13, 'b13', 'b12'), block(12, 'b12', 'b11'), block(11, 'b11', 'b10'), block(10, 'b10', 'b9')]
  const { decision } = run({ head: node[0]! }, node)
  t.same(decision, { case: 'reorg', ancestor: { number: 10, hash: hash('b10') }, replaced: [hash('a12'), hash('a11'), hash('a10')], deeperThanKept: true })
})

t.test('node-inconsistent: zero parents, unknown parents, wrong heights', async (t) => {
  t.equal(run({ head: block(14, 'p14', 'zero') }, []).decision.case, 'node-inconsistent', 'a zero-parent head')
  t.equal(run({ head: block(14, 'a14', 'a13') }, [block(13, 'p13', 'zero')]).decision.case, 'node-inconsistent', 'a zero-parent next block')
  t.equal(run({ head: block(14, 'a14', 'a13') }, [block(13, 'b13', 'b12')]).decision.case, 'node-inconsistent', 'a parent the node does not have')
  t.equal(run({ head: block(14, 'a14', 'a13') }, [block(13, 'b13', 'b12'), block(11, 'b12', 'a10')]).decision.case, 'node-inconsistent', 'a parent at the wrong height')
  const asked13: HeaderAnswer[] = [block(12, 'x', 'a11')]
  t.equal(run({ head: block(14, 'a14', 'a13') }, asked13).decision.case, 'node-behind', 'no block 13 at all is behind, not a reorg')
})

t.test('a fresh start (no window): the cursor alone is held', async (t) => {
  const fresh = { cursor: { number: 12, hash: hash('a12') }, window: [] }
  t.same(run({ ...fresh, head: block(13, 'a13', 'a12') }, [block(13, 'a13', 'a12')]).decision, { case: 'extend', head: 13 })
  const { decision } = run({ ...fresh, head: block(13, 'b13', 'b12') }, [block(13, 'b13', 'b12'), block(12, 'b12', 'b11')])
  t.same(decision, { case: 'reorg', ancestor: { number: 12, hash: hash('b12') }, replaced: [hash('a12')], deeperThanKept: true })
})
