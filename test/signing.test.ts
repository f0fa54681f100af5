import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { signWebhook } from '../src/delivery/signing.js'
import { newWebhookSecret } from '../src/domain/ids.js'

const body = JSON.stringify({ type: 'evm.log', timestamp: '2026-11-22T10:00:00.000Z', data: { value: 'ünïcode ✓', n: 1 } })

t.test('matches a fixed vector computed independently (Standard Webhooks example)', async (t) => {
  // The example of the Standard Webhooks specification (svix's test vector).
  const signature = signWebhook({
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestampSec: 1614265330,
    body: '{"test": 2432232314}',
    secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
  })
  t.equal(signature, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=')
})

t.test('standardwebhooks verifies the signature of the exact body', async (t) => {
  const secret = newWebhookSecret()
  const timestampSec = Math.floor(Date.now() / 1000)
  const headers = {
    'webhook-id': 'evt_abc',
    'webhook-timestamp': String(timestampSec),
    'webhook-signature': signWebhook({ id: 'evt_abc', timestampSec, body, secrets: [secret] }),
  }
  t.same(new Webhook(secret).verify(body, headers), JSON.parse(body))
  t.throws(() => new Webhook(secret).verify(body.replace('1', '2'), headers), 'a changed body does not verify')
  t.throws(() => new Webhook(newWebhookSecret()).verify(body, headers), 'another secret does not verify')
})

t.test('during a rotation both signatures are sent and each verifies with its own secret', async (t) => {
  const current = newWebhookSecret()
  const previous = newWebhookSecret()
  const timestampSec = Math.floor(Date.now() / 1000)
  const signature = signWebhook({ id: 'evt_rot', timestampSec, body, secrets: [current, previous] })
  const parts = signature.split(' ')
  t.equal(parts.length, 2)
  for (const [secret, part] of [[current, parts[0]!], [previous, parts[1]!]] as const) {
    const headers = { 'webhook-id': 'evt_rot', 'webhook-timestamp': String(timestampSec), 'webhook-signature': part }
    t.same(new Webhook(secret).verify(body, headers), JSON.parse(body))
    // And the full header, as a receiver sees it, verifies with either secret.
    t.same(new Webhook(secret).verify(body, { ...headers, 'webhook-signature': signature }), JSON.parse(body))
  }
})
