/** The console's one way to the API: the token goes out as `Authorization`, never in a cookie or URL. */
export async function call(token, method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, ok: response.ok, body: text ? JSON.parse(text) : null }
}

export function when(iso) { return iso ? new Date(iso).toLocaleString() : '—' }

/** 850 ms, 2.4 s, 3.2 min: latencies span milliseconds (a fast receiver) to minutes (confirmations). */
export function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  return `${(ms / 60_000).toFixed(1)} min`
}
