/**
 * The live tail: the tenant's events over GET /events/stream as they are matched. A browser cannot
 * set `Authorization` on a WebSocket, so the key goes in the subprotocols `blockhook.v1` and
 * `bearer.<key>` (never in the URL). A dropped connection comes back with `after=<last cursor>`,
 * so nothing is missed; while paused, events are held and shown on resume.
 */
import { useEffect, useRef, useState } from 'preact/hooks'

/** Rows kept on the page; older ones drop off. */
const MAX_ROWS = 200
const MAX_RETRY_MS = 30_000
/** The server's close code for a cursor older than the stream's retention. */
const CURSOR_EXPIRED = 4410

/** What a row says about the event besides its type: block or slot, transaction, a transfer's value. */
function summaryOf(event) {
  const data = event.data ?? {}
  const parts = []
  const block = data.block?.number ?? data.slot
  if (block !== undefined) parts.push(`${data.slot !== undefined ? 'slot' : 'block'} ${block}`)
  const tx = data.activity?.transactionHash ?? data.transaction?.hash ?? data.log?.transactionHash
  if (typeof tx === 'string') parts.push(`tx ${tx.slice(0, 12)}…`)
  if (data.activity) parts.push(`${data.activity.category} ${data.activity.value ?? data.activity.tokenId ?? ''}`.trim())
  if (data.decoded?.name) parts.push(data.decoded.name)
  if (Array.isArray(data.events)) parts.push(`${data.events.length} event${data.events.length === 1 ? '' : 's'}${data.parts > 1 ? `, part ${data.part} of ${data.parts}` : ''}`)
  return parts.join(' · ')
}

export function LiveEvents({ token, watchId }) {
  const [events, setEvents] = useState([])
  const [held, setHeld] = useState([])
  const [paused, setPaused] = useState(false)
  const [typeFilter, setTypeFilter] = useState('')
  const [state, setState] = useState('connecting')
  const pausedRef = useRef(paused)
  pausedRef.current = paused

  useEffect(() => {
    let socket
    let timer
    let after
    let retryMs = 1_000
    let stopped = false
    const connect = () => {
      const query = new URLSearchParams()
      if (watchId) query.append('watch', watchId)
      if (after) query.set('after', after)
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
      socket = new WebSocket(`${scheme}://${location.host}/events/stream${query.size ? `?${query}` : ''}`, ['blockhook.v1', `bearer.${token}`])
      socket.onopen = () => { retryMs = 1_000; setState('connected') }
      socket.onmessage = (message) => {
        let frame
        try {
          frame = JSON.parse(message.data)
          frame.event = JSON.parse(frame.body)
        } catch {
          return // not a frame of this protocol version: nothing to show
        }
        after = frame.cursor
        frame.receivedAt = new Date()
        const add = (list) => [frame, ...list].slice(0, MAX_ROWS)
        if (pausedRef.current) setHeld(add); else setEvents(add)
      }
      socket.onclose = (e) => {
        if (stopped) return
        if (e.code === CURSOR_EXPIRED) after = undefined
        setState(`disconnected (${e.code}${e.reason ? `: ${e.reason}` : ''}), reconnecting in ${retryMs / 1000} s`)
        timer = setTimeout(connect, retryMs)
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS)
      }
    }
    connect()
    return () => { stopped = true; clearTimeout(timer); socket.close() }
  }, [token, watchId])

  function togglePause(next) {
    setPaused(next)
    if (!next) {
      setEvents((list) => [...held, ...list].slice(0, MAX_ROWS))
      setHeld([])
    }
  }
  const types = [...new Set(events.map((e) => e.event.type))].sort()
  const shown = events.filter((e) => !typeFilter || e.event.type?.startsWith(typeFilter))
  return (
    <main>
      <h2>Live events{watchId && <> of <a href={`#/watches/${watchId}`}>{watchId}</a></>}</h2>
      <div class="row">
        <span role="status">Stream {state}{held.length > 0 && ` · ${held.length} new event${held.length === 1 ? '' : 's'} held while paused`}</span>
        <label><input type="checkbox" checked={paused} onChange={(e) => togglePause(e.currentTarget.checked)} /> Pause live events</label>
        <label>Event type <input value={typeFilter} list="event-types" placeholder="evm.log, or evm. for all EVM" onInput={(e) => setTypeFilter(e.currentTarget.value.trim())} /></label>
        <datalist id="event-types">{types.map((type) => <option value={type} />)}</datalist>
        {typeFilter && <span>{shown.length} of {events.length} shown</span>}
      </div>
      {events.length === 0 && <p>Waiting for events: they appear here as soon as a watch matches one, no reload needed.</p>}
      <ol aria-label="Live events" class="live">
        {shown.map((e) => (
          <li key={e.cursor}>
            <time dateTime={e.event.timestamp}>{e.receivedAt.toLocaleTimeString()}</time>{' '}
            <strong>{e.event.type}</strong> · <a href={`#/watches/${e.watchId}`}>{e.watchId}</a> · <code>{e.headers['webhook-id']}</code>
            {summaryOf(e.event) && <> · {summaryOf(e.event)}</>}
            <details><summary>Body</summary><pre>{JSON.stringify(e.event, null, 2)}</pre></details>
          </li>
        ))}
      </ol>
    </main>
  )
}
