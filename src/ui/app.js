// The dashboard: reads the agent's HTTP API (src/http/types.ts) and keeps the page live.
//   first    GET /v1/snapshot, every panel's data in one answer, drawn before anything else; read
//            as a JSON module so that the page's load event waits for it (importSnapshot)
//   live     then EventSource /v1/stream: member → that card updated at once, timeline →
//            prepended, deploy → its progress; what happened between the snapshot and the
//            stream's hello is read at once; reconnects with backoff; #connection[data-state]
//            says what the stream is doing, and while it is not live how old the data shown is
//   ages     every time shown says what it measures ("failed 1m 37s ago", "ran 4s ago"); a
//            failed or left member's services and checks are shown muted as last known, with age
//   refresh  services, checks and deploys every few seconds (cluster-wide reads, cached by the agent),
//            and the agent's history (GET /v1/history) drawn as plots of the last 15 minutes;
//            every node's figures by role (GET /v1/performance) as bands with the median and
//            the outlier nodes marked, every third refresh
//   token    a 401 asks for the agent's http_token (sessionStorage), sent as a Bearer header and
//            as ?token= on the stream (EventSource cannot set headers)
// The data-* attributes are what the end-to-end test reads (UI_SELECTORS in src/http/types.ts).

import {
  STATUSES, groupByRole, countByStatus, diffMembers, upsertMember, mergeEvents, eventTone, formatClock,
  formatCount, formatErrorRate, sparklineBars, silenceMatches, silenceScope, checkRows, routeSegments,
  valueColor, deploySteps, collectDeploys, backoffMs, withToken, FINAL_PHASES, formatDuration, formatRtt,
  historySeries, niceMax, plotPoints, roleBands, formatFigure,
  agoText, isCurrent, statusAge, lastKnown, checksText, checkRanAge, streamLabel,
} from './model.js';
import { h, s, replace, byId } from './dom.js';

const TOKEN_KEY = 'kodama-http-token';
const REFRESH_MS = 4000;
/** The server pings every 15 s; silence for this long means the stream is dead even if no error fired. */
const STALE_MS = 40_000;
const MAX_EVENTS = 200;
const DENSE_GROUP = 12;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  agent: null,
  members: [],
  services: null,
  checks: null,
  deploys: null,
  history: null,
  performance: null,
  /** What "Roles over time" shows: a figure of /v1/performance, over the last perfSince. */
  perfField: 'cpu',
  perfSince: '15m',
  streamedDeploys: [],
  events: [],
  eventsNext: 0,
  needToken: false,
  /** The first full read happened (until then a reconnect boots instead of only streaming). */
  booted: false,
  /** This browser's clock minus the agent's (from the snapshot's `at`): ages are on the agent's clock. */
  skewMs: 0,
  /** When the data shown was last brought up to date (agent's clock); null before the first. */
  dataAt: null,
  /** What the live stream is doing (streamLabel): loading, connecting, live, reconnecting, offline, token. */
  stream: 'loading',
  /** While offline: seconds until the next try. */
  retryInS: 0,
};

/** Now on the agent's clock: the times the API gives (statusSince, lastRunAt…) are its. */
function serverNow() {
  return Date.now() - state.skewMs;
}

/** A time that says what it measures ("failed {} ago"), kept up to date by tickAgo. */
function ago(age) {
  return h('span', { class: 'ago', 'data-since': age.since, 'data-ago': age.template }, agoText(age.template, age.since, serverNow()));
}

/** The data shown is current as of now (a full read, or a message on the live stream). */
function markUpdated() {
  state.dataAt = serverNow();
  if (state.stream !== 'live') setStream(state.stream, state.retryInS);
}

class AuthError extends Error {}

async function api(path) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const res = await fetch(path, { headers, cache: 'no-store' });
  if (res.status === 401) throw new AuthError('token required');
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string') msg = body.error;
    } catch {
      // not JSON: the status line says enough
    }
    throw new Error(msg);
  }
  return res.json();
}

/** Run a read; a 401 opens the token form, any other failure is shown in `noteId` (data kept). */
async function read(path, noteId) {
  try {
    const out = await api(path);
    if (noteId) setNote(noteId, '');
    return out;
  } catch (err) {
    if (err instanceof AuthError) askToken();
    else if (noteId) setNote(noteId, `could not read ${path}: ${err.message}`, true);
    return undefined;
  }
}

function setNote(id, text, bad = false) {
  const el = document.getElementById(id);
  if (el === null) return;
  el.textContent = text;
  el.classList.toggle('bad', bad);
}

// ---------------------------------------------------------------- token

function askToken(message) {
  state.needToken = true;
  stream.stop();
  setStream('token');
  const form = byId('token-form');
  form.hidden = false;
  byId('token-error').textContent = message ?? (state.token ? 'The agent refused this token.' : '');
  form.querySelector('input')?.focus();
}

function setupTokenForm() {
  const form = byId('token-form');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = form.querySelector('input');
    const token = input?.value.trim() ?? '';
    if (token === '') return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    state.needToken = false;
    form.hidden = true;
    if (input) input.value = '';
    void boot();
  });
}

// ---------------------------------------------------------------- header

function renderAgent() {
  const a = state.agent;
  if (a === null) return;
  document.title = `kodama · ${a.node}`;
  const roles = Object.entries(a.roles).filter(([, on]) => on).map(([r]) => r);
  replace(
    byId('agent'),
    h('span', { class: 'k' }, 'agent '),
    h('strong', {}, a.node),
    ` ${a.addr}`,
    h('span', { class: 'sep' }, ' · '),
    a.version,
    roles.length > 0 ? [h('span', { class: 'sep' }, ' · '), roles.join(', ')] : null,
    h('span', { class: 'sep' }, ' · '),
    a.encrypted ? 'gossip encrypted' : 'gossip not encrypted',
  );
}

function renderCounts() {
  const counts = countByStatus(state.members);
  const items = STATUSES.filter((st) => counts[st] > 0 || st === 'alive' || st === 'failed').map((st) =>
    h('li', { class: `count st-${st}`, 'data-count': st },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), h('b', {}, String(counts[st])), ` ${st}`),
  );
  replace(byId('counts'), h('li', { class: 'count total' }, h('b', {}, String(state.members.length)), ' members'), items);
}

/**
 * The header's word on the live stream, never waiting for it: the panels are drawn from the
 * snapshot whatever it does. While not live, the age of the data shown is beside it.
 */
function setStream(st, retryInS = 0) {
  state.stream = st;
  state.retryInS = retryInS;
  const el = byId('connection');
  el.dataset.live = st === 'live' ? 'true' : 'false';
  el.dataset.state = st;
  const text = el.querySelector('.label');
  if (text) text.textContent = streamLabel(st, retryInS);
  const asOf = el.querySelector('.as-of');
  if (asOf) {
    const show = st !== 'live' && state.dataAt !== null;
    asOf.hidden = !show;
    if (show) replace(asOf, ' · ', ago({ template: 'updated {} ago', since: state.dataAt }));
  }
  el.title = st === 'live' ? 'Live updates from the agent (server-sent events)'
    : state.dataAt === null ? 'Not receiving live updates' : 'Not receiving live updates: the page shows the data of its last read';
}

// ---------------------------------------------------------------- members (keyed: a card is updated in place)

const cards = new Map(); // name → { el, json }
const groupEls = new Map(); // role → section

function memberCard(m, el) {
  const card = el ?? h('li', {});
  const current = isCurrent(m);
  card.className = `member st-${m.status}`;
  card.dataset.member = m.name;
  card.dataset.status = m.status;
  card.dataset.current = String(current);
  const failing = m.checks?.failing ?? [];
  const startedAt = state.agent?.startedAt;
  const age = statusAge(m, startedAt);
  const services = m.services.length > 0
    ? h('ul', { class: 'chips', 'aria-label': 'services' },
      m.services.map((sv) => h('li', { class: `chip svc${sv.draining ? ' draining' : ''}` },
        `${sv.name} :${sv.port}`, sv.protocol === 'tcp' ? ' tcp' : null,
        // 100 is the default weight (src/discovery/advertise.ts): only a different one is news.
        sv.weight !== 100 ? ` weight ${sv.weight}` : null, sv.draining ? ' draining' : null)))
    : null;
  const checks = m.checks === null
    ? null
    : failing.length === 0
      ? h('p', { class: 'm-checks ok' }, checksText(m.checks))
      : h('ul', { class: 'chips', 'aria-label': 'failing checks' },
        failing.map((c) => h('li', { class: `chip chk ck-${c.state}`, title: `${c.name} ${c.state}${c.flapping ? ', flapping' : ''}` },
          `${c.name} ${c.state}`, c.occurrences > 1 ? ` ×${c.occurrences}` : null, c.flapping ? ' flapping' : null)));
  // A failed or left member cannot say otherwise: its services and checks are what it said last.
  const known = lastKnown(m, startedAt);
  replace(
    card,
    h('div', { class: 'm-head' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      h('span', { class: 'm-name', title: m.name }, m.name),
      h('span', { class: `badge st-${m.status}` }, m.status)),
    h('div', { class: 'm-addr' }, `${m.addr}:${m.port}`,
      m.rttMs !== null && m.rttMs !== undefined
        ? h('span', { class: 'rtt', title: 'estimated round trip from this agent (network coordinates)' }, ` · rtt ${formatRtt(m.rttMs)}`)
        : null,
      age !== null ? [' · ', ago(age)] : null),
    known === null || (services === null && checks === null)
      ? [services, checks]
      : h('div', { class: 'last-known', title: `What ${m.name} said last, before it ${m.status === 'left' ? 'left' : 'failed'}: no longer current` },
        h('p', { class: 'lk-label' }, ago(known), ':'), services, checks),
  );
  return card;
}

function renderMembers() {
  const root = byId('members');
  root.querySelector(':scope > .empty')?.remove();
  const groups = groupByRole(state.members);
  const seenRoles = new Set();
  const seenNames = new Set();
  groups.forEach((g, gi) => {
    seenRoles.add(g.role);
    let section = groupEls.get(g.role);
    if (section === undefined) {
      section = h('section', { class: 'group', 'data-role': g.role },
        h('h3', {}, h('span', { class: 'role' }), h('span', { class: 'n' })), h('ul', { class: 'cards' }));
      groupEls.set(g.role, section);
    }
    if (root.children[gi] !== section) root.insertBefore(section, root.children[gi] ?? null);
    const counts = countByStatus(g.members);
    section.querySelector('.role').textContent = g.role === '' ? 'no role' : g.role;
    section.querySelector('.n').textContent = ` ${counts.alive}/${g.members.length} alive`;
    // A large group shows compact cards (name and status; failing checks stay) so the page stays one screen.
    section.classList.toggle('dense', g.members.length > DENSE_GROUP);
    const list = section.querySelector('.cards');
    g.members.forEach((m, i) => {
      seenNames.add(m.name);
      const json = JSON.stringify(m);
      let entry = cards.get(m.name);
      if (entry === undefined) {
        entry = { el: memberCard(m), json };
        cards.set(m.name, entry);
      } else if (entry.json !== json) {
        memberCard(m, entry.el);
        entry.json = json;
      }
      if (list.children[i] !== entry.el) list.insertBefore(entry.el, list.children[i] ?? null);
    });
  });
  for (const [name, entry] of cards) if (!seenNames.has(name)) { entry.el.remove(); cards.delete(name); }
  for (const [role, section] of groupEls) if (!seenRoles.has(role)) { section.remove(); groupEls.delete(role); }
  if (state.members.length === 0) root.append(h('p', { class: 'empty' }, 'no members'));
  renderCounts();
}

// ---------------------------------------------------------------- services

function splitBar(segments, label) {
  if (segments.length === 0) return h('p', { class: 'route none' }, `${label ? `${label}: ` : ''}none, every backend served`);
  return h('div', { class: 'route' },
    h('span', { class: 'k' }, label),
    h('div', { class: 'split', role: 'img', 'aria-label': segments.map((x) => `${x.value} ${x.percent}%`).join(', ') },
      segments.filter((x) => x.percent > 0).map((x) =>
        h('span', { class: 'seg', style: { width: `${x.percent}%`, background: valueColor(x.value) } }))),
    h('span', { class: 'legend' }, segments.map((x) =>
      h('span', { class: 'lg' }, h('span', { class: 'sw', style: { background: valueColor(x.value) }, 'aria-hidden': 'true' }), `${x.value} ${x.percent}%`))),
  );
}

function backendTable(svc, b) {
  const rows = b.backends.map((be) =>
    h('tr', { 'data-backend': `${b.node}/${be.id}`, 'data-state': be.state, class: `be-${be.state}` },
      h('th', { scope: 'row', title: be.id }, be.id),
      h('td', {}, h('span', { class: `badge be-${be.state}` }, be.state)),
      h('td', { class: 'num' }, String(be.weight)),
      h('td', {}, be.value === undefined ? '–' : [h('span', { class: 'sw', style: { background: valueColor(be.value) }, 'aria-hidden': 'true' }), be.value]),
      h('td', { class: 'num' }, String(be.active)),
      h('td', { class: 'num' }, formatCount(be.requests)),
      h('td', { class: `num${be.errors > 0 ? ' bad' : ''}` }, formatCount(be.errors), h('small', {}, ` ${formatErrorRate(be.errors, be.requests)}`)),
    ),
  );
  return h('div', { class: 'table-wrap' }, h('table', { class: 'backends' },
    h('caption', {}, 'balancer ', h('strong', {}, b.node), ` (${b.driver})`,
      svc.route !== null ? h('span', { class: `applied${b.routeLTime >= svc.route.ltime ? '' : ' bad'}` },
        b.routeLTime >= svc.route.ltime ? ' · route applied' : ` · route pending (has ${b.routeLTime}, latest ${svc.route.ltime})`) : null),
    h('thead', {}, h('tr', {}, ['backend', 'state', 'weight', 'route value', 'in flight', 'requests', 'errors'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.length > 0 ? rows : h('tr', {}, h('td', { colspan: '7', class: 'empty' }, 'no backends'))),
  ));
}

/**
 * Re-render a panel only when its data changed, keeping the scroll positions inside it (the
 * periodic refresh must not jump a table someone is reading back to its top).
 */
const lastJson = new Map();
function changed(key, data) {
  const json = JSON.stringify(data);
  if (lastJson.get(key) === json) return false;
  lastJson.set(key, json);
  return true;
}
function keepScroll(root, fn) {
  const tops = [...root.querySelectorAll('.scroll, .table-wrap')].map((el) => [el.scrollTop, el.scrollLeft]);
  fn();
  [...root.querySelectorAll('.scroll, .table-wrap')].forEach((el, i) => {
    const at = tops[i];
    if (at !== undefined) { el.scrollTop = at[0]; el.scrollLeft = at[1]; }
  });
}

function renderServices() {
  const r = state.services;
  if (r === null || !changed('services', r)) return;
  keepScroll(byId('services'), () => drawServices(r));
}

function drawServices(r) {
  setNote('services-note', r.missing.length > 0 ? `no answer from ${r.missing.join(', ')}` : '', r.missing.length > 0);
  const root = byId('services');
  if (r.services.length === 0) return void replace(root, h('p', { class: 'empty' }, 'no services advertised'));
  replace(root, r.services.map((svc) => {
    const draining = svc.nodes.filter((n) => n.draining).length;
    return h('article', { class: 'service', 'data-service': svc.name },
      h('h3', {}, svc.name, h('small', {}, ` ${svc.nodes.length} node${svc.nodes.length === 1 ? '' : 's'}${draining > 0 ? `, ${draining} draining` : ''}`,
        svc.route !== null ? ` · split by ${svc.route.tag}, set by ${svc.route.by}` : '')),
      splitBar(routeSegments(svc.route), 'route'),
      svc.balancers.length === 0
        ? h('p', { class: 'empty' }, 'no balancer serves it')
        : svc.balancers.map((b) => backendTable(svc, b)),
    );
  }));
}

// ---------------------------------------------------------------- plots

const CHART_W = 300;
const CHART_H = 72;

function fmtValue(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
}

/** One line chart: a polyline per series (data-points = how many), its latest value in the legend. */
function chart(key, title, series, t0, t1) {
  const shown = series.filter((x) => x.points.length > 0);
  const max = niceMax(Math.max(0, ...shown.flatMap((x) => x.points.map((p) => p[1]))));
  const keys = [...new Set(series.map((x) => x.key ?? x.name))];
  const cls = (x) => (x.tone !== undefined ? `tone-${x.tone}` : `c${keys.indexOf(x.key ?? x.name) % 6}`);
  const latest = (x) => fmtValue(x.points[x.points.length - 1][1]);
  const label = shown.length === 0 ? `${title}: no points yet` : `${title}: ${shown.map((x) => `${x.name} ${latest(x)}`).join(', ')}`;
  return h('figure', { class: 'chart', 'data-chart': key },
    h('figcaption', {}, title),
    s('svg', { width: CHART_W, height: CHART_H + 14, viewBox: `0 0 ${CHART_W} ${CHART_H + 14}`, role: 'img', 'aria-label': label },
      s('title', {}, label),
      s('line', { x1: 0, y1: CHART_H, x2: CHART_W, y2: CHART_H, class: 'axis' }),
      s('line', { x1: 0, y1: 0.5, x2: CHART_W, y2: 0.5, class: 'grid' }),
      s('text', { x: 2, y: 10, class: 'ymax' }, fmtValue(max)),
      shown.map((x) => {
        const pts = plotPoints(x.points, t0, t1, max, CHART_W, CHART_H);
        const [lx, ly] = pts.slice(pts.lastIndexOf(' ') + 1).split(',');
        return [
          s('polyline', {
            points: pts,
            class: `ln ${cls(x)}${x.dashed ? ' dashed' : ''}`,
            'data-series': x.name,
            'data-points': x.points.length,
            'data-last': x.points[x.points.length - 1][1],
          }),
          // The newest point marked: a series only minutes old is a short stroke at the right edge.
          x.dashed ? null : s('circle', { cx: lx, cy: ly, r: 2, class: `dot ${cls(x)}` }),
        ];
      }),
      s('text', { x: 0, y: CHART_H + 12, class: 'tick' }, '−15 min'),
      s('text', { x: CHART_W, y: CHART_H + 12, class: 'tick', 'text-anchor': 'end' }, 'now')),
    shown.length === 0
      ? h('p', { class: 'empty' }, 'no points yet (one every 10 s)')
      : h('ul', { class: 'legend' }, shown.map((x) => h('li', { class: cls(x) }, h('span', { class: `key${x.dashed ? ' dashed' : ''}` }), `${x.name} `, h('b', {}, latest(x))))));
}

function renderHistory() {
  const r = state.history;
  if (r === null) return;
  const sr = historySeries(r);
  const last = r.points.length > 0 ? r.points[r.points.length - 1].t : serverNow();
  const t0 = last - r.windowMs;
  replace(byId('history'),
    sr.balancers.map((b) => chart(`backends-${b.node}`, `Requests/s by backend on ${b.node} (dashed: errors/s)`, b.series, t0, last)),
    chart('members', 'Members by status', sr.members, t0, last),
    chart('gossip', 'Gossip health (this node, per second)', sr.gossip, t0, last),
    chart('checks', 'Nodes not passing their checks, by role', sr.checks, t0, last));
  setNote('history-note', r.points.length === 0 ? '' : `${r.points.length} points, every ${Math.round(r.stepMs / 1000)} s`);
}

// ---------------------------------------------------------------- roles over time

/**
 * One role's figure over the window: the band from each step's min to its max (every node of
 * the role inside it), the median line, and each outlier node's own line, marked and named.
 */
function bandChart(b, field, t0, t1) {
  const max = niceMax(Math.max(0, ...b.band.map((p) => p[2]), ...b.outliers.flatMap((o) => o.points.map((p) => p[1]))));
  const r = (x) => Math.round(x * 10) / 10;
  const x = (t) => r(((t - t0) / Math.max(1, t1 - t0)) * CHART_W);
  const y = (v) => r(CHART_H - (Math.min(v, max) / max) * CHART_H);
  const upper = b.band.map(([t, , hi]) => `${x(t)},${y(hi)}`);
  const lower = b.band.map(([t, lo]) => `${x(t)},${y(lo)}`).reverse();
  const last = b.median.length > 0 ? b.median[b.median.length - 1][1] : null;
  const role = b.role === '' ? '(no role)' : b.role;
  const outliers = b.outliers.map((o) => `${o.node} ${formatFigure(o.value, b.unit)} (median ${formatFigure(o.median, b.unit)})`);
  const label = `${role}, ${b.label}: ${b.band.length === 0 ? 'no samples yet' : `median now ${formatFigure(last, b.unit)}`}${outliers.length > 0 ? `; outliers: ${outliers.join(', ')}` : ''}`;
  return h('figure', { class: 'chart band-chart', 'data-role': b.role, 'data-field': field },
    h('figcaption', {}, `${role} · ${b.nodes.length} node${b.nodes.length === 1 ? '' : 's'} · ${b.label}`),
    s('svg', { width: CHART_W, height: CHART_H + 14, viewBox: `0 0 ${CHART_W} ${CHART_H + 14}`, role: 'img', 'aria-label': label },
      s('title', {}, label),
      s('line', { x1: 0, y1: CHART_H, x2: CHART_W, y2: CHART_H, class: 'axis' }),
      s('line', { x1: 0, y1: 0.5, x2: CHART_W, y2: 0.5, class: 'grid' }),
      s('text', { x: 2, y: 10, class: 'ymax' }, formatFigure(max, b.unit)),
      b.band.length === 0 ? null : s('polygon', { points: [...upper, ...lower].join(' '), class: 'band', 'data-band': b.role, 'data-points': b.band.length }),
      b.median.length === 0 ? null : s('polyline', { points: b.median.map(([t, v]) => `${x(t)},${y(v)}`).join(' '), class: 'ln median', 'data-median': b.role, 'data-points': b.median.length }),
      b.outliers.map((o) => [
        s('polyline', { points: o.points.map(([t, v]) => `${x(t)},${y(v)}`).join(' '), class: 'ln outlier', 'data-outlier': o.node }),
        o.points.map(([t, v]) => s('circle', { cx: x(t), cy: y(v), r: 2.2, class: 'outlier-dot' })),
      ]),
      s('text', { x: 0, y: CHART_H + 12, class: 'tick' }, `−${formatDuration(t1 - t0)}`),
      s('text', { x: CHART_W, y: CHART_H + 12, class: 'tick', 'text-anchor': 'end' }, 'now')),
    b.band.length === 0
      ? h('p', { class: 'empty' }, 'no samples yet')
      : h('ul', { class: 'legend' },
        h('li', { class: 'median' }, h('span', { class: 'key' }), 'median ', h('b', {}, formatFigure(last, b.unit))),
        h('li', { class: 'band-key' }, h('span', { class: 'key box' }), 'min–max of the role'),
        b.outliers.map((o) => h('li', { class: 'outlier', 'data-outlier-name': o.node }, h('span', { class: 'key' }), `outlier ${o.node} `, h('b', {}, formatFigure(o.value, b.unit)), ` vs median ${formatFigure(o.median, b.unit)}`))));
}

function renderPerformance() {
  const r = state.performance;
  if (r === null) return;
  const select = byId('perf-field');
  // The figures come from the answer (an agent knows which it samples).
  const fields = r.roles[0]?.fields ?? [];
  if (select.options.length !== fields.length && fields.length > 0) {
    replace(select, fields.map((f) => h('option', { value: f.field }, `${f.field}${f.unit === '' ? '' : ` (${f.unit})`}`)));
    select.value = state.perfField;
  }
  const t1 = r.endS * 1000;
  const t0 = (r.endS - r.n * r.stepS) * 1000;
  byId('roles').dataset.window = String(r.n * r.stepS);
  replace(byId('roles'), r.roles.length === 0
    ? h('p', { class: 'empty' }, 'no agent answered: sampling is off (-metrics-interval 0) or these are serf agents')
    : roleBands(r, state.perfField).map((b) => bandChart(b, state.perfField, t0, t1)));
  setNote('roles-note', `${r.n} steps of ${r.stepS} s${r.silent.length > 0 ? ` · no answer from ${r.silent.join(', ')}` : ''}`);
}

function setupPerformance() {
  const field = byId('perf-field');
  const since = byId('perf-since');
  field.addEventListener('change', () => { state.perfField = field.value; renderPerformance(); });
  since.addEventListener('change', () => { state.perfSince = since.value; void loadPerformance(); });
}

// ---------------------------------------------------------------- checks

function sparkline(history) {
  const W = 84;
  const H = 16;
  const bars = sparklineBars(history, W, H);
  if (bars.length === 0) return h('span', { class: 'muted' }, '–');
  const tally = new Map();
  for (const b of bars) tally.set(b.state, (tally.get(b.state) ?? 0) + 1);
  const label = `last ${bars.length} results: ${[...tally].map(([st, n]) => `${n} ${st}`).join(', ')}; latest ${bars[bars.length - 1].state}`;
  return s('svg', { class: 'spark', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
    s('title', {}, label),
    bars.map((b) => s('rect', { x: b.x, y: b.y, width: b.w, height: b.h, class: `ck-${b.state}` })));
}

/** When the check last ran: the newest result in the sparkline is this old. */
function ran(lastRunAt) {
  const age = checkRanAge(lastRunAt);
  return age === null ? h('small', { class: 'ran' }, 'not run yet') : h('small', { class: 'ran' }, ago(age));
}

function renderChecks() {
  const r = state.checks;
  // Silences expire by the clock: re-render at least once a minute even with the same data.
  if (r === null || !changed('checks', [r, Math.floor(Date.now() / 60_000)])) return;
  keepScroll(byId('checks'), () => drawChecks(r));
}

function drawChecks(r) {
  const now = serverNow();
  setNote('checks-note', r.missing.length > 0 ? `no answer from ${r.missing.join(', ')}` : '', r.missing.length > 0);
  const rows = checkRows(r.nodes);
  const tally = { passing: 0, warning: 0, critical: 0, unknown: 0 };
  for (const row of rows) tally[row.state]++;
  const root = byId('checks');
  if (rows.length === 0) replace(root, h('p', { class: 'empty' }, r.nodes.length === 0 && r.missing.length > 0 ? 'no node answered' : 'no node runs checks'));
  else {
    replace(root,
      h('p', { class: 'tally' }, Object.entries(tally).filter(([, n]) => n > 0).map(([st, n]) =>
        h('span', { class: `badge ck-${st}` }, `${n} ${st}`))),
      h('div', { class: 'scroll' }, h('table', { class: 'checks-table' },
        h('thead', {}, h('tr', {}, ['node', 'check', 'state', 'history', 'output'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map((c) => {
          const silenced = r.silences.some((x) => silenceMatches(x, c.node, c.role, c.name, now));
          return h('tr', { 'data-check': `${c.node}/${c.name}`, 'data-state': c.state, class: `ck-row ck-${c.state}` },
            h('td', {}, c.node),
            h('td', {}, c.name),
            h('td', {}, h('span', { class: `badge ck-${c.state}` }, c.state),
              c.occurrences > 1 && c.status !== 0 ? h('small', {}, ` ×${c.occurrences}`) : null,
              c.flapping ? h('span', { class: 'badge flap' }, 'flapping') : null,
              silenced ? h('span', { class: 'badge silenced' }, 'silenced') : null),
            h('td', { class: 'hist' }, sparkline(c.history), ran(c.lastRunAt)),
            h('td', { class: 'output', title: c.output }, c.output));
        })))),
    );
  }
  const sil = byId('silences');
  const active = r.silences.filter((x) => x.expiresAt === undefined || x.expiresAt > now);
  if (active.length === 0) replace(sil, h('li', { class: 'empty' }, 'none'));
  else replace(sil, active.map((x) => h('li', { 'data-silence': x.id },
    h('strong', {}, silenceScope(x)),
    x.reason ? ` — ${x.reason}` : null,
    h('small', {}, ` · ${x.expiresAt === undefined ? 'until removed' : `expires in ${formatDuration(x.expiresAt - now)}`}${x.creator ? ` · by ${x.creator}` : ''} · ${x.id}`))));
}

// ---------------------------------------------------------------- deploys

function deployCard(d, big) {
  const ended = FINAL_PHASES.includes(d.phase);
  const tone = d.phase === 'done' ? 'good' : ended || d.phase === 'rolling-back' ? 'bad' : 'info';
  const figures = Object.entries(d.figures ?? {});
  return h('article', { class: `deploy${big ? ' big' : ''} tone-${tone}`, 'data-deploy': d.id, 'data-phase': d.phase },
    h('h3', {}, d.service, ': ',
      h('span', { class: 'sw', style: { background: valueColor(d.from) }, 'aria-hidden': 'true' }), d.from, ' → ',
      h('span', { class: 'sw', style: { background: valueColor(d.to) }, 'aria-hidden': 'true' }), d.to, ' ',
      h('span', { class: `badge phase tone-${tone}` }, d.phase)),
    h('ol', { class: 'steps', 'aria-label': 'phases' }, deploySteps(d.phase, d.lastStep, d.stepIndex, d.steps.length).map((x) =>
      h('li', { class: `step ${x.state}`, 'aria-current': x.state === 'current' ? 'step' : null }, x.label))),
    h('div', { class: 'progress' },
      h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(d.percent), 'aria-label': `traffic on ${d.to}` },
        h('span', { class: 'fill', style: { width: `${d.percent}%`, background: valueColor(d.to) } })),
      h('span', { class: 'pct' }, `${d.percent}% on ${d.to}`),
      h('small', {}, ` steps ${d.steps.join(' → ')}`)),
    d.reason ? h('p', { class: `reason${ended && d.phase !== 'done' ? ' bad' : ''}` }, d.reason) : null,
    big && figures.length > 0 ? h('dl', { class: 'figures' }, figures.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : null,
    h('p', { class: 'meta' }, `${d.id} · by ${d.coordinator} · started ${formatClock(d.startedAt)} · `,
      ago({ template: 'updated {} ago', since: d.updatedAt })),
  );
}

function renderDeploys() {
  const all = collectDeploys(state.deploys, state.streamedDeploys);
  if (!changed('deploys', [all, state.deploys?.routes])) return;
  const root = byId('deploys');
  const current = all.filter((d) => !FINAL_PHASES.includes(d.phase));
  const recent = all.filter((d) => FINAL_PHASES.includes(d.phase)).slice(0, 5);
  const routes = state.deploys?.routes ?? [];
  replace(root,
    current.length > 0 ? current.map((d) => deployCard(d, true)) : h('p', { class: 'empty' }, 'no deploy running'),
    recent.length > 0 ? [h('h3', { class: 'sub' }, 'Recent'), recent.map((d) => deployCard(d, false))] : null,
    routes.length > 0 ? [h('h3', { class: 'sub' }, 'Routes'), h('ul', { class: 'routes' }, routes.map((r) =>
      h('li', {}, h('div', {}, h('strong', {}, r.service), h('small', {}, ` split by ${r.tag} · set by ${r.by} · ltime ${r.ltime}`)),
        splitBar(routeSegments(r), ''))))] : null,
  );
}

// ---------------------------------------------------------------- timeline

function eventItem(e) {
  return h('li', { 'data-kind': e.kind, 'data-seq': e.seq, class: `ev tone-${eventTone(e.kind, e.text)}` },
    h('time', { datetime: new Date(e.at).toISOString() }, formatClock(e.at)),
    h('span', { class: 'kind' }, e.kind),
    h('span', { class: 'text' }, e.text));
}

function renderTimeline() {
  const root = byId('timeline');
  if (state.events.length === 0) return void replace(root, h('li', { class: 'empty' }, 'no events yet'));
  replace(root, state.events.map(eventItem));
}

function addEvent(e) {
  if (state.events.some((x) => x.seq === e.seq)) return;
  const newest = state.events[0];
  state.events = mergeEvents(state.events, [e], MAX_EVENTS);
  state.eventsNext = Math.max(state.eventsNext, e.seq + 1);
  const root = byId('timeline');
  if (newest === undefined || e.seq < newest.seq) return renderTimeline();
  root.querySelector(':scope > .empty')?.remove();
  root.prepend(eventItem(e));
  while (root.children.length > MAX_EVENTS) root.lastElementChild?.remove();
}

// ---------------------------------------------------------------- loading

async function loadMembers() {
  const r = await read('/v1/members', null);
  if (r === undefined) return;
  const d = diffMembers(state.members, r.members);
  state.members = r.members;
  markUpdated();
  // The periodic full read usually changes nothing the stream did not already show.
  if (d.added.length + d.removed.length + d.changed.length > 0 || cards.size === 0) renderMembers();
}

/** The timeline since `since`; `catchUp`: events the stream did not deliver, whose views are re-read too (soon). */
async function loadEvents(since, catchUp = false) {
  const r = await read(since > 0 ? `/v1/events?since=${since}` : '/v1/events', null);
  if (r === undefined) return;
  if (catchUp) for (const e of r.events) if (e.seq >= state.eventsNext) soon(e.kind);
  state.events = mergeEvents(state.events, r.events, MAX_EVENTS);
  state.eventsNext = Math.max(state.eventsNext, r.next);
  renderTimeline();
}

const inFlight = new Set();
/** One read per kind at a time: a slow cluster-wide read is not stacked by the next tick. */
async function once(key, fn) {
  if (inFlight.has(key)) return;
  inFlight.add(key);
  try {
    await fn();
  } finally {
    inFlight.delete(key);
  }
}

/**
 * A timeline event that says a cluster-wide view changed (a route published, a service drained,
 * a check turned) re-reads that view shortly, instead of at the next periodic refresh. Debounced:
 * a burst of events costs one read (and the agent caches its cluster-wide answers anyway).
 */
const SOON_MS = 400;
/**
 * A member joining, leaving or failing changes every balancer's backends and the checks list,
 * but balancers apply it after the event and the agent caches cluster-wide reads for 1.5 s: read
 * once the cache has certainly turned over, so a failed node does not stay "ready" until the
 * next periodic refresh.
 */
const MEMBER_SOON_MS = 1700;
const soonTimers = new Map();
function soon(kind) {
  const member = { loads: [loadServices, loadChecks], ms: MEMBER_SOON_MS };
  const plan = {
    route: { loads: [loadServices, loadDeploys], ms: SOON_MS },
    deploy: { loads: [loadDeploys, loadServices], ms: SOON_MS },
    service: { loads: [loadServices], ms: SOON_MS },
    check: { loads: [loadChecks], ms: SOON_MS },
    'member-join': member,
    'member-leave': member,
    'member-failed': member,
    'member-reap': member,
  }[kind];
  const key = plan === member ? 'member' : kind;
  if (plan === undefined || soonTimers.has(key)) return;
  soonTimers.set(key, setTimeout(() => {
    soonTimers.delete(key);
    for (const load of plan.loads) void load();
  }, plan.ms));
}

function loadServices() {
  return once('services', async () => {
    const r = await read('/v1/services', 'services-note');
    if (r !== undefined) { state.services = r; renderServices(); }
  });
}
function loadChecks() {
  return once('checks', async () => {
    const r = await read('/v1/checks', 'checks-note');
    if (r !== undefined) { state.checks = r; renderChecks(); }
  });
}
function loadHistory() {
  return once('history', async () => {
    const r = await read('/v1/history', 'history-note');
    if (r !== undefined) { state.history = r; renderHistory(); }
  });
}
function loadPerformance() {
  const since = state.perfSince;
  return once(`performance:${since}`, async () => {
    const r = await read(`/v1/performance?since=${encodeURIComponent(since)}`, 'roles-note');
    // An answer for a window no longer chosen (the choice changed meanwhile) is dropped.
    if (r !== undefined && since === state.perfSince) { state.performance = r; renderPerformance(); }
  });
}
function loadDeploys() {
  return once('deploys', async () => {
    const r = await read('/v1/deploys', null);
    if (r !== undefined) {
      state.deploys = r;
      // A fetched state supersedes what the stream said before it.
      state.streamedDeploys = [];
      renderDeploys();
    }
  });
}

// ---------------------------------------------------------------- the first render: one snapshot

/**
 * The first snapshot is read as a JSON module (`import … with { type: 'json' }`) by a script
 * element, not with fetch(): a module script being fetched holds the document's load event, so
 * when `load` fires — what a headless screenshot or a slow link's spinner waits for — every panel
 * is drawn. An import cannot send headers: the token rides as ?token= (as on the stream). Resolves
 * undefined on any failure (refused, agent down, a browser without JSON modules: a SyntaxError),
 * which fetch() then tells apart.
 */
function importSnapshot(url) {
  return new Promise((resolve) => {
    const key = `kodamaSnapshot${Math.random().toString(36).slice(2)}`;
    const el = document.createElement('script');
    const onError = (ev) => {
      if (ev.error instanceof SyntaxError) done(undefined);
    };
    function done(snap) {
      if (!(key in window)) return;
      delete window[key];
      window.removeEventListener('error', onError);
      el.remove();
      resolve(snap);
    }
    window[key] = done;
    window.addEventListener('error', onError);
    el.type = 'module';
    el.textContent = `import snapshot from ${JSON.stringify(url)} with { type: 'json' };\nwindow[${JSON.stringify(key)}](snapshot);`;
    el.addEventListener('error', () => done(undefined));
    document.head.append(el);
  });
}

let imported = false;
async function readSnapshot() {
  // Once, while the page loads (a module URL is imported once per document; later reads fetch).
  if (!imported && document.readyState !== 'complete') {
    imported = true;
    const snap = await importSnapshot(withToken('/v1/snapshot', state.token));
    if (snap !== undefined) return snap;
  }
  return read('/v1/snapshot', null);
}

/** Every panel from one snapshot (GET /v1/snapshot); the stream and the periodic reads update it afterwards. */
function applySnapshot(snap) {
  state.skewMs = Date.now() - snap.at;
  state.agent = snap.agent;
  state.members = snap.members;
  state.events = mergeEvents([], snap.events.events, MAX_EVENTS);
  state.eventsNext = snap.events.next;
  state.services = snap.services;
  state.checks = snap.checks;
  state.deploys = snap.deploys;
  state.streamedDeploys = [];
  state.history = snap.history;
  // The snapshot's figures are /v1/performance's default window; another one chosen meanwhile is read.
  if (state.perfSince === '15m') state.performance = snap.performance;
  renderAgent();
  renderMembers();
  renderTimeline();
  renderServices();
  renderChecks();
  renderDeploys();
  renderHistory();
  renderPerformance();
  markUpdated();
}

/**
 * One snapshot, drawn, then the live stream. With a token missing or refused the snapshot is
 * the one 401 the page causes (not a read per panel and a stream).
 */
async function boot() {
  const snap = await readSnapshot();
  if (snap === undefined) {
    // Not a 401 (agent down?): the stream's backoff keeps trying and boots the rest when it is back.
    if (!state.needToken) stream.fail();
    return;
  }
  applySnapshot(snap);
  state.booted = true;
  stream.start();
  // The snapshot waits 250 ms for answers that may never come (other coordinators, members that
  // do not sample); the agent's full reads go on, and these join them (no new query).
  void loadDeploys();
  if (snap.performance.silent.length > 0) void loadPerformance();
  if (state.perfSince !== '15m') void loadPerformance();
}

// ---------------------------------------------------------------- live stream

const stream = {
  es: null,
  attempt: 0,
  retryTimer: null,
  staleTimer: null,
  countdown: null,
  connectedOnce: false,

  start() {
    this.stop();
    if (state.needToken) return;
    setStream(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const es = new EventSource(withToken('/v1/stream', state.token));
    this.es = es;
    this.touch();
    es.addEventListener('hello', (ev) => {
      this.touch();
      this.attempt = 0;
      const hello = JSON.parse(ev.data);
      // A restarted agent numbers its timeline from 1 again: the old entries would shadow the new.
      const restarted = hello.next < state.eventsNext || (state.agent !== null && hello.node !== state.agent.node);
      if (restarted) {
        state.events = [];
        state.eventsNext = 0;
        void read('/v1/agent', null).then((a) => {
          if (a !== undefined) { state.agent = a; renderAgent(); }
        });
      }
      // Whatever happened while we were not listening (since the snapshot, or while the stream
      // was down): members in full, events since the last seen.
      if (restarted || this.connectedOnce || hello.next !== state.eventsNext) {
        void loadMembers();
        void loadEvents(state.eventsNext, true);
      }
      this.connectedOnce = true;
      markUpdated();
      setStream('live');
    });
    es.addEventListener('member', (ev) => {
      this.touch();
      state.members = upsertMember(state.members, JSON.parse(ev.data));
      renderMembers();
    });
    es.addEventListener('timeline', (ev) => {
      this.touch();
      const e = JSON.parse(ev.data);
      addEvent(e);
      soon(e.kind);
    });
    es.addEventListener('deploy', (ev) => {
      this.touch();
      const d = JSON.parse(ev.data);
      state.streamedDeploys = [...state.streamedDeploys.filter((x) => x.id !== d.id), d];
      renderDeploys();
    });
    es.addEventListener('ping', () => this.touch());
    es.addEventListener('error', () => {
      // EventSource would retry on its own at a fixed pace; we close it and back off instead.
      if (this.es !== es) return;
      this.fail();
    });
  },

  touch() {
    // While live, the data shown is current: the stream would have said otherwise.
    if (state.stream === 'live') state.dataAt = serverNow();
    clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => this.fail(), STALE_MS);
  },

  fail() {
    this.stop();
    const delay = backoffMs(this.attempt, Math.random());
    this.attempt++;
    let left = Math.ceil(delay / 1000);
    setStream('offline', left);
    this.countdown = setInterval(() => {
      left--;
      if (left > 0) setStream('offline', left);
    }, 1000);
    this.retryTimer = setTimeout(() => {
      if (!state.booted) return void boot();
      // A refused token is an error event too: ask the API, which tells 401 apart.
      void read('/v1/agent', null).then((a) => {
        if (a !== undefined) { state.agent = a; renderAgent(); }
        if (!state.needToken) this.start();
      });
    }, delay);
  },

  stop() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.staleTimer);
    clearInterval(this.countdown);
    if (this.es !== null) { this.es.close(); this.es = null; }
  },
};

// ---------------------------------------------------------------- periodic

function tickAgo() {
  const now = serverNow();
  for (const el of document.querySelectorAll('[data-ago][data-since]')) {
    el.textContent = agoText(el.getAttribute('data-ago'), Number(el.getAttribute('data-since')), now);
  }
}

let ticks = 0;
const MEMBERS_EVERY = 8; // × REFRESH_MS ≈ 30 s

function refresh() {
  if (state.needToken || document.hidden) return;
  void loadServices();
  void loadChecks();
  void loadDeploys();
  void loadHistory();
  // A cluster-wide query of every node's figures: every third refresh (the agents sample every 10 s).
  if (ticks % 3 === 2) void loadPerformance();
  // Members normally arrive live; while the stream is down, poll them too. Live, a full read
  // now and then drops reaped members (the stream only says they left).
  ticks++;
  if (byId('connection').dataset.live !== 'true' || ticks % MEMBERS_EVERY === 0) void loadMembers();
}

function setupTimelineFilter() {
  const box = byId('show-updates');
  const apply = () => byId('timeline').classList.toggle('hide-updates', !box.checked);
  box.addEventListener('change', apply);
  apply();
}

function main() {
  setupTokenForm();
  setupTimelineFilter();
  setupPerformance();
  void boot();
  setInterval(refresh, REFRESH_MS);
  setInterval(tickAgo, 1000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
}

main();
