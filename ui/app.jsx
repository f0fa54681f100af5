/**
 * The blockhook console: a single page over the public REST API and the event stream. The token
 * lives in this tab's sessionStorage and goes out as `Authorization` only, so there is no cookie
 * and no CSRF surface. Accessible names of the controls are a contract (README, Dashboard).
 */
import { render } from 'preact'
import { useCallback, useEffect, useState } from 'preact/hooks'
import { call, when } from './api.js'
import { DeliveryMinutes } from './chart.jsx'
import { LiveEvents } from './live.jsx'

const TOKEN_KEY = 'blockhook.token'

/** One example filter per type, shown when the type is picked (the user edits it). */
const FILTER_EXAMPLES = {
  'evm.logs': { topics: ['0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'], abi: ['event Transfer(address indexed from, address indexed to, uint256 value)'] },
  'evm.transactions': { to: ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8'], status: 'success' },
  'evm.address_activity': { addresses: ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8'] },
  'evm.blocks': {},
  'evm.pending_transactions': { to: ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8'] },
  'solana.account': { account: 'SysvarC1ock11111111111111111111111111111111' },
  'solana.program': { programId: 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA', filters: [{ dataSize: 165 }] },
  'solana.logs': { mentions: ['TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA'] },
  'solana.signature': { signature: '' },
  'solana.slot': {},
}
const TYPES_BY_CHAIN_TYPE = {
  evm: Object.keys(FILTER_EXAMPLES).filter((type) => type.startsWith('evm.')),
  solana: Object.keys(FILTER_EXAMPLES).filter((type) => type.startsWith('solana.')),
}
const PAGE_SIZE = 25

/** The field an API validation message names ("body/url must match…" → "url"). */
function fieldOf(message) {
  const match = /^body\/(\w+)/.exec(message ?? '') ?? /^(?:unknown chain|chain)\b/.exec(message ?? '')
  if (!match) return undefined
  return match[1] ?? 'chain'
}

function useHashRoute() {
  const [hash, setHash] = useState(location.hash || '#/watches')
  useEffect(() => {
    const onChange = () => setHash(location.hash || '#/watches')
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return hash.slice(1).split('/').filter(Boolean)
}

/**
 * 'tenant', 'admin' or undefined (refused). API keys start with `bhk_`, so a key is tried on the
 * tenant routes first and the admin token on the admin ones: a right token costs no 401.
 */
async function roleOf(token) {
  const tries = [['tenant', '/watches?limit=1'], ['admin', '/admin/status']]
  if (!token.startsWith('bhk_')) tries.reverse()
  for (const [role, path] of tries) if ((await call(token, 'GET', path)).ok) return role
  return undefined
}

function SignIn({ onSignedIn }) {
  const [value, setValue] = useState('')
  const [error, setError] = useState('')
  const [busy, setBusy] = useState(false)
  async function submit(event) {
    event.preventDefault()
    setBusy(true)
    setError('')
    const token = value.trim()
    const role = await roleOf(token)
    setBusy(false)
    if (!role) return setError('That API key or admin token was not accepted.')
    sessionStorage.setItem(TOKEN_KEY, token)
    onSignedIn({ token, role })
  }
  return (
    <main class="signin">
      <h1>blockhook</h1>
      <form class="stack" onSubmit={submit}>
        <div class="field">
          <label for="token">API key or admin token</label>
          <input id="token" type="password" autocomplete="off" required value={value}
            aria-invalid={error ? 'true' : undefined} aria-describedby={error ? 'token-error' : undefined}
            onInput={(e) => setValue(e.currentTarget.value)} />
          {error && <p id="token-error" class="error" role="alert">{error}</p>}
        </div>
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
    </main>
  )
}

function Pager({ label, cursors, nextCursor, onPage }) {
  return (
    <nav aria-label={label} class="row">
      <button type="button" disabled={cursors.length === 0} onClick={() => onPage(-1)}>Previous page</button>
      <span>Page {cursors.length + 1}</span>
      <button type="button" disabled={!nextCursor} onClick={() => onPage(1)}>Next page</button>
    </nav>
  )
}

/** Cursor paging: `stack` holds the cursors of the pages before this one. */
function usePagedList(load, deps) {
  const [stack, setStack] = useState([])
  const [page, setPage] = useState({ items: [], nextCursor: null })
  const [error, setError] = useState('')
  const cursor = stack[stack.length - 1]
  const reload = useCallback(async () => {
    const res = await load(cursor)
    if (res.ok) { setPage(res.body); setError('') } else setError(res.body?.message ?? `HTTP ${res.status}`)
  }, [cursor, ...deps])
  useEffect(() => { reload() }, [reload])
  useEffect(() => setStack([]), deps)
  const onPage = (step) => setStack(step > 0 ? [...stack, page.nextCursor] : stack.slice(0, -1))
  return { page, error, reload, pager: { cursors: stack, nextCursor: page.nextCursor, onPage } }
}

function counts(stats) {
  return stats ? `${stats.delivered} delivered · ${stats.failed} failed · ${stats.pending} pending` : '—'
}

function Watches({ token, chains }) {
  const [filters, setFilters] = useState({ chain: '', type: '', status: '' })
  const [creating, setCreating] = useState(false)
  const { page, error, reload, pager } = usePagedList((cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) })
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value)
    if (cursor) query.set('cursor', cursor)
    return call(token, 'GET', `/watches?${query}`)
  }, [filters.chain, filters.type, filters.status])
  const setFilter = (key) => (e) => setFilters({ ...filters, [key]: e.currentTarget.value })
  return (
    <main>
      <h2>Watches</h2>
      <div class="row">
        <button type="button" aria-expanded={creating} onClick={() => setCreating(!creating)}>New watch</button>
      </div>
      {creating && <WatchForm token={token} chains={chains} onCreated={(watch) => { setCreating(false); location.hash = `#/watches/${watch.id}` }} />}
      <form class="row" aria-label="Filter watches" onSubmit={(e) => e.preventDefault()}>
        <label>Chain filter <select value={filters.chain} onChange={setFilter('chain')}>
          <option value="">any</option>{chains.map((c) => <option value={c.id}>{c.id}</option>)}</select></label>
        <label>Type filter <select value={filters.type} onChange={setFilter('type')}>
          <option value="">any</option>{Object.keys(FILTER_EXAMPLES).map((t) => <option value={t}>{t}</option>)}</select></label>
        <label>Status filter <select value={filters.status} onChange={setFilter('status')}>
          <option value="">any</option>{['active', 'paused', 'disabled', 'completed'].map((s) => <option value={s}>{s}</option>)}</select></label>
        <button type="button" onClick={reload}>Refresh</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <table aria-label="Watches">
        <thead><tr><th>Watch</th><th>Chain</th><th>Type</th><th>Status</th><th>Deliveries</th><th>URL</th><th>Created</th></tr></thead>
        <tbody>
          {page.items.map((w) => (
            <tr key={w.id}>
              <td><a href={`#/watches/${w.id}`}>{w.description || w.id}</a></td>
              <td>{w.chain}</td><td>{w.type}</td><td>{w.status}</td><td>{counts(w.stats)}</td><td>{w.url ?? 'event stream only'}</td><td>{when(w.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page.items.length === 0 && <p>No watches yet.</p>}
      <Pager label="Watch pages" {...pager} />
    </main>
  )
}

/** Fields of the form an API message can name ("body/<field> …"); anything else shows under the form. */
const FORM_FIELDS = ['chain', 'type', 'url', 'filter', 'confirmations', 'commitment', 'batch', 'ordered', 'fromBlock', 'description']
/** Types whose events come from mined blocks: batch and fromBlock apply to them (not to the mempool). */
const blockBased = (type) => type.startsWith('evm.') && type !== 'evm.pending_transactions'

function WatchForm({ token, chains, onCreated }) {
  const [chain, setChain] = useState(chains[0]?.id ?? '')
  const chainType = chains.find((c) => c.id === chain)?.type ?? 'evm'
  const [type, setType] = useState(TYPES_BY_CHAIN_TYPE[chainType][0])
  const [filter, setFilter] = useState(JSON.stringify(FILTER_EXAMPLES[type], null, 2))
  const [url, setUrl] = useState('')
  const [depth, setDepth] = useState('')
  const [batch, setBatch] = useState('none')
  const [ordered, setOrdered] = useState(false)
  const [fromBlock, setFromBlock] = useState('')
  const [description, setDescription] = useState('')
  const [errors, setErrors] = useState({})
  const [busy, setBusy] = useState(false)

  function pickChain(id) {
    setChain(id)
    setDepth('')
    const types = TYPES_BY_CHAIN_TYPE[chains.find((c) => c.id === id)?.type ?? 'evm']
    if (!types.includes(type)) pickType(types[0])
  }
  function pickType(next) {
    setType(next)
    setFilter(JSON.stringify(FILTER_EXAMPLES[next], null, 2))
  }
  async function submit(event) {
    event.preventDefault()
    let parsedFilter
    try { parsedFilter = JSON.parse(filter) } catch (err) { return setErrors({ filter: `Filter is not JSON: ${err.message}` }) }
    // Only what the user set goes out, so the API's defaults apply to the rest.
    const body = { chain, type, filter: parsedFilter }
    if (url.trim()) body.url = url.trim()
    if (description) body.description = description
    if (depth !== '') {
      if (chainType === 'evm') body.confirmations = Number(depth)
      else body.commitment = depth
    }
    if (blockBased(type) && batch !== 'none') body.batch = batch
    if (ordered) body.ordered = true
    if (blockBased(type) && fromBlock !== '') body.fromBlock = Number(fromBlock)
    setBusy(true)
    const res = await call(token, 'POST', '/watches', body)
    setBusy(false)
    if (res.ok) return onCreated(res.body)
    const message = res.body?.message ?? `HTTP ${res.status}`
    const field = fieldOf(message)
    const named = field && FORM_FIELDS.includes(field) ? field : undefined
    setErrors(named ? { [named]: message } : { form: message })
    // The keyboard lands on the field to fix; its message is read as its description.
    if (named) document.getElementById(`watch-${named}`)?.focus()
  }
  const hint = (name, text) => <p id={`watch-${name}-hint`} class="hint">{text}</p>
  const described = (name, withHint) => {
    const ids = [withHint && `watch-${name}-hint`, errors[name] && `watch-${name}-error`].filter(Boolean).join(' ')
    return { ...(errors[name] ? { 'aria-invalid': 'true' } : {}), ...(ids ? { 'aria-describedby': ids } : {}) }
  }
  const problem = (name) => errors[name] && <p id={`watch-${name}-error`} class="error" role="alert">{errors[name]}</p>
  return (
    <form class="stack" aria-label="New watch" onSubmit={submit} noValidate>
      <div class="field"><label for="watch-chain">Chain</label>
        <select id="watch-chain" value={chain} onChange={(e) => pickChain(e.currentTarget.value)} {...described('chain')}>
          {chains.map((c) => <option value={c.id}>{c.id} ({c.type})</option>)}</select>{problem('chain')}</div>
      <div class="field"><label for="watch-type">Type</label>
        <select id="watch-type" value={type} onChange={(e) => pickType(e.currentTarget.value)} {...described('type')}>
          {TYPES_BY_CHAIN_TYPE[chainType].map((t) => <option value={t}>{t}</option>)}</select>{problem('type')}</div>
      <div class="field"><label for="watch-url">URL</label>
        <input id="watch-url" type="url" value={url} placeholder="https://example.com/webhooks"
          onInput={(e) => setUrl(e.currentTarget.value)} {...described('url', true)} />
        {hint('url', 'Where the signed webhooks go. Leave it empty for a watch whose events reach only Live events (the event stream).')}
        {problem('url')}</div>
      <div class="field"><label for="watch-filter">Filter</label>
        <textarea id="watch-filter" value={filter} spellcheck={false}
          onInput={(e) => setFilter(e.currentTarget.value)} {...described('filter', true)} />
        {hint('filter', 'JSON, prefilled with an example for the type.')}{problem('filter')}</div>
      {chainType === 'evm'
        ? <div class="field"><label for="watch-confirmations">Confirmations</label>
          <input id="watch-confirmations" type="number" min="0" max="1000" value={depth} placeholder="the chain's default"
            onInput={(e) => setDepth(e.currentTarget.value)} {...described('confirmations')} />{problem('confirmations')}</div>
        : <div class="field"><label for="watch-commitment">Commitment</label>
          <select id="watch-commitment" value={depth} onChange={(e) => setDepth(e.currentTarget.value)} {...described('commitment')}>
            <option value="">the chain's default</option>{['processed', 'confirmed', 'finalized'].map((c) => <option value={c}>{c}</option>)}
          </select>{problem('commitment')}</div>}
      {blockBased(type) && <>
        <div class="field"><label for="watch-batch">Batch</label>
          <select id="watch-batch" value={batch} onChange={(e) => setBatch(e.currentTarget.value)} {...described('batch')}>
            <option value="none">none: one webhook per event</option>
            <option value="block">block: one evm.batch webhook per block</option>
          </select>{problem('batch')}</div>
        <div class="field"><label for="watch-fromBlock">From block</label>
          <input id="watch-fromBlock" type="number" min="0" value={fromBlock} placeholder="only new blocks"
            onInput={(e) => setFromBlock(e.currentTarget.value)} {...described('fromBlock', true)} />
          {hint('fromBlock', 'Also deliver every match from this block on (at most 10,000 blocks behind the head).')}
          {problem('fromBlock')}</div>
      </>}
      <div class="field">
        <label class="inline"><input id="watch-ordered" type="checkbox" checked={ordered}
          onChange={(e) => setOrdered(e.currentTarget.checked)} {...described('ordered', true)} /> Ordered</label>
        {hint('ordered', 'One webhook in flight at a time, in sequence order.')}{problem('ordered')}</div>
      <div class="field"><label for="watch-description">Description</label>
        <input id="watch-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} {...described('description')} />{problem('description')}</div>
      {problem('form')}
      <button type="submit" disabled={busy}>Create watch</button>
    </form>
  )
}

function WatchDetail({ token, id }) {
  const [watch, setWatch] = useState(null)
  const [notice, setNotice] = useState('')
  const [secret, setSecret] = useState('')
  const [range, setRange] = useState({ fromBlock: '', toBlock: '' })
  const [confirmDelete, setConfirmDelete] = useState(false)
  const [statusFilter, setStatusFilter] = useState('')
  const load = useCallback(async () => {
    const res = await call(token, 'GET', `/watches/${id}`)
    if (res.ok) setWatch(res.body); else setNotice(res.body?.message ?? `HTTP ${res.status}`)
  }, [id])
  useEffect(() => { load() }, [load])
  const deliveries = usePagedList((cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) })
    if (statusFilter) query.set('status', statusFilter)
    if (cursor) query.set('cursor', cursor)
    return call(token, 'GET', `/watches/${id}/deliveries?${query}`)
  }, [id, statusFilter])

  async function act(method, path, body, describe) {
    const res = await call(token, method, path, body)
    setNotice(res.ok ? describe(res.body) : (res.body?.message ?? `HTTP ${res.status}`))
    return res
  }
  const [refreshes, setRefreshes] = useState(0)
  const refresh = () => { deliveries.reload(); load(); setRefreshes((n) => n + 1) }
  const setStatus = (status) => act('PATCH', `/watches/${id}`, { status }, (w) => { setWatch({ ...watch, ...w }); return `Watch ${w.status}.` })
  if (!watch) return <main><p role="status">{notice || 'Loading…'}</p></main>
  return (
    <main>
      <p><a href="#/watches">← Watches</a></p>
      <h2>{watch.description || watch.id}</h2>
      <div class="card">
        <dl>
          <dt>Id</dt><dd>{watch.id}</dd>
          <dt>Status</dt><dd data-testid="watch-status">{watch.status}</dd>
          <dt>Chain and type</dt><dd>{watch.chain} · {watch.type}</dd>
          <dt>URL</dt><dd>{watch.url ?? 'none: its events reach only the event stream'}</dd>
          <dt>Delivery</dt><dd>{[
            watch.confirmations !== undefined && `${watch.confirmations} confirmations`,
            watch.commitment && `commitment ${watch.commitment}`,
            watch.batch === 'block' ? 'one webhook per block' : 'one webhook per event',
            watch.ordered && 'ordered',
            watch.startBlock !== undefined && `matching from block ${watch.startBlock}`,
          ].filter(Boolean).join(' · ')}</dd>
          <dt>Filter</dt><dd><pre>{JSON.stringify(watch.filter, null, 2)}</pre></dd>
          {watch.stats && <><dt>Stats</dt><dd>matched {watch.stats.matched}, delivered {watch.stats.delivered}, failed {watch.stats.failed}, pending {watch.stats.pending}, last delivered {when(watch.stats.lastDeliveredAt)}</dd></>}
        </dl>
        <div class="row">
          {watch.status === 'paused' || watch.status === 'disabled'
            ? <button type="button" onClick={() => setStatus('active')}>Resume</button>
            : <button type="button" onClick={() => setStatus('paused')}>Pause</button>}
          <button type="button" onClick={() => act('POST', `/watches/${id}/test`, undefined,
            (r) => `Test ${r.delivered ? 'delivered' : 'not delivered'}: status ${r.statusCode ?? 'none'} in ${r.durationMs} ms.`)}>Send test</button>
          <button type="button" onClick={() => act('POST', `/watches/${id}/secret/rotate`, undefined, (r) => { setSecret(r.secret); return 'Secret rotated; the old one signs too for 24 h.' })}>Rotate secret</button>
          <button type="button" onClick={() => act('GET', `/watches/${id}/secret`, undefined, (r) => { setSecret(r.secret); return 'Secret shown.' })}>Reveal secret</button>
        </div>
        {secret && <p>Secret: <code>{secret}</code></p>}
        <form class="row" aria-label="Replay a block range" onSubmit={(e) => {
          e.preventDefault()
          act('POST', `/watches/${id}/replay`, { fromBlock: Number(range.fromBlock), toBlock: Number(range.toBlock) }, (r) => `Replay ${r.replayId} started.`)
        }}>
          <label>From block <input type="number" min="0" required value={range.fromBlock} onInput={(e) => setRange({ ...range, fromBlock: e.currentTarget.value })} /></label>
          <label>To block <input type="number" min="0" required value={range.toBlock} onInput={(e) => setRange({ ...range, toBlock: e.currentTarget.value })} /></label>
          <button type="submit">Replay</button>
        </form>
        <div class="row">
          {confirmDelete
            ? <><span>Delete this watch and cancel its queued deliveries?</span>
              <button type="button" onClick={async () => { if ((await act('DELETE', `/watches/${id}`, undefined, () => 'Deleted.')).ok) location.hash = '#/watches' }}>Confirm delete</button>
              <button type="button" onClick={() => setConfirmDelete(false)}>Cancel</button></>
            : <button type="button" onClick={() => setConfirmDelete(true)}>Delete</button>}
        </div>
        <p role="status">{notice}</p>
      </div>
      <p><a href={`#/live/${watch.id}`}>Live events of this watch</a></p>
      <DeliveryMinutes token={token} watchId={watch.id} refreshKey={refreshes} />
      <h3>Deliveries</h3>
      <div class="row">
        <label>Delivery status <select value={statusFilter} onChange={(e) => setStatusFilter(e.currentTarget.value)}>
          <option value="">any</option>{['pending', 'delivered', 'failed', 'cancelled'].map((s) => <option value={s}>{s}</option>)}</select></label>
        <button type="button" onClick={refresh}>Refresh deliveries</button>
      </div>
      {deliveries.error && <p class="error" role="alert">{deliveries.error}</p>}
      <ul aria-label="Deliveries">
        {deliveries.page.items.map((d) => <Delivery key={d.id} token={token} delivery={d} onChange={refresh} />)}
      </ul>
      {deliveries.page.items.length === 0 && <p>No deliveries yet.</p>}
      <Pager label="Delivery pages" {...deliveries.pager} />
    </main>
  )
}

function Delivery({ token, delivery, onChange }) {
  const [open, setOpen] = useState(false)
  const [detail, setDetail] = useState(null)
  const [notice, setNotice] = useState('')
  async function toggle() {
    if (!open && !detail) {
      const res = await call(token, 'GET', `/deliveries/${delivery.id}`)
      if (res.ok) setDetail(res.body)
    }
    setOpen(!open)
  }
  async function retry() {
    const res = await call(token, 'POST', `/deliveries/${delivery.id}/retry`)
    setNotice(res.ok ? 'Queued again.' : (res.body?.message ?? `HTTP ${res.status}`))
    if (res.ok) onChange()
  }
  return (
    <li aria-label={`Delivery ${delivery.id}`}>
      <button type="button" aria-expanded={open} onClick={toggle}>{delivery.id}</button>{' '}
      {delivery.type} · <span class={`status-${delivery.status}`}>{delivery.status}</span> · {delivery.attempts.length} attempt(s) · {when(delivery.createdAt)}
      {delivery.status === 'failed' && <> <button type="button" onClick={retry}>Retry</button></>}
      {notice && <span role="status"> {notice}</span>}
      {open && (
        <div class="card">
          <table aria-label={`Attempts of ${delivery.id}`}>
            <thead><tr><th>Time</th><th>Status code</th><th>Duration</th><th>Error</th><th>Response</th></tr></thead>
            <tbody>{delivery.attempts.map((a) => (
              <tr><td>{when(a.at)}</td><td>{a.statusCode ?? '—'}</td><td>{a.durationMs} ms</td><td>{a.error ?? '—'}</td><td><code>{a.response ?? ''}</code></td></tr>
            ))}</tbody>
          </table>
          {detail && (detail.payloadExpired ? <p>The payload has expired.</p> : <pre aria-label="Payload">{JSON.stringify(detail.payload, null, 2)}</pre>)}
        </div>
      )}
    </li>
  )
}

function Operator({ token }) {
  const [status, setStatus] = useState(null)
  const [tenants, setTenants] = useState([])
  const [name, setName] = useState('')
  const [notice, setNotice] = useState('')
  const load = useCallback(async () => {
    const [s, t] = await Promise.all([call(token, 'GET', '/admin/status'), call(token, 'GET', '/admin/tenants')])
    if (s.ok) setStatus(s.body)
    if (t.ok) setTenants(t.body.items)
  }, [token])
  useEffect(() => { load() }, [load])
  async function createTenant(event) {
    event.preventDefault()
    const res = await call(token, 'POST', '/admin/tenants', { name })
    setNotice(res.ok ? `Tenant ${res.body.id} created. Its API key, shown once: ${res.body.apiKey}` : res.body?.message)
    if (res.ok) { setName(''); load() }
  }
  async function addKey(id) {
    const res = await call(token, 'POST', `/admin/tenants/${id}/api-keys`)
    setNotice(res.ok ? `New API key for ${id}, shown once: ${res.body.apiKey}` : res.body?.message)
    if (res.ok) load()
  }
  async function revoke(id, prefix) {
    const res = await call(token, 'DELETE', `/admin/tenants/${id}/api-keys/${encodeURIComponent(prefix)}`)
    setNotice(res.ok ? `Key ${prefix}… revoked.` : res.body?.message)
    if (res.ok) load()
  }
  return (
    <main>
      <h2>Operator</h2>
      <p role="status">{notice}</p>
      {status && <>
        <h3>Chains</h3>
        <table aria-label="Chains">
          <thead><tr><th>Chain</th><th>Type</th><th>Connected</th><th>Endpoint</th><th>Head</th><th>Cursor</th><th>Reconnects</th><th>Last head</th></tr></thead>
          <tbody>{status.chains.map((c) => (
            <tr><td>{c.id}</td><td>{c.type}</td><td>{c.connected ? 'yes' : 'no'}</td><td>{c.endpoint ?? '—'}</td><td>{c.head?.number ?? '—'}</td>
              <td>{c.cursor?.number ?? c.cursor ?? '—'}</td><td>{c.reconnects}</td><td>{when(c.lastHeadAt)}</td></tr>
          ))}</tbody>
        </table>
        <h3>Queues</h3>
        <p>waiting {status.queues.waiting}, active {status.queues.active}, delayed {status.queues.delayed}, failed {status.queues.failed}</p>
        <h3>Watches</h3>
        <p>active {status.watches.active}, paused {status.watches.paused}, disabled {status.watches.disabled}, completed {status.watches.completed}</p>
        <h3>Redis memory</h3>
        <p>{(status.redis.usedMemory / 1048576).toFixed(1)} MiB used{status.redis.maxMemory ? ` of ${(status.redis.maxMemory / 1048576).toFixed(1)} MiB` : ' (no maxmemory)'}</p>
      </>}
      <h3>Tenants</h3>
      <form class="row" aria-label="New tenant" onSubmit={createTenant}>
        <label>Tenant name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <button type="submit">Create tenant</button>
      </form>
      <table aria-label="Tenants">
        <thead><tr><th>Tenant</th><th>Name</th><th>API keys</th><th></th></tr></thead>
        <tbody>{tenants.map((t) => (
          <tr><td>{t.id}</td><td>{t.name}</td>
            <td>{t.apiKeyPrefixes.map((prefix) => (
              <span>{prefix}… <button type="button" aria-label={`Revoke key ${prefix}`} onClick={() => revoke(t.id, prefix)}>Revoke</button> </span>))}</td>
            <td><button type="button" aria-label={`New API key for ${t.name}`} onClick={() => addKey(t.id)}>New API key</button></td></tr>
        ))}</tbody>
      </table>
      <button type="button" onClick={load}>Refresh</button>
    </main>
  )
}

function App() {
  const [session, setSession] = useState(null)
  const [chains, setChains] = useState([])
  const route = useHashRoute()
  useEffect(() => {
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (!token) return setSession({ token: null })
    roleOf(token).then((role) => setSession(role ? { token, role } : { token: null }))
  }, [])
  useEffect(() => {
    if (session?.role === 'tenant') call(session.token, 'GET', '/chains').then((res) => res.ok && setChains(res.body.items))
  }, [session])
  if (!session) return <p role="status">Loading…</p>
  if (!session.token) return <SignIn onSignedIn={(s) => { setSession(s); location.hash = s.role === 'admin' ? '#/operator' : '#/watches' }} />
  const signOut = () => { sessionStorage.removeItem(TOKEN_KEY); setSession({ token: null }) }
  const [section, id] = route
  let page
  if (session.role === 'admin') page = <Operator token={session.token} />
  else if (section === 'live') page = <LiveEvents token={session.token} watchId={id} key={id ?? 'all'} />
  else if (section === 'watches' && id) page = <WatchDetail token={session.token} id={id} />
  else page = <Watches token={session.token} chains={chains} />
  return (
    <>
      <header>
        <h1>blockhook</h1>
        <nav aria-label="Sections">
          {session.role === 'admin'
            ? <a href="#/operator">Operator</a>
            : <><a href="#/watches">Watches</a><a href="#/live">Live events</a></>}
        </nav>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      {page}
    </>
  )
}

render(<App />, document.getElementById('app'))
