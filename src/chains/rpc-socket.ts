/**
 * A WebSocket JSON-RPC client in the shape of viem's socket client, plus what viem
 * lacks: ordered endpoints with failover, exponential backoff with jitter, a pong timeout and a
 * stale-head watchdog so a dead socket is always noticed, and a `connected` event on every
 * connection fired only once every subscription has been replayed, so the caller can backfill
 * from its cursor knowing that nothing after that point can be missed.
 *
 * Chain-generic: EVM uses `eth_subscribe`/`eth_subscription`, Solana `accountSubscribe`/
 * `accountNotification`; both send notifications as `{method, params: {subscription, result}}`.
 *
 * Invariants:
 * - every request settles: with its result, an RpcError, a timeout, or BH_RPC_DISCONNECTED when
 *   the socket closes under it (fanned out to every waiter);
 * - a subscription lives in `#subscriptions` until unsubscribed and is replayed on every
 *   connection; notifications for a server id not yet known are held (bounded) until it is.
 */
import WebSocket from 'ws'
import type { Logger } from 'pino'
import { BlockhookError, type ErrorCode } from '../domain/errors.js'
import { redactUrl } from '../domain/redact.js'
import { SkipLog } from '../skip-log.js'
import { jsonDeeperThan, MAX_NODE_JSON_DEPTH } from './json-depth.js'

export interface RpcSocketOptions {
  /** Shown in logs (a chain id). */
  name: string
  /** In order of preference; on every disconnect the client moves on to the next one. */
  endpoints: readonly string[]
  logger: Logger
  /**
   * A request unanswered this long fails, and counts against the endpoint like a missing head:
   * the connection is dropped and the next endpoint tried (a node that sends heads but answers
   * nothing must not stall the chain), and readiness says so until a node answers again.
   */
  requestTimeoutMs?: number
  connectTimeoutMs?: number
  pingIntervalMs?: number
  pongTimeoutMs?: number
  /**
   * Closes the connection and fails over when `touch()` has not been called for this long
   * (callers touch on every head). Undefined: no watchdog.
   */
  watchdogMs?: number
  backoffInitialMs?: number
  backoffMaxMs?: number
  /**
   * Largest frame accepted; `ws` closes the connection on a bigger one (logged, reconnected).
   * Also bounds the bytes held for notifications whose subscription id is not yet known.
   */
  maxPayloadBytes?: number
  /** Injected for tests of the jitter. */
  random?: () => number
  /** Parses a text frame; JSON.parse by default (Solana keeps u64 values exact with its own). */
  parseMessage?: (text: string) => unknown
}

export interface SubscribeRequest {
  method: string
  params: readonly unknown[]
  unsubscribeMethod: string
}

export interface RpcSubscription {
  /** Resolves once the node has accepted the subscription the first time. */
  readonly ready: Promise<void>
  unsubscribe(): Promise<void>
  /**
   * Drops the subscription without a word to the node, for one the node ended by itself
   * (Solana's signatureSubscribe after its notification): no unsubscribe call, no replay.
   */
  forget(): void
}

export interface ConnectionInfo {
  /** Scheme and host only (docs/architecture.md, "Data and secrets"). */
  endpoint: string
}

export interface DisconnectInfo extends ConnectionInfo {
  reason: string
}

interface RpcSocketEvents {
  connected: (info: ConnectionInfo) => void
  disconnected: (info: DisconnectInfo) => void
}

export class RpcError extends BlockhookError {
  readonly rpcCode: number | undefined
  readonly rpcData: unknown

  constructor(code: ErrorCode, message: string, rpcCode?: number, rpcData?: unknown) {
    super(code, message)
    this.name = 'RpcError'
    this.rpcCode = rpcCode
    this.rpcData = rpcData
  }
}

interface PendingRequest {
  method: string
  resolve: (result: unknown) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

interface SubscriptionEntry {
  request: SubscribeRequest
  onNotification: (result: unknown) => void
  /** The node's id on the current connection, once known. */
  serverId: string | undefined
  markReady: () => void
  onLive: (() => void) | undefined
  closed: boolean
}

const DEFAULTS = {
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  backoffInitialMs: 250,
  backoffMaxMs: 30_000,
  maxPayloadBytes: 16 * 1024 * 1024,
}
/** Notifications held for server ids not yet mapped; beyond this (or the byte bound) the oldest are dropped. */
const MAX_EARLY_NOTIFICATIONS = 10_000

interface EarlyNotification {
  result: unknown
  bytes: number
}

type Listener<E extends keyof RpcSocketEvents> = RpcSocketEvents[E]

export class RpcSocket {
  readonly #options: Required<Omit<RpcSocketOptions, 'watchdogMs'>> & { watchdogMs: number | undefined }
  readonly #log: Logger
  readonly #pending = new Map<number, PendingRequest>()
  readonly #subscriptions = new Set<SubscriptionEntry>()
  readonly #byServerId = new Map<string, SubscriptionEntry>()
  readonly #early = new Map<string, EarlyNotification[]>()
  #earlyCount = 0
  #earlyBytes = 0
  readonly #skips: SkipLog
  /** Set when a request timed out; cleared by the next answer from any node. */
  #unanswered: { method: string; endpoint: string; timeoutMs: number } | undefined
  readonly #listeners: { [E in keyof RpcSocketEvents]: Set<Listener<E>> } = {
    connected: new Set(), disconnected: new Set(),
  }

  #ws: WebSocket | undefined
  #open = false
  #stopped = true
  #endpointIndex = 0
  #failures = 0
  #everConnected = false
  #reconnects = 0
  #nextId = 1
  #reconnectTimer: NodeJS.Timeout | undefined
  #pingTimer: NodeJS.Timeout | undefined
  #pongTimer: NodeJS.Timeout | undefined
  #awaitingPong = false
  #acknowledgeScheduled = false
  #watchdogTimer: NodeJS.Timeout | undefined

  constructor(options: RpcSocketOptions) {
    if (options.endpoints.length === 0) throw new BlockhookError('BH_RPC_NO_ENDPOINT', `${options.name}: no endpoint`)
    this.#options = { ...DEFAULTS, random: Math.random, parseMessage: JSON.parse, watchdogMs: undefined, ...options }
    this.#log = options.logger.child({ rpc: options.name })
    this.#skips = new SkipLog(this.#log)
  }

  get connected(): boolean {
    return this.#open
  }

  /** The endpoint in use (or next to be tried), redacted. */
  get endpoint(): string {
    return redactUrl(this.#options.endpoints[this.#endpointIndex]!)
  }

  /** Why the node cannot be relied on although a socket may be open (a request went unanswered), if so. */
  get unansweredReason(): string | undefined {
    const u = this.#unanswered
    return u && `${u.endpoint} did not answer ${u.method} within ${u.timeoutMs} ms`
  }

  get reconnects(): number {
    return this.#reconnects
  }

  get subscriptionCount(): number {
    return this.#subscriptions.size
  }

  on<E extends keyof RpcSocketEvents>(event: E, listener: Listener<E>): () => void {
    this.#listeners[event].add(listener)
    return () => this.#listeners[event].delete(listener)
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#connect()
  }

  /** Closes for good: every waiter is rejected, no reconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#reconnectTimer)
    const ws = this.#ws
    this.#teardown('closed by the caller')
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => ws.once('close', resolve))
      ws.close()
      const force = setTimeout(() => ws.terminate(), 1000)
      await closed
      clearTimeout(force)
    }
  }

  /**
   * Gives up the current connection for the next endpoint: for a node that answers but cannot be
   * followed (behind for long, contradicting itself, serving another chain).
   */
  failover(reason: string): void {
    if (!this.#open || !this.#ws) return
    this.#log.warn({ endpoint: this.endpoint, reason }, 'switching endpoint')
    this.#ws.terminate()
  }

  /** Resets the watchdog: the caller saw the liveness it expects (a head). */
  touch(): void {
    // Without a subscription no head is expected (a standby), so there is nothing to watch.
    if (!this.#open || this.#options.watchdogMs === undefined || this.#subscriptions.size === 0) return
    clearTimeout(this.#watchdogTimer)
    this.#watchdogTimer = setTimeout(() => {
      this.#log.warn({ endpoint: this.endpoint, watchdogMs: this.#options.watchdogMs }, 'no head for too long, switching endpoint')
      this.#ws?.terminate()
    }, this.#options.watchdogMs)
    this.#watchdogTimer.unref()
  }

  /** Sends one request; fails fast with BH_RPC_DISCONNECTED when there is no connection. */
  request<T = unknown>(method: string, params: readonly unknown[] = [], timeoutMs = this.#options.requestTimeoutMs): Promise<T> {
    const ws = this.#ws
    if (!this.#open || !ws) {
      return Promise.reject(new RpcError('BH_RPC_DISCONNECTED', `${method}: not connected`))
    }
    return this.#send(ws, method, params, timeoutMs) as Promise<T>
  }

  /**
   * Registers a subscription that is kept across reconnects. Notifications reach
   * `onNotification` with the notification's `result`, unvalidated: the caller checks its shape.
   * `onLive` runs each time a node accepts the subscription (first time and every renewal),
   * before any notification of that connection reaches `onNotification`: where a caller fills
   * the gap the renewal left, once per connection and ahead of what follows it.
   */
  subscribe(request: SubscribeRequest, onNotification: (result: unknown) => void, onLive?: () => void): RpcSubscription {
    let markReady!: () => void
    const ready = new Promise<void>((resolve) => { markReady = resolve })
    const entry: SubscriptionEntry = { request, onNotification, serverId: undefined, markReady, onLive, closed: false }
    this.#subscriptions.add(entry)
    if (this.#open && this.#ws) {
      void this.#establish(this.#ws, entry).catch((err: unknown) => {
        this.#log.warn({ err, method: request.method }, 'subscription refused; retried on the next connection')
      })
      if (this.#subscriptions.size === 1) this.touch()
    }
    return {
      ready,
      unsubscribe: async () => {
        if (entry.closed) return
        entry.closed = true
        this.#subscriptions.delete(entry)
        if (this.#subscriptions.size === 0) clearTimeout(this.#watchdogTimer)
        const serverId = entry.serverId
        if (serverId === undefined) return
        this.#byServerId.delete(serverId)
        await this.request(request.unsubscribeMethod, [this.#serverIdParam(serverId)]).catch((err: unknown) => {
          this.#log.debug({ err, method: request.unsubscribeMethod }, 'unsubscribe failed (connection gone?)')
        })
      },
      forget: () => {
        entry.closed = true
        this.#subscriptions.delete(entry)
        if (entry.serverId !== undefined) this.#byServerId.delete(entry.serverId)
      },
    }
  }

  // --- connection lifecycle --------------------------------------------------------------------

  #connect(): void {
    if (this.#stopped) return
    const url = this.#options.endpoints[this.#endpointIndex]!
    const endpoint = redactUrl(url)
    this.#log.debug({ endpoint }, 'connecting')
    const ws = new WebSocket(url, {
      maxPayload: this.#options.maxPayloadBytes,
      handshakeTimeout: this.#options.connectTimeoutMs,
      perMessageDeflate: false,
    })
    this.#ws = ws
    ws.on('open', () => void this.#onOpen(ws))
    ws.on('message', (data, isBinary) => {
      this.#onMessage(data, isBinary)
      this.#acknowledge(ws)
    })
    ws.on('pong', () => {
      this.#awaitingPong = false
      clearTimeout(this.#pongTimer)
    })
    ws.on('error', (err) => this.#log.warn({ endpoint, err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'socket error'))
    ws.on('close', (code, reason) => this.#onClose(ws, `${code}${reason.length > 0 ? ` ${reason.toString().slice(0, 200)}` : ''}`))
  }

  async #onOpen(ws: WebSocket): Promise<void> {
    if (ws !== this.#ws) return
    this.#open = true
    this.#startPing(ws)
    this.touch()
    const results = await Promise.allSettled([...this.#subscriptions].map((entry) => this.#establish(ws, entry)))
    if (ws !== this.#ws || !this.#open) return
    const failed = results.filter((r) => r.status === 'rejected').length
    if (failed > 0) this.#log.warn({ failed }, 'some subscriptions could not be replayed')
    this.#failures = 0
    const info = { endpoint: this.endpoint }
    const reconnect = this.#everConnected
    this.#everConnected = true
    this.#log.info({ ...info, reconnect, subscriptions: this.#subscriptions.size }, 'connected')
    this.#emit('connected', info)
  }

  #onClose(ws: WebSocket, reason: string): void {
    if (ws !== this.#ws) return
    const endpoint = this.endpoint
    const wasOpen = this.#open
    this.#teardown(`connection closed (${reason})`)
    this.#ws = undefined
    if (this.#stopped) return
    if (wasOpen) {
      this.#reconnects++
      this.#emit('disconnected', { endpoint, reason })
    }
    this.#failures++
    this.#endpointIndex = (this.#endpointIndex + 1) % this.#options.endpoints.length
    const delayMs = this.#backoffMs()
    this.#log.warn({ endpoint, reason, nextEndpoint: this.endpoint, delayMs }, 'disconnected, reconnecting')
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs)
    this.#reconnectTimer.unref()
  }

  /** Exponential with "equal jitter": half fixed, half random, so retries never synchronise. */
  #backoffMs(): number {
    const { backoffInitialMs, backoffMaxMs, random } = this.#options
    const ceiling = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(this.#failures - 1, 30))
    return Math.round(ceiling / 2 + (ceiling / 2) * random())
  }

  #teardown(reason: string): void {
    this.#open = false
    clearInterval(this.#pingTimer)
    clearTimeout(this.#pongTimer)
    this.#awaitingPong = false
    clearTimeout(this.#watchdogTimer)
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer)
      pending.reject(new RpcError('BH_RPC_DISCONNECTED', `${pending.method}: ${reason}`))
      this.#pending.delete(id)
    }
    for (const entry of this.#subscriptions) entry.serverId = undefined
    this.#byServerId.clear()
    this.#early.clear()
    this.#earlyCount = 0
    this.#earlyBytes = 0
  }

  #startPing(ws: WebSocket): void {
    this.#pingTimer = setInterval(() => {
      // A ping still unanswered keeps its deadline: re-arming it would let a hung link live forever.
      if (this.#awaitingPong) return
      this.#awaitingPong = true
      this.#pongTimer = setTimeout(() => {
        this.#log.warn({ endpoint: this.endpoint }, 'no pong, switching endpoint')
        ws.terminate()
      }, this.#options.pongTimeoutMs)
      this.#pongTimer.unref()
      try {
        ws.ping()
      } catch (err) {
        this.#log.debug({ err }, 'ping on a closing socket')
      }
    }, this.#options.pingIntervalMs)
    this.#pingTimer.unref()
  }

  /**
   * Sends an unsolicited pong (RFC 6455 §5.5.3: no reply is expected) once per event-loop turn
   * in which frames arrived, so the TCP acknowledgement of those frames leaves at once instead of
   * waiting out the kernel's delayed ACK (up to 40 ms). A node that leaves Nagle's algorithm on
   * (anvil does) holds its next frame until its last one is acknowledged: without this, a head
   * arriving within 40 ms of a previous answer, and the second of two answers sent together,
   * waited 20–40 ms (docs/architecture.md, step 1 of "One node message to one webhook").
   */
  #acknowledge(ws: WebSocket): void {
    if (this.#acknowledgeScheduled) return
    this.#acknowledgeScheduled = true
    setImmediate(() => {
      this.#acknowledgeScheduled = false
      if (ws !== this.#ws || ws.readyState !== WebSocket.OPEN) return
      try {
        ws.pong()
      } catch (err) {
        this.#log.debug({ err }, 'pong on a closing socket')
      }
    })
  }

  #emit<E extends keyof RpcSocketEvents>(event: E, ...args: Parameters<RpcSocketEvents[E]>): void {
    for (const listener of this.#listeners[event]) {
      try {
        (listener as (...a: unknown[]) => void)(...args)
      } catch (err) {
        this.#log.error({ err, event }, 'event listener threw')
      }
    }
  }

  // --- requests and subscriptions ---------------------------------------------------------------

  #send(ws: WebSocket, method: string, params: readonly unknown[], timeoutMs: number): Promise<unknown> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new RpcError('BH_RPC_TIMEOUT', `${method}: no answer within ${timeoutMs} ms`))
        this.#onUnanswered(ws, method, timeoutMs)
      }, timeoutMs)
      timer.unref()
      this.#pending.set(id, { method, resolve, reject, timer })
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }), (err) => {
        if (!err) return
        const pending = this.#pending.get(id)
        if (!pending) return
        clearTimeout(pending.timer)
        this.#pending.delete(id)
        reject(new RpcError('BH_RPC_DISCONNECTED', `${method}: send failed: ${err.message}`))
      })
    })
  }

  #onUnanswered(ws: WebSocket, method: string, timeoutMs: number): void {
    if (ws !== this.#ws || this.#stopped) return
    this.#unanswered = { method, endpoint: this.endpoint, timeoutMs }
    this.#log.warn({ endpoint: this.endpoint, method, timeoutMs }, 'request unanswered, switching endpoint')
    ws.terminate()
  }

  async #establish(ws: WebSocket, entry: SubscriptionEntry): Promise<void> {
    const result = await this.#send(ws, entry.request.method, entry.request.params, this.#options.requestTimeoutMs)
    if (typeof result !== 'string' && typeof result !== 'number') {
      throw new RpcError('BH_RPC_BAD_RESPONSE', `${entry.request.method}: subscription id is not a string or number`)
    }
    const serverId = String(result)
    if (ws !== this.#ws) return
    if (entry.closed) {
      // Unsubscribed while the request was in flight: release it on the node too.
      void this.#send(ws, entry.request.unsubscribeMethod, [result], this.#options.requestTimeoutMs).catch((err: unknown) => {
        this.#log.debug({ err, method: entry.request.unsubscribeMethod }, 'late unsubscribe failed')
      })
      return
    }
    entry.serverId = serverId
    this.#byServerId.set(serverId, entry)
    try {
      entry.onLive?.()
    } catch (err) {
      this.#log.error({ err, method: entry.request.method }, 'onLive threw')
    }
    const early = this.#early.get(serverId)
    if (early) {
      this.#early.delete(serverId)
      this.#earlyCount -= early.length
      for (const notification of early) {
        this.#earlyBytes -= notification.bytes
        this.#deliver(entry, notification.result)
      }
    }
    entry.markReady()
  }

  #serverIdParam(serverId: string): string | number {
    return /^\d+$/.test(serverId) ? Number(serverId) : serverId
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const bytes = rawLength(data)
    if (isBinary) {
      this.#skips.skip('binary frame skipped', { bytes })
      return
    }
    const text = data.toString()
    if (jsonDeeperThan(text, MAX_NODE_JSON_DEPTH)) {
      this.#skips.skip('frame nested too deeply skipped', { bytes, maxDepth: MAX_NODE_JSON_DEPTH })
      return
    }
    let message: unknown
    try {
      message = this.#options.parseMessage(text)
    } catch {
      this.#skips.skip('malformed JSON frame skipped', { bytes })
      return
    }
    const messages = Array.isArray(message) ? message : [message]
    for (const m of messages) this.#route(m, Math.ceil(bytes / messages.length))
  }

  #route(message: unknown, bytes: number): void {
    if (typeof message !== 'object' || message === null) {
      this.#skips.skip('non-object message skipped')
      return
    }
    const m = message as { id?: unknown; result?: unknown; error?: unknown; method?: unknown; params?: unknown }
    if (typeof m.id === 'number') {
      const pending = this.#pending.get(m.id)
      if (!pending) {
        this.#log.debug({ id: m.id }, 'answer to an unknown or timed-out request skipped')
        return
      }
      this.#pending.delete(m.id)
      clearTimeout(pending.timer)
      this.#unanswered = undefined
      if (m.error !== undefined && m.error !== null) {
        const e = m.error as { code?: unknown; message?: unknown; data?: unknown }
        pending.reject(new RpcError(
          'BH_RPC_ERROR', `${pending.method}: ${typeof e.message === 'string' ? e.message.slice(0, 500) : 'error'}`,
          typeof e.code === 'number' ? e.code : undefined, e.data,
        ))
      } else if ('result' in m) {
        pending.resolve(m.result)
      } else {
        pending.reject(new RpcError('BH_RPC_BAD_RESPONSE', `${pending.method}: answer has neither result nor error`))
      }
      return
    }
    const params = m.params as { subscription?: unknown; result?: unknown } | undefined
    if (typeof m.method === 'string' && params && typeof params === 'object'
      && (typeof params.subscription === 'string' || typeof params.subscription === 'number') && 'result' in params) {
      const serverId = String(params.subscription)
      const entry = this.#byServerId.get(serverId)
      if (entry) this.#deliver(entry, params.result)
      else this.#holdEarly(serverId, params.result, bytes)
      return
    }
    this.#skips.skip('message of unknown shape skipped', { method: typeof m.method === 'string' ? m.method.slice(0, 100) : undefined })
  }

  #deliver(entry: SubscriptionEntry, result: unknown): void {
    try {
      entry.onNotification(result)
    } catch (err) {
      this.#log.error({ err, method: entry.request.method }, 'notification handler threw')
    }
  }

  /**
   * A notification may beat the answer that tells us its subscription id; keep it until then,
   * within a count and a byte bound (a node flooding unknown ids must not exhaust the heap).
   */
  #holdEarly(serverId: string, result: unknown, bytes: number): void {
    while (this.#earlyCount >= MAX_EARLY_NOTIFICATIONS || this.#earlyBytes + bytes > this.#options.maxPayloadBytes) {
      const [oldestId, oldest] = this.#early.entries().next().value as [string, EarlyNotification[]]
      const dropped = oldest.shift()!
      this.#earlyCount--
      this.#earlyBytes -= dropped.bytes
      if (oldest.length === 0) this.#early.delete(oldestId)
      this.#skips.skip('too many notifications for unknown subscriptions, dropping the oldest', { subscription: oldestId.slice(0, 100) })
    }
    const held = this.#early.get(serverId) ?? []
    held.push({ result, bytes })
    this.#early.set(serverId, held)
    this.#earlyCount++
    this.#earlyBytes += bytes
  }
}

function rawLength(data: WebSocket.RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0)
  return data instanceof ArrayBuffer ? data.byteLength : data.length
}
