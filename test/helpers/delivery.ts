/**
 * What the delivery tests share: a real webhook receiver on 127.0.0.1 that records every request
 * and answers as the test says, and a delivery worker on a real Redis with its own key prefix.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { pino } from 'pino'
import type { Config } from '../../src/config/config.js'
import type { DeliveryRecord, MatchedEvent } from '../../src/delivery/delivery-record.js'
import { DeliveryWorker, type DeliveryWorkerTuning } from '../../src/delivery/delivery-worker.js'
import { WebhookHttpClient } from '../../src/delivery/http-client.js'
import { USER_AGENT } from '../../src/delivery/user-agent.js'
import { newWebhookSecret, webhookId } from '../../src/domain/ids.js'
import type { Resolver } from '../../src/domain/url-policy.js'
import type { Watch } from '../../src/domain/watch-types.js'
import { wire } from '../../src/wiring.js'
import type { TestApi } from './api.js'
import { testConfig } from './config.js'

export interface ReceivedWebhook {
  path: string
  headers: IncomingHttpHeaders
  body: string
  /** Unix ms when the request arrived. */
  at: number
}

/** What the receiver answers: a status (with headers and body; once `after` resolves, if given), or `hang` to never answer. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string; after?: Promise<void> } | 'hang'

export interface Receiver {
  url: string
  received: ReceivedWebhook[]
  /** Requests not answered yet (`hang`, or waiting for `after`). */
  open: number
  /** Most requests held open at once. */
  peakOpen: number
  /** Resolves when `count` requests have arrived in all. */
  waitForCount(count: number): Promise<ReceivedWebhook[]>
}

export async function startReceiver(t: Test, answer: (request: ReceivedWebhook, index: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const waiters: { count: number; resolve: () => void }[] = []
  const unanswered = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() }
      receiver.received.push(request)
      const reply = answer(request, receiver.received.length - 1)
      // Open until answered, or until the client goes away (a killed worker's request).
      unanswered.add(res)
      receiver.open = unanswered.size
      receiver.peakOpen = Math.max(receiver.peakOpen, unanswered.size)
      res.on('close', () => { unanswered.delete(res); receiver.open = unanswered.size })
      if (reply !== 'hang') {
        void (reply.after ?? Promise.resolve()).then(() => {
          res.writeHead(reply.status, reply.headers)
          res.end(reply.body ?? '')
        })
      }
      for (const waiter of waiters.filter((w) => receiver.received.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: [],
    open: 0,
    peakOpen: 0,
    async waitForCount(count) {
      if (receiver.received.length < count) await new Promise<void>((resolve) => waiters.push({ count, resolve }))
      return receiver.received
    },
  }
  return receiver
}

export interface DeliverySetupOptions {
  /** The config file's `delivery` section. */
  delivery?: Record<string, unknown>
  allowPrivateUrls?: boolean
  resolve?: Resolver
  random?: () => number
  tuning?: DeliveryWorkerTuning
  /** Start the worker now (default) or leave it to the test. */
  startWorker?: boolean
  /** A key prefix of the test's choosing (a worker process started through the CLI uses the default). */
  redisPrefix?: string
}

export async function setupDelivery(t: Test, redisUrl: string, options: DeliverySetupOptions = {}) {
  const config: Config = testConfig({
    redisUrl,
    allowPrivateUrls: options.allowPrivateUrls ?? true,
    file: { chains: [{ id: 'eth', type: 'evm', ws: ['ws://127.0.0.1:1'] }], delivery: options.delivery ?? {} },
    ...(options.redisPrefix ? { redisPrefix: options.redisPrefix } : {}),
  })
  const logger = pino({ level: 'silent' })
  const wiring = wire(config, 'test-delivery', logger, { resolve: options.resolve })
  const { redis, keys, watches, deliveryQueue, metrics } = wiring
  const httpClient = new WebhookHttpClient({
    timeoutMs: config.delivery.timeoutMs, userAgent: USER_AGENT, allowPrivateUrls: config.allowPrivateUrls, resolve: options.resolve,
  })
  const workers: DeliveryWorker[] = []
  /** Each call starts one more worker (several act like several worker processes on one Redis). */
  const startWorker = () => {
    const worker = new DeliveryWorker(
      { config, logger, redis, keys, watches: wiring.watchService, deliveryQueue, httpClient, metrics, random: options.random },
      { closeGraceMs: 200, ...options.tuning },
    )
    workers.push(worker)
    return worker
  }
  if (options.startWorker ?? true) startWorker()
  t.teardown(async () => {
    await Promise.all(workers.map((worker) => worker.close()))
    await deliveryQueue.close()
    httpClient.close()
    redis.disconnect()
  })

  let watchCount = 0
  async function createWatch(url: string, overrides: Partial<Watch> = {}): Promise<{ watch: Watch; secret: string }> {
    const now = new Date().toISOString()
    const watch = {
      id: `wch_test${++watchCount}${Date.now()}`, tenantId: 'ten_test', chain: 'eth', type: 'evm.blocks', filter: {},
      url, status: 'active', confirmations: 0, createdAt: now, updatedAt: now, ...overrides,
    } as Watch
    const secret = newWebhookSecret()
    await watches.create(watch, secret)
    return { watch, secret }
  }

  function event(watch: Watch, n: number): MatchedEvent {
    return {
      id: webhookId(watch.id, ['eth', `0xblock${n}`, 'evm.block']),
      watchId: watch.id, tenantId: watch.tenantId, chain: watch.chain, type: 'evm.block',
      timestamp: new Date(1_763_800_000_000 + n * 12_000).toISOString(),
      data: { confirmations: 0, block: { number: n, hash: `0xblock${n}`, timestamp: 1_763_800_000 + n * 12 }, header: { number: `0x${n.toString(16)}` } },
      firstSeenAt: Date.now(),
    }
  }

  /** Polls the record until `done` holds; a test that never gets there fails on tap's timeout. */
  async function waitForRecord(id: string, done: (record: DeliveryRecord) => boolean): Promise<DeliveryRecord> {
    for (;;) {
      const record = await deliveryQueue.store.get(id)
      if (record && done(record)) return record
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  return { config, redis, keys, watches, deliveryQueue, metrics, httpClient, startWorker, createWatch, event, waitForRecord }
}

/** A delivery worker on a test api's wiring (loopback receivers allowed), closed with the test. */
export function startApiWorker(t: Test, { config, deps }: TestApi): DeliveryWorker {
  const httpClient = new WebhookHttpClient({ timeoutMs: config.delivery.timeoutMs, userAgent: USER_AGENT, allowPrivateUrls: true })
  const worker = new DeliveryWorker({
    config, logger: pino({ level: 'silent' }), redis: deps.redis, keys: deps.keys, watches: deps.watchService,
    deliveryQueue: deps.deliveryQueue, httpClient, metrics: deps.metrics,
  }, { closeGraceMs: 200 })
  t.teardown(async () => { await worker.close(); httpClient.close() })
  return worker
}
