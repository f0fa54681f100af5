/**
 * A watch's delivery attempts per minute (delivered above failed) and event-to-delivery latency
 * (p50 and p95), from GET /watches/:id/stats/minutes, drawn as plain SVG: two charts need no
 * chart library. Each chart is an image with a summary for its accessible name, and the numbers
 * behind both are in a table below them.
 */
import { useCallback, useEffect, useState } from 'preact/hooks'
import { call, duration } from './api.js'

const WINDOWS = [[60, 'Last hour'], [180, 'Last 3 hours'], [360, 'Last 6 hours']]
const WIDTH = 720
const BARS_HEIGHT = 110
const LATENCY_HEIGHT = 90
/** Room on the left for the scale's label. */
const AXIS = 48
const POLL_MS = 15_000

function clock(iso) { return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }

/** An SVG path through the minutes that have a value, broken where they have none. */
function linePath(items, x, y, value) {
  let path = ''
  let drawing = false
  items.forEach((item, i) => {
    const v = item.latency ? value(item.latency) : undefined
    if (v === undefined) { drawing = false; return }
    path += `${drawing ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`
    drawing = true
  })
  return path
}

function Axis({ height, top, bottom, items }) {
  return (
    <g class="axis" aria-hidden="true">
      <text x={AXIS - 4} y={10} text-anchor="end">{top}</text>
      <text x={AXIS - 4} y={height} text-anchor="end">{bottom}</text>
      <line x1={AXIS} y1={0} x2={AXIS} y2={height} />
      <line x1={AXIS} y1={height} x2={WIDTH} y2={height} />
      {items.length > 0 && <>
        <text x={AXIS} y={height + 14}>{clock(items[0].minute)}</text>
        <text x={WIDTH} y={height + 14} text-anchor="end">{clock(items[items.length - 1].minute)}</text>
      </>}
    </g>
  )
}

export function DeliveryMinutes({ token, watchId, refreshKey }) {
  const [minutes, setMinutes] = useState(60)
  const [items, setItems] = useState([])
  const [error, setError] = useState('')
  const load = useCallback(async () => {
    const res = await call(token, 'GET', `/watches/${watchId}/stats/minutes?minutes=${minutes}`)
    if (res.ok) { setItems(res.body.items); setError('') } else setError(res.body?.message ?? `HTTP ${res.status}`)
  }, [token, watchId, minutes])
  useEffect(() => {
    load()
    const timer = setInterval(load, POLL_MS)
    return () => clearInterval(timer)
  }, [load, refreshKey])

  const label = WINDOWS.find(([m]) => m === minutes)[1].toLowerCase()
  const delivered = items.reduce((n, m) => n + m.delivered, 0)
  const failed = items.reduce((n, m) => n + m.failed, 0)
  const busiest = Math.max(1, ...items.map((m) => m.delivered + m.failed))
  const measured = items.filter((m) => m.latency)
  const slowest = Math.max(1, ...measured.map((m) => m.latency.p95Ms))
  const step = (WIDTH - AXIS) / Math.max(1, items.length)
  const x = (i) => AXIS + i * step
  const bar = Math.max(step - (step > 4 ? 1 : 0), 0.5)
  const barY = (n) => (n / busiest) * BARS_HEIGHT
  const latencyY = (ms) => LATENCY_HEIGHT - (ms / slowest) * (LATENCY_HEIGHT - 4)
  const p50s = measured.map((m) => m.latency.p50Ms).sort((a, b) => a - b)

  return (
    <section class="card" aria-labelledby="minutes-heading">
      <div class="row">
        <h3 id="minutes-heading">Deliveries per minute</h3>
        <label>Chart window <select value={minutes} onChange={(e) => setMinutes(Number(e.currentTarget.value))}>
          {WINDOWS.map(([m, text]) => <option value={m}>{text}</option>)}</select></label>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${BARS_HEIGHT + 18}`} role="img"
        aria-label={`Delivery attempts per minute, ${label}: ${delivered} delivered, ${failed} failed; the busiest minute had ${items.length ? busiest : 0}.`}>
        <Axis height={BARS_HEIGHT} top={busiest} bottom="0" items={items} />
        {items.map((m, i) => m.delivered + m.failed > 0 && (
          <g>
            <rect class="bar-delivered" x={x(i)} y={BARS_HEIGHT - barY(m.delivered)} width={bar} height={barY(m.delivered)} />
            <rect class="bar-failed" x={x(i)} y={BARS_HEIGHT - barY(m.delivered) - barY(m.failed)} width={bar} height={barY(m.failed)} />
          </g>
        ))}
      </svg>
      <p class="legend"><span class="swatch bar-delivered" /> delivered <span class="swatch bar-failed" /> failed (every failed attempt, retried or final)</p>
      <h4 id="latency-heading">Event-to-delivery latency</h4>
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${LATENCY_HEIGHT + 18}`} role="img"
        aria-label={measured.length
          ? `Event-to-delivery latency per minute, ${label}: median p50 ${duration(p50s[Math.floor(p50s.length / 2)])}, highest p95 ${duration(slowest)}.`
          : `Event-to-delivery latency per minute, ${label}: no deliveries.`}>
        <Axis height={LATENCY_HEIGHT} top={measured.length ? duration(slowest) : ''} bottom="0" items={items} />
        <path class="line-p95" d={linePath(items, (i) => x(i) + bar / 2, latencyY, (l) => l.p95Ms)} />
        <path class="line-p50" d={linePath(items, (i) => x(i) + bar / 2, latencyY, (l) => l.p50Ms)} />
        {items.map((m, i) => m.latency && <g>
          <circle class="dot-p95" cx={x(i) + bar / 2} cy={latencyY(m.latency.p95Ms)} r="2.5" />
          <circle class="dot-p50" cx={x(i) + bar / 2} cy={latencyY(m.latency.p50Ms)} r="2.5" />
        </g>)}
      </svg>
      <p class="legend"><span class="swatch line-p50" /> p50 <span class="swatch line-p95" /> p95, from the first sight of the event to its 2xx (replays and manual retries left out)</p>
      <details>
        <summary>The charts as a table</summary>
        {items.some((m) => m.delivered + m.failed > 0)
          ? <table aria-label="Deliveries per minute">
            <thead><tr><th>Minute</th><th>Delivered</th><th>Failed</th><th>Latency p50</th><th>Latency p95</th></tr></thead>
            <tbody>{items.filter((m) => m.delivered + m.failed > 0).map((m) => (
              <tr><td>{clock(m.minute)}</td><td>{m.delivered}</td><td>{m.failed}</td>
                <td>{m.latency ? duration(m.latency.p50Ms) : '—'}</td><td>{m.latency ? duration(m.latency.p95Ms) : '—'}</td></tr>
            ))}</tbody>
          </table>
          : <p>No delivery attempts {label}.</p>}
      </details>
    </section>
  )
}
