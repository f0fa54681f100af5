/**
 * Solana through the roles a user runs: the subscriber role (lease, watch feed, SolanaChain) and
 * the worker role, from a documented-protocol node to a receiver that verifies each webhook with
 * the standardwebhooks package.
 */
import t from 'tap'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import { startSubscriber } from '../workers/subscriber.js'
import { startWorker } from '../workers/delivery-worker.js'
import type { SolanaChain } from '../src/chains/solana/solana-chain.js'
import { newId, newWebhookSecret } from '../src/domain/ids.js'
import type { Watch } from '../src/domain/watch-types.js'
import { createRedis } from '../src/storage/redis.js'
import { redisKeys } from '../src/storage/keys.js'
import { SecretBox } from '../src/storage/secret-box.js'
import { WatchStore } from '../src/storage/watch-store.js'
import { startRedis } from './helpers/processes.js'
import { testConfig } from './helpers/config.js'
import { startReceiver } from './helpers/delivery.js'
import { FakeSolanaNode, solanaFixture } from './helpers/solana-node.js'

const MENTIONED = 'H4vnBqifaSACnKa7acsxstsY1iV1bvJNxsCY7enrd1hq'
const SIGNATURE = '2EBVM6cB8vAAD93Ktr6Vd8p67XPbQzCJX47MpReuiCXJAtcjaxpvWpcg9Ege1Nr5Tk3a2GFrByT7WPBjdsTycY9b'
const GAP_SIGNATURE = '5h6xBEauJ3PK6SWCZ1PGjBvj8vDdWG3KpwATGy1ARAXFSDwt8GFXM7W5Ncn16wmqokgpiKRLuS83KUxyZyv2sUYa'

const redisServer = await startRedis()
t.teardown(() => redisServer.stop())

t.test('notifications become signed webhooks; a cut connection loses nothing; a signature watch completes', async (t) => {
  const node = await FakeSolanaNode.start()
  t.teardown(() => node.stop())
  const receiver = await startReceiver(t)
  const config = testConfig({
    redisUrl: redisServer.url,
    allowPrivateUrls: true,
    file: { chains: [{ id: 'sol', type: 'solana', ws: [node.wsUrl], http: [node.httpUrl], commitment: 'confirmed' }] },
  })
  const redis = createRedis(config.redisUrl, 'test')
  t.teardown(() => redis.disconnect())
  const store = new WatchStore(redis, redisKeys(config.redisPrefix), new SecretBox(config.encryptionKey))

  async function addWatch(type: Watch['type'], filter: unknown) {
    const now = new Date().toISOString()
    const watch = {
      id: newId('wch'), tenantId: 'ten_e2e', chain: 'sol', type, filter, url: `${receiver.url}/${type}`,
      status: 'active', createdAt: now, updatedAt: now,
    } as Watch
    const secret = newWebhookSecret()
    await store.create(watch, secret)
    return { watch, verifier: new Webhook(secret) }
  }
  const logs = await addWatch('solana.logs', { mentions: [MENTIONED] })
  const signature = await addWatch('solana.signature', { signature: SIGNATURE })

  const logger = pino({ level: 'silent' })
  const subscriber = await startSubscriber(config, logger, {
    lease: { ttlMs: 5_000, pollMs: 200 },
    solana: { socket: { backoffInitialMs: 10, backoffMaxMs: 50 }, gapRetryDelaysMs: [20, 100] },
  })
  const worker = await startWorker(config, logger)
  t.teardown(async () => {
    await subscriber.close()
    await worker.close()
  })

  const logsSub = await node.waitForSubscription('logsSubscribe')
  // The first start notes where the account's history begins before anything is sent.
  await node.waitForHttpRequest('getSignaturesForAddress')
  const live = solanaFixture('logs-notification').params.result
  node.addTransaction({ signature: live.value.signature, slot: live.context.slot, accountKeys: [MENTIONED], logs: live.value.logs })
  node.notify(logsSub, live)
  const [first] = await receiver.waitForCount(1)
  const firstBody = logs.verifier.verify(first!.body, first!.headers as Record<string, string>) as { type: string; data: Record<string, unknown> }
  t.match(firstBody, { type: 'solana.logs', data: { watchId: logs.watch.id, chain: 'sol', sequence: 1, slot: 5208469, value: live.value } })

  // Cut while a transaction happens: it reaches the receiver anyway, after the resubscription.
  node.dropConnections()
  node.addTransaction({ signature: GAP_SIGNATURE, slot: 5208470, accountKeys: [MENTIONED], logs: ['Program log: during the cut'] })
  await node.waitForSubscription('logsSubscribe')
  const [, gap] = await receiver.waitForCount(2)
  t.match(logs.verifier.verify(gap!.body, gap!.headers as Record<string, string>), {
    type: 'solana.logs',
    data: { sequence: 2, slot: 5208470, value: { signature: GAP_SIGNATURE, err: null, logs: ['Program log: during the cut'] } },
  })

  const signatureSub = await node.waitForSubscription('signatureSubscribe')
  node.notify(signatureSub, solanaFixture('signature-notification').params.result)
  const [, , fired] = await receiver.waitForCount(3)
  t.match(signature.verifier.verify(fired!.body, fired!.headers as Record<string, string>), {
    type: 'solana.signature', data: { watchId: signature.watch.id, slot: 5207624, value: { err: null } },
  })
  t.equal(fired!.path, '/solana.signature')
  await (subscriber.chains.get('sol')!.driver as SolanaChain).leader!.idle()
  t.equal((await store.get(signature.watch.id))?.status, 'completed')
  t.equal(receiver.received.length, 3, 'each event once')
})
