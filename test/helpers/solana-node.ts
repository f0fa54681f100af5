/**
 * A Solana node for the tests, written from the Solana RPC documentation (solana.com/docs/rpc):
 * the PubSub WebSocket methods blockhook uses (account, program, logs, signature and slot
 * subscriptions and their unsubscribe calls) and the HTTP methods of gap recovery
 * (getSignaturesForAddress, getTransaction, getAccountInfo, getSignatureStatuses), on one port.
 *
 * What it keeps of the documented protocol: integer subscription ids; `<method>Notification`
 * messages `{"jsonrpc":"2.0","method":…,"params":{"result":…,"subscription":N}}` whose result is
 * `{context:{slot}, value}` (slotNotification's is `{parent, root, slot}`); JSON-RPC error objects
 * for bad params (-32602), unknown methods (-32601), unparsable messages (-32700) and unknown
 * subscription ids ("Invalid subscription id."); subscriptions that end with their connection;
 * signatureSubscribe cancelled by the node after its one terminal notification. Messages are
 * built from the documentation's examples in test/fixtures/solana.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { base58 } from '@scure/base'
import { WebSocketServer, type WebSocket } from 'ws'

const FIXTURES = new URL('../fixtures/solana/', import.meta.url)

/** A documented example message, parsed fresh on every call so tests may change it. */
export function solanaFixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as T
}

export type SubscribeMethod = 'accountSubscribe' | 'programSubscribe' | 'logsSubscribe' | 'signatureSubscribe' | 'slotSubscribe'

const SUBSCRIBE_METHODS: readonly SubscribeMethod[] = [
  'accountSubscribe', 'programSubscribe', 'logsSubscribe', 'signatureSubscribe', 'slotSubscribe',
]
const COMMITMENTS = ['processed', 'confirmed', 'finalized']
const ACCOUNT_ENCODINGS = ['base58', 'base64', 'base64+zstd', 'jsonParsed']

export interface NodeSubscription {
  id: number
  method: SubscribeMethod
  params: unknown[]
}

export interface JsonRpcRequest {
  jsonrpc: '2.0'
  id: number | string | null
  method: string
  params?: unknown[]
}

export interface LedgerTransaction {
  signature: string
  slot: number
  /** The accounts the transaction references (getSignaturesForAddress matches on these). */
  accountKeys: string[]
  logs: string[]
  err?: unknown
  blockTime?: number | null
  /** Where the cluster is with it (getSignatureStatuses); finalized unless said otherwise. */
  confirmationStatus?: 'processed' | 'confirmed' | 'finalized'
}

/** The `{context: {slot}, value}` of a notification. */
export interface SlotAndValue {
  slot: number
  value: unknown
}

class InvalidParams extends Error {}

interface Waiter<T> {
  match: (item: T) => boolean
  resolve: (item: T) => void
}

function isBase58Of(text: unknown, bytes: number): boolean {
  if (typeof text !== 'string' || text.length > 88) return false
  try {
    return base58.decode(text).length === bytes
  } catch {
    return false
  }
}

function requireConfig(config: unknown, allowed: Record<string, (v: unknown) => boolean>): void {
  if (config === undefined) return
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InvalidParams('invalid type: expected a configuration object')
  }
  for (const [field, value] of Object.entries(config)) {
    const check = allowed[field]
    if (!check) throw new InvalidParams(`unknown field \`${field}\``)
    if (!check(value)) throw new InvalidParams(`invalid value for \`${field}\``)
  }
}

const commitment = (v: unknown) => typeof v === 'string' && COMMITMENTS.includes(v)
const accountEncoding = (v: unknown) => typeof v === 'string' && ACCOUNT_ENCODINGS.includes(v)
/** memcmp `bytes` are base58 (default) or base64 of at most 128 bytes; a filter is one of memcmp or dataSize. */
function memcmpBytesValid(memcmp: { bytes?: unknown; encoding?: unknown }): boolean {
  if (typeof memcmp.bytes !== 'string') return false
  if (memcmp.encoding === 'base64') return Buffer.from(memcmp.bytes, 'base64').length <= 128
  if (memcmp.encoding !== undefined && memcmp.encoding !== 'base58') return false
  try {
    return base58.decode(memcmp.bytes).length <= 128
  } catch {
    return false
  }
}

const programFilters = (v: unknown) =>
  Array.isArray(v) && v.every((f) => {
    if (typeof f !== 'object' || f === null || Object.keys(f).length !== 1) return false
    const { dataSize, memcmp } = f as { dataSize?: unknown; memcmp?: { offset?: unknown; bytes?: unknown; encoding?: unknown } }
    if (dataSize !== undefined) return Number.isInteger(dataSize)
    return typeof memcmp === 'object' && memcmp !== null && Number.isInteger(memcmp.offset) && memcmpBytesValid(memcmp)
  })

/** Checks a subscribe request's params the way the documentation describes them. */
function checkSubscribeParams(method: SubscribeMethod, params: unknown[]): void {
  switch (method) {
    case 'accountSubscribe':
      if (!isBase58Of(params[0], 32)) throw new InvalidParams('invalid pubkey')
      requireConfig(params[1], { commitment, encoding: accountEncoding })
      return
    case 'programSubscribe':
      if (!isBase58Of(params[0], 32)) throw new InvalidParams('invalid program id')
      requireConfig(params[1], { commitment, encoding: accountEncoding, filters: programFilters, withContext: (v) => typeof v === 'boolean' })
      return
    case 'logsSubscribe': {
      const filter = params[0]
      const mentions = (filter as { mentions?: unknown } | null)?.mentions
      const valid = filter === 'all' || filter === 'allWithVotes' ||
        (Array.isArray(mentions) && Object.keys(filter as object).length === 1 && mentions.length === 1 && isBase58Of(mentions[0], 32))
      if (!valid) throw new InvalidParams('the logs filter is "all", "allWithVotes" or {"mentions": [one pubkey]}')
      requireConfig(params[1], { commitment })
      return
    }
    case 'signatureSubscribe':
      if (!isBase58Of(params[0], 64)) throw new InvalidParams('invalid signature')
      requireConfig(params[1], { commitment, enableReceivedNotification: (v) => typeof v === 'boolean' })
      return
    case 'slotSubscribe':
      if (params.length > 0) throw new InvalidParams('slotSubscribe takes no parameters')
  }
}

export class FakeSolanaNode {
  readonly wsUrl: string
  readonly httpUrl: string
  /** Every WebSocket request received, in order, across connections. */
  readonly requests: JsonRpcRequest[] = []
  /** Every HTTP JSON-RPC request received, in order. */
  readonly httpRequests: JsonRpcRequest[] = []
  /** How many WebSocket connections were opened so far. */
  connections = 0
  /** HTTP methods the node takes but never answers (a hung endpoint). */
  readonly stalledHttpMethods = new Set<string>()

  readonly #server: Server
  readonly #wss: WebSocketServer
  readonly #subscriptions = new Map<number, NodeSubscription & { socket: WebSocket }>()
  readonly #subscriptionWaiters: Waiter<NodeSubscription>[] = []
  readonly #requestWaiters: Waiter<JsonRpcRequest>[] = []
  readonly #httpWaiters: Waiter<JsonRpcRequest>[] = []
  readonly #transactions: LedgerTransaction[] = []
  readonly #accounts = new Map<string, SlotAndValue | null>()
  #nextSubscriptionId = 23784

  private constructor(server: Server, wss: WebSocketServer, port: number) {
    this.#server = server
    this.#wss = wss
    this.wsUrl = `ws://127.0.0.1:${port}`
    this.httpUrl = `http://127.0.0.1:${port}`
  }

  static async start(): Promise<FakeSolanaNode> {
    const server = createServer()
    const wss = new WebSocketServer({ server })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const node = new FakeSolanaNode(server, wss, (server.address() as { port: number }).port)
    server.on('request', (req, res) => node.#onHttp(req, res))
    wss.on('connection', (socket) => node.#onConnection(socket))
    return node
  }

  // --- what tests look at -----------------------------------------------------------------------

  /** The subscriptions live on the node now. */
  subscriptions(method?: SubscribeMethod): NodeSubscription[] {
    return [...this.#subscriptions.values()]
      .filter((s) => !method || s.method === method)
      .map(({ id, method: m, params }) => ({ id, method: m, params }))
  }

  /** Resolves with the first live subscription (now or later) of `method` whose params match. */
  waitForSubscription(method: SubscribeMethod, match: (params: unknown[]) => boolean = () => true): Promise<NodeSubscription> {
    const accept = (s: NodeSubscription) => s.method === method && match(s.params)
    const existing = this.subscriptions().find(accept)
    if (existing) return Promise.resolve(existing)
    return new Promise((resolve) => this.#subscriptionWaiters.push({ match: accept, resolve }))
  }

  /** Resolves with the first WebSocket request (already received or later) that matches. */
  waitForRequest(method: string, match: (request: JsonRpcRequest) => boolean = () => true): Promise<JsonRpcRequest> {
    const accept = (r: JsonRpcRequest) => r.method === method && match(r)
    const existing = this.requests.find(accept)
    if (existing) return Promise.resolve(existing)
    return new Promise((resolve) => this.#requestWaiters.push({ match: accept, resolve }))
  }

  /** Resolves with the first HTTP request (already received or later) that matches. */
  waitForHttpRequest(method: string, match: (request: JsonRpcRequest, index: number) => boolean = () => true): Promise<JsonRpcRequest> {
    const accept = (r: JsonRpcRequest) => r.method === method && match(r, this.httpRequests.indexOf(r))
    const existing = this.httpRequests.find(accept)
    if (existing) return Promise.resolve(existing)
    return new Promise((resolve) => this.#httpWaiters.push({ match: accept, resolve }))
  }

  /**
   * Sends a subscription's notification. `result` is `{context:{slot}, value}` except for
   * slotSubscribe, whose result is `{parent, root, slot}`. A terminal signatureNotification ends
   * its subscription, as the node does.
   */
  notify(subscription: NodeSubscription | number, result: unknown): void {
    const id = typeof subscription === 'number' ? subscription : subscription.id
    const live = this.#subscriptions.get(id)
    if (!live) throw new Error(`no live subscription ${id}`)
    const method = live.method.replace('Subscribe', 'Notification')
    live.socket.send(JSON.stringify({ jsonrpc: '2.0', method, params: { result, subscription: id } }))
    const value = (result as { value?: unknown } | null)?.value
    if (live.method === 'signatureSubscribe' && value !== 'receivedSignature') this.#subscriptions.delete(id)
  }

  /** Sends a text frame as it is to every connection (malformed messages, stray notifications). */
  sendRaw(text: string): void {
    for (const socket of this.#wss.clients) socket.send(text)
  }

  /** Cuts every connection without a close handshake; their subscriptions end with them. */
  dropConnections(): void {
    for (const socket of this.#wss.clients) socket.terminate()
    // The node forgets them at once; waiting for 'close' would let a test see stale ones.
    this.#subscriptions.clear()
  }

  // --- the ledger the HTTP methods read ---------------------------------------------------------

  addTransaction(tx: LedgerTransaction): void {
    this.#transactions.push(tx)
  }

  setAccount(pubkey: string, state: SlotAndValue | null): void {
    this.#accounts.set(pubkey, state)
  }

  async stop(): Promise<void> {
    for (const socket of this.#wss.clients) socket.terminate()
    await new Promise((resolve) => this.#wss.close(resolve))
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }

  // --- WebSocket PubSub -------------------------------------------------------------------------

  #onConnection(socket: WebSocket): void {
    this.connections++
    socket.on('message', (data) => this.#onMessage(socket, data.toString()))
    socket.on('close', () => {
      for (const [id, sub] of this.#subscriptions) if (sub.socket === socket) this.#subscriptions.delete(id)
    })
  }

  #onMessage(socket: WebSocket, text: string): void {
    let request: JsonRpcRequest
    try {
      request = JSON.parse(text) as JsonRpcRequest
    } catch {
      socket.send(JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null }))
      return
    }
    this.requests.push(request)
    this.#settle(this.#requestWaiters, request)
    socket.send(JSON.stringify(this.#answerPubSub(socket, request)))
  }

  #answerPubSub(socket: WebSocket, request: JsonRpcRequest): object {
    const { id, method } = request
    const params = request.params ?? []
    if (!Array.isArray(params)) return this.#error(id, -32602, 'Invalid params: expected an array')
    if ((SUBSCRIBE_METHODS as readonly string[]).includes(method)) {
      try {
        checkSubscribeParams(method as SubscribeMethod, params)
      } catch (err) {
        if (err instanceof InvalidParams) {
          const example = solanaFixture('error-invalid-params')
          return { ...example, error: { ...example.error, message: `Invalid params: ${err.message}.` }, id }
        }
        throw err
      }
      const subscription: NodeSubscription = { id: this.#nextSubscriptionId++, method: method as SubscribeMethod, params }
      this.#subscriptions.set(subscription.id, { ...subscription, socket })
      // The answer is sent after this returns, so a test's notification never overtakes it.
      queueMicrotask(() => this.#settle(this.#subscriptionWaiters, subscription))
      return { ...solanaFixture('subscribe-response'), result: subscription.id, id }
    }
    if (/^(account|program|logs|signature|slot)Unsubscribe$/.test(method)) {
      const target = params[0]
      const live = typeof target === 'number' ? this.#subscriptions.get(target) : undefined
      if (!Number.isInteger(target) || !live || live.socket !== socket ||
        live.method !== method.replace('Unsubscribe', 'Subscribe')) {
        return { ...solanaFixture('error-invalid-subscription-id'), id }
      }
      this.#subscriptions.delete(target as number)
      return { ...solanaFixture('unsubscribe-response'), id }
    }
    return { ...solanaFixture('error-method-not-found'), id }
  }

  #settle<T>(waiters: Waiter<T>[], item: T): void {
    for (const waiter of [...waiters]) {
      if (!waiter.match(item)) continue
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(item)
    }
  }

  #error(id: JsonRpcRequest['id'], code: number, message: string): object {
    return { jsonrpc: '2.0', error: { code, message }, id }
  }

  // --- HTTP JSON-RPC ----------------------------------------------------------------------------

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      res.writeHead(405).end()
      return
    }
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      let answer: object
      try {
        const request = JSON.parse(body) as JsonRpcRequest
        this.httpRequests.push(request)
        answer = this.#answerHttp(request)
        this.#settle(this.#httpWaiters, request)
        if (this.stalledHttpMethods.has(request.method)) return
      } catch {
        answer = this.#error(null, -32700, 'Parse error')
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
    })
  }

  #answerHttp(request: JsonRpcRequest): object {
    const { id, method } = request
    const params = request.params ?? []
    const config = (params[1] ?? {}) as Record<string, unknown>
    switch (method) {
      case 'getSignaturesForAddress': {
        if (!isBase58Of(params[0], 32)) return this.#error(id, -32602, 'Invalid param: Invalid')
        if (config.commitment === 'processed') {
          return this.#error(id, -32602, 'Invalid params: Method does not support commitment below `confirmed`.')
        }
        const limit = (config.limit as number | undefined) ?? 1000
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return this.#error(id, -32602, 'Invalid limit; max 1000')
        const newestFirst = this.#transactions
          .map((tx, order) => ({ tx, order }))
          .filter(({ tx }) => tx.accountKeys.includes(params[0] as string))
          .sort((a, b) => b.tx.slot - a.tx.slot || b.order - a.order)
          .map(({ tx }) => tx)
        let start = 0
        if (typeof config.before === 'string') {
          const at = newestFirst.findIndex((tx) => tx.signature === config.before)
          start = at === -1 ? newestFirst.length : at + 1
        }
        const page: LedgerTransaction[] = []
        for (const tx of newestFirst.slice(start)) {
          if (tx.signature === config.until || page.length === limit) break
          page.push(tx)
        }
        const [example] = solanaFixture('get-signatures-for-address').result
        const result = page.map((tx) => ({
          ...example, signature: tx.signature, slot: tx.slot, err: tx.err ?? null, blockTime: tx.blockTime ?? null,
        }))
        return { jsonrpc: '2.0', result, id }
      }
      case 'getTransaction': {
        if (!isBase58Of(params[0], 64)) return this.#error(id, -32602, 'Invalid param: Invalid')
        const tx = this.#transactions.find((t) => t.signature === params[0])
        if (!tx) return { jsonrpc: '2.0', result: null, id }
        const result = solanaFixture('get-transaction').result
        result.slot = tx.slot
        result.blockTime = tx.blockTime ?? null
        result.meta.err = tx.err ?? null
        result.meta.status = tx.err ? { Err: tx.err } : { Ok: null }
        result.meta.logMessages = tx.logs
        result.transaction.signatures = [tx.signature]
        result.transaction.message.accountKeys = tx.accountKeys
        return { jsonrpc: '2.0', result, id }
      }
      case 'getSignatureStatuses': {
        const signatures = params[0]
        if (!Array.isArray(signatures) || signatures.length > 256 || !signatures.every((sig) => isBase58Of(sig, 64))) {
          return this.#error(id, -32602, 'Invalid params: expected up to 256 signatures')
        }
        const example = solanaFixture('get-signature-statuses').result
        const value = signatures.map((sig) => {
          const tx = this.#transactions.find((t) => t.signature === sig)
          if (!tx) return null
          const status = tx.confirmationStatus ?? 'finalized'
          return {
            ...example.value[0], slot: tx.slot, err: tx.err ?? null, status: tx.err ? { Err: tx.err } : { Ok: null },
            confirmations: status === 'finalized' ? null : 1, confirmationStatus: status,
          }
        })
        return { jsonrpc: '2.0', result: { context: example.context, value }, id }
      }
      case 'getAccountInfo': {
        if (!isBase58Of(params[0], 32)) return this.#error(id, -32602, 'Invalid param: Invalid')
        const example = solanaFixture('get-account-info').result
        const state = this.#accounts.get(params[0] as string)
        if (!state) return { jsonrpc: '2.0', result: { context: example.context, value: null }, id }
        return { jsonrpc: '2.0', result: { context: { ...example.context, slot: state.slot }, value: state.value }, id }
      }
      default:
        return { ...solanaFixture('error-method-not-found'), id }
    }
  }
}
