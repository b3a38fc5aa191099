// Pure helpers of the dashboard: grouping, counting, formatting, sparklines, diffing, backoff.
// No DOM and no globals beyond the language, so node's test runner imports this file as it is
// (test/ui/model.test.ts) and the browser loads it as an ES module (no build step).
// Types: model.d.ts (shapes from src/http/types.ts).

/** Member statuses in the order the header counts them (worst news last is easy to miss). */
export const STATUSES = ['alive', 'leaving', 'left', 'failed', 'none'];

/** Deploy phases a successful deploy walks through, in order. */
export const DEPLOY_STEPS = ['prepare', 'check', 'shift', 'drain', 'bake', 'done'];
export const FINAL_PHASES = ['done', 'rolled-back', 'aborted', 'failed'];

/** Nagios/Sensu status number → state name. */
export const CHECK_STATES = ['passing', 'warning', 'critical', 'unknown'];

export function checkState(status) {
  return CHECK_STATES[status] ?? 'unknown';
}

/** Members grouped by role: named roles sorted, the no-role group ('') last; members by name. */
export function groupByRole(members) {
  const groups = new Map();
  for (const m of members) {
    const role = m.role ?? '';
    let list = groups.get(role);
    if (list === undefined) groups.set(role, (list = []));
    list.push(m);
  }
  const roles = [...groups.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : compareNames(a, b)));
  return roles.map((role) => ({ role, members: groups.get(role).sort(byName) }));
}

/** Natural order: web-2 before web-10 (names are mostly prefix + number). */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });
export function compareNames(a, b) {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

function byName(a, b) {
  return compareNames(a.name, b.name);
}

/** How many members per status; every status present (0 when none). */
export function countByStatus(members) {
  const out = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const m of members) out[m.status] = (out[m.status] ?? 0) + 1;
  return out;
}

/**
 * What changed between two member lists (by name): added, removed, and changed (any field
 * differs — status, tags, services, checks). Lets the page touch only the cards that changed.
 */
export function diffMembers(before, after) {
  const old = new Map(before.map((m) => [m.name, m]));
  const added = [];
  const changed = [];
  for (const m of after) {
    const prev = old.get(m.name);
    if (prev === undefined) added.push(m);
    else if (!sameJson({ ...prev, rttMs: formatRtt(prev.rttMs) }, { ...m, rttMs: formatRtt(m.rttMs) })) changed.push(m);
    old.delete(m.name);
  }
  return { added, removed: [...old.values()], changed };
}

/** The list with `m` in place of the member of the same name (appended when new); a new array. */
export function upsertMember(members, m) {
  const i = members.findIndex((x) => x.name === m.name);
  if (i < 0) return [...members, m];
  const out = members.slice();
  out[i] = m;
  return out;
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Timeline entries merged newest first (by seq), without duplicates, at most `max` kept: the
 * stream and a catch-up read after a reconnect may both deliver the same event.
 */
export function mergeEvents(existing, incoming, max = 200) {
  const bySeq = new Map();
  for (const e of existing) bySeq.set(e.seq, e);
  for (const e of incoming) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, max);
}

/**
 * Event → a severity class for colouring (the kind is shown as text too). Check and deploy
 * events carry their outcome in the text ("web-3: check http is critical", "… rolled back").
 */
export function eventTone(kind, text = '') {
  switch (kind) {
    case 'member-failed':
      return 'bad';
    case 'member-leave':
    case 'member-reap':
      return 'warn';
    case 'member-join':
      return 'good';
    case 'check':
    case 'deploy':
    case 'service':
      if (/\b(critical|failed|rolled[- ]back|rolling[- ]back|aborted|unhealthy)\b/i.test(text)) return 'bad';
      if (/\b(warning|unknown|flapping)\b/i.test(text)) return 'warn';
      // A drain is a deploy's normal phase, but news for a service.
      if (kind === 'service' && /\bdrain(ing|ed)?\b/i.test(text)) return 'warn';
      if (/\b(passing|done|healthy)\b/i.test(text)) return 'good';
      return 'info';
    default:
      return 'info';
  }
}

function pad2(n) {
  return n < 10 ? `0${n}` : String(n);
}

/** "14:03:07" in local time. */
export function formatClock(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** A duration in words a glance can take in: "4s", "3m 12s", "2h 5m", "3d 4h". */
export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "3m 12s ago"; null/undefined → "" (unknown since). */
export function formatAgo(ms, now) {
  if (ms === null || ms === undefined) return '';
  return `${formatDuration(now - ms)} ago`;
}

// ---------------------------------------------------------------- ages that say what they measure

/**
 * A time shown on the page, with what it measures: `{}` in the template is the age since `since`
 * ("failed {} ago" → "failed 1m 37s ago", "alive for {}" → "alive for 3m 12s"). The page keeps
 * template and time on the element (data-ago, data-since) and rewrites it every second with this.
 */
export function agoText(template, since, now) {
  return template.replace('{}', formatDuration(now - since));
}

/** Statuses after which a member's tags (services, checks) are no longer current, only last known. */
export const GONE_STATUSES = ['failed', 'left'];

/** Are the member's services and checks current (it is there to say otherwise)? */
export function isCurrent(m) {
  return !GONE_STATUSES.includes(m.status);
}

const STATUS_AGE = { alive: 'alive for {}', leaving: 'leaving for {}', left: 'left {} ago', failed: 'failed {} ago', none: 'status unknown for {}' };
const STATUS_AGE_OVER = { alive: 'alive for over {}', leaving: 'leaving for over {}', left: 'left over {} ago', failed: 'failed over {} ago', none: 'status unknown for over {}' };

/**
 * How long a member has been in its status, as { template, since } for agoText: "failed 1m 37s
 * ago", "alive for 3m 12s". A status that changed before this agent started (statusSince null)
 * is at least as old as the agent: "alive for over 5m 2s" (since = the agent's start); null when
 * that is unknown too.
 */
export function statusAge(m, agentStartedAt) {
  if (m.statusSince !== null && m.statusSince !== undefined) return { template: STATUS_AGE[m.status] ?? `${m.status} for {}`, since: m.statusSince };
  if (agentStartedAt === null || agentStartedAt === undefined) return null;
  return { template: STATUS_AGE_OVER[m.status] ?? `${m.status} for over {}`, since: agentStartedAt };
}

/**
 * For a failed or left member, how old its services and checks are — what it said last, when it
 * went: { template: "last known {} ago", since }; "last known over {} ago" from the agent's start
 * when it went before that. null for a current member (its data is current), and when unknown
 * the template carries no age ("last known").
 */
export function lastKnown(m, agentStartedAt) {
  if (isCurrent(m)) return null;
  if (m.statusSince !== null && m.statusSince !== undefined) return { template: 'last known {} ago', since: m.statusSince };
  if (agentStartedAt === null || agentStartedAt === undefined) return { template: 'last known', since: 0 };
  return { template: 'last known over {} ago', since: agentStartedAt };
}

/** A member's checks summary in words: "checks: 3 passing", "checks: 1 of 3 failing"; null without checks. */
export function checksText(checks) {
  if (checks === null || checks === undefined) return null;
  const failing = checks.failing.length;
  return failing === 0 ? `checks: ${checks.total} passing` : `checks: ${failing} of ${checks.total} failing`;
}

/** When a check last ran, for agoText: "ran 4s ago"; null when it has not run yet (lastRunAt 0). */
export function checkRanAge(lastRunAt) {
  return lastRunAt > 0 ? { template: 'ran {} ago', since: lastRunAt } : null;
}

/**
 * What the header says of the live stream: 'loading' (no data yet), 'connecting', 'live',
 * 'offline' (retry in n s), 'reconnecting', 'token' (needs the API token). Data shown while not
 * live gets its age beside it (the page adds "updated 4s ago").
 */
export function streamLabel(state, retryInS) {
  switch (state) {
    case 'loading': return 'loading…';
    case 'connecting': return 'live updates: connecting…';
    case 'live': return 'live';
    case 'reconnecting': return 'live updates: reconnecting…';
    case 'offline': return retryInS > 0 ? `live updates: offline, retry in ${retryInS}s` : 'live updates: offline';
    case 'token': return 'token needed';
    default: return String(state);
  }
}

/**
 * An estimated round trip, ms, to two significant figures: "0.42 ms", "3.1 ms", "120 ms";
 * "<0.01 ms" below; "" for none. Cards show it, and a member whose estimate moves within the
 * same figures has not changed (diffMembers).
 */
export function formatRtt(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 0.01) return '<0.01 ms';
  return `${Number(ms.toPrecision(2))} ms`;
}

/** 1234567 → "1.2M", 12345 → "12.3k", 999 → "999". */
export function formatCount(n) {
  if (n >= 1e6) return `${trim1(n / 1e6)}M`;
  if (n >= 1e4) return `${trim1(n / 1e3)}k`;
  return String(n);
}

function trim1(x) {
  return x.toFixed(1).replace(/\.0$/, '');
}

/** Error share of requests as "0.4 %"; "–" with no requests. */
export function formatErrorRate(errors, requests) {
  if (requests <= 0) return '–';
  const p = (100 * errors) / requests;
  return `${p === 0 ? '0' : p < 0.1 ? '<0.1' : trim1(p)} %`;
}

/**
 * A check history (digits oldest first, e.g. "000122") as bars: one per result, height by
 * severity (passing low, critical full), so a sparkline reads without colour too. At most
 * `slots` results, the newest at the right edge.
 */
export function sparklineBars(history, width, height, slots = 21) {
  const digits = [...(history ?? '')].filter((c) => c >= '0' && c <= '3').map(Number).slice(-slots);
  if (digits.length === 0) return [];
  // Fixed slots (Sensu keeps 21 results), newest at the right edge: histories line up across rows.
  const slot = width / slots;
  const offset = slots - digits.length;
  const gap = slot > 3 ? 1 : 0;
  const levels = { 0: 0.3, 1: 0.65, 2: 1, 3: 0.5 };
  return digits.map((status, i) => {
    const h = Math.max(1, Math.round(height * levels[status]));
    return { x: +((offset + i) * slot).toFixed(2), y: height - h, w: +(slot - gap).toFixed(2), h, state: checkState(status) };
  });
}

/** Does a silence cover this node's check? Every field the silence names must match. */
export function silenceMatches(s, node, role, check, now) {
  if (s.expiresAt !== undefined && s.expiresAt <= now) return false;
  if (s.node !== undefined && s.node !== node) return false;
  if (s.role !== undefined && s.role !== role) return false;
  if (s.check !== undefined && s.check !== check) return false;
  return true;
}

/** "node web-1 · check disk" — what a silence covers, in words. */
export function silenceScope(s) {
  const parts = [];
  if (s.node !== undefined) parts.push(`node ${s.node}`);
  if (s.role !== undefined) parts.push(`role ${s.role}`);
  if (s.check !== undefined) parts.push(`check ${s.check}`);
  return parts.length === 0 ? 'everything' : parts.join(' · ');
}

/** Checks reports flattened to rows, worst first (critical, warning, unknown, passing), then node, name. */
export function checkRows(nodes) {
  const rank = { 2: 0, 1: 1, 3: 2, 0: 3 };
  const rows = [];
  for (const n of nodes) {
    for (const c of n.checks) rows.push({ node: n.node, role: n.tags?.role ?? null, ...c, state: checkState(c.status) });
  }
  return rows.sort((a, b) => (rank[a.status] ?? 4) - (rank[b.status] ?? 4) || compareNames(a.node, b.node) || compareNames(a.name, b.name));
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A route's split as segments with percentages, largest first; values at 0 % are kept (they are
 * drained, which is worth seeing). An empty route (every backend served) → [].
 */
export function routeSegments(route) {
  if (route === null || route === undefined) return [];
  return Object.entries(route.weights)
    .map(([value, percent]) => ({ value, percent }))
    .sort((a, b) => b.percent - a.percent || cmp(a.value, b.value));
}

const NAMED = new Set(['blue', 'green', 'red', 'orange', 'yellow', 'purple', 'teal', 'pink', 'gray', 'grey', 'black', 'white']);

/** A CSS colour for a route value: itself when it names a colour ("blue"), else a stable hue. */
export function valueColor(value) {
  if (value === undefined || value === null || value === '') return 'var(--muted)';
  const v = value.toLowerCase();
  if (NAMED.has(v)) return `var(--c-${v === 'grey' ? 'gray' : v})`;
  let h = 0;
  for (let i = 0; i < v.length; i++) h = (h * 31 + v.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 65% 45%)`;
}

/**
 * Where a deploy is on prepare→check→shift→drain→bake→done: each step 'done', 'current' or
 * 'todo', with a label. A deploy that rolled back, aborted or failed marks the step it was on as
 * 'stopped' (`lastStep`: the last normal phase it reached, from its events). Between the steps of
 * a multi-step shift (10 → 50 → 100) the deploy bakes before the next step and nothing drains
 * yet: that is shown on the shift step ("shift 2/3 · baking"), drain and bake stay to do.
 */
export function deploySteps(phase, lastStep, stepIndex = -1, stepCount = 0) {
  const intermediate = (phase === 'shift' || phase === 'bake') && stepCount > 1 && stepIndex < stepCount - 1;
  let at = intermediate ? DEPLOY_STEPS.indexOf('shift') : DEPLOY_STEPS.indexOf(phase);
  let stopped = false;
  if (at < 0) {
    stopped = true;
    at = Math.max(0, DEPLOY_STEPS.indexOf(lastStep ?? 'prepare'));
  }
  return DEPLOY_STEPS.map((step, i) => {
    let label = step;
    if (step === 'shift' && stepCount > 1 && stepIndex >= 0 && (i === at || intermediate)) {
      label = `shift ${stepIndex + 1}/${stepCount}${intermediate && phase === 'bake' ? ' · baking' : ''}`;
    }
    return {
      step,
      label,
      state: i < at ? 'done' : i > at ? 'todo' : stopped ? 'stopped' : phase === 'done' ? 'done' : 'current',
    };
  });
}

/** The last normal phase (prepare…done) in a deploy's events, for showing where an ended one stopped. */
export function lastNormalPhase(events) {
  for (let i = (events?.length ?? 0) - 1; i >= 0; i--) {
    const p = events[i].phase;
    if (DEPLOY_STEPS.includes(p)) return p;
  }
  return undefined;
}

/** Percent of traffic on the new colour a full DeployState published last. */
export function deployPercent(d) {
  if (d.step < 0) return 0;
  if (d.phase === 'rolled-back' || d.phase === 'rolling-back') return 0;
  return d.spec.steps[d.step] ?? 0;
}

/**
 * A full DeployState (own) or a DeploySummary (another coordinator's) in one shape the page
 * renders: id, service, from, to, phase, percent, steps, figures, reason, times.
 */
export function deployView(d) {
  if ('spec' in d) {
    return {
      id: d.id, coordinator: d.coordinator, service: d.spec.service, from: d.spec.from, to: d.spec.to,
      phase: d.phase, percent: deployPercent(d), steps: d.spec.steps, figures: d.figures, reason: d.reason,
      startedAt: d.startedAt, updatedAt: d.updatedAt, lastStep: lastNormalPhase(d.events), events: d.events,
      stepIndex: d.step,
    };
  }
  return {
    id: d.id, coordinator: d.coordinator, service: d.service, from: d.from, to: d.to, phase: d.phase,
    percent: d.percent, steps: d.steps, figures: d.figures, reason: d.reason, startedAt: d.startedAt,
    updatedAt: d.updatedAt, lastStep: undefined, events: [],
    // A summary has no step index: the published percent tells which step it is on.
    stepIndex: d.steps.indexOf(d.percent),
  };
}

/**
 * Every deploy the page knows, once each (own full states win over others' summaries; a stream
 * update wins when newer), newest first. The first one is "current" when it has not ended.
 */
export function collectDeploys(response, streamed) {
  const byId = new Map();
  const put = (v) => {
    const prev = byId.get(v.id);
    if (prev === undefined || v.updatedAt > prev.updatedAt || (v.updatedAt === prev.updatedAt && v.events.length > prev.events.length)) byId.set(v.id, v);
  };
  for (const s of response?.elsewhere ?? []) put(deployView(s));
  for (const d of response?.history ?? []) put(deployView(d));
  if (response?.current) put(deployView(response.current));
  for (const d of streamed ?? []) put(deployView(d));
  return [...byId.values()].sort((a, b) => b.startedAt - a.startedAt);
}

/** Reconnect delay after `attempt` failures: 1 s doubling to 30 s, with up to 20 % jitter from `rand` in [0,1). */
export function backoffMs(attempt, rand = 0) {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
  return Math.round(base * (1 + 0.2 * rand));
}

/** A URL with `?token=` added (EventSource cannot send headers); unchanged without a token. */
export function withToken(path, token) {
  if (!token) return path;
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

// ---------------------------------------------------------------- plots (GET /v1/history)

/**
 * The history as named series of [t, value] per chart: members by status, gossip health per
 * second, nodes not passing their checks per role, and per balancer each backend's requests/s
 * (errors/s as a dashed twin). Points without the figure (a first point has no rate) are left out.
 */
export function historySeries(history) {
  const points = history?.points ?? [];
  const line = (name, pick, extra = {}) => ({ name, points: points.flatMap((p) => { const v = pick(p); return v === undefined || v === null ? [] : [[p.t, v]]; }), ...extra });
  const members = ['alive', 'failed', 'left', 'leaving'].map((st) => line(st, (p) => p.members[st], { tone: st }));
  const gossip = [
    line('probe failures/s', (p) => p.gossip?.probe_failures, { tone: 'failed' }),
    line('suspicions/s', (p) => p.gossip?.suspicions, { tone: 'leaving' }),
    line('refutations/s', (p) => p.gossip?.refutations, { tone: 'left' }),
  ];
  const roles = [...new Set(points.flatMap((p) => Object.keys(p.checks)))].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : compareNames(a, b)));
  const checks = roles.map((role) => line(role === '' ? '(no role)' : role, (p) => {
    const c = p.checks[role];
    return c === undefined ? 0 : c.warning + c.critical + c.unknown;
  }));
  const nodes = [...new Set(points.flatMap((p) => Object.keys(p.backends ?? {})))].sort(compareNames);
  const balancers = nodes.map((node) => {
    const backends = [...new Set(points.flatMap((p) => Object.keys(p.backends?.[node] ?? {})))].sort(compareNames);
    return {
      node,
      series: backends.flatMap((b) => [
        line(`${b} req/s`, (p) => p.backends?.[node]?.[b]?.requests, { key: b }),
        line(`${b} err/s`, (p) => p.backends?.[node]?.[b]?.errors, { key: b, dashed: true }),
      ]),
    };
  });
  return { members, gossip, checks, balancers };
}

/** A "nice" upper bound for a y axis: 1, 2 or 5 × 10^k at or above max (at least 1). */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/**
 * SVG polyline points for a series in a width × height box: time from t0 to t1 left to right,
 * 0 to yMax bottom to top. Rounded to 0.1 px.
 */
export function plotPoints(points, t0, t1, yMax, width, height) {
  const span = Math.max(1, t1 - t0);
  const r = (x) => Math.round(x * 10) / 10;
  return points.map(([t, v]) => `${r(((t - t0) / span) * width)},${r(height - (Math.min(v, yMax) / yMax) * height)}`).join(' ');
}

/**
 * One figure of GET /v1/performance drawn per role: the band from each step's min to its max,
 * the median line, and the outlier nodes' own lines. Times in ms at each step's middle (the
 * plots' unit); steps without a sample are left out.
 */
export function roleBands(report, field) {
  if (report === null || report === undefined) return [];
  const half = (report.stepS * 1000) / 2;
  return report.roles.map((r) => {
    const f = r.fields.find((x) => x.field === field);
    if (f === undefined) return { role: r.role, nodes: r.nodes, band: [], median: [], outliers: [], unit: '', label: field };
    const at = (s) => s.t * 1000 + half;
    const steps = f.steps.filter((s) => s.count > 0 && s.min !== null && s.max !== null);
    return {
      role: r.role,
      nodes: r.nodes,
      unit: f.unit,
      label: f.label,
      band: steps.map((s) => [at(s), s.min, s.max]),
      median: steps.map((s) => [at(s), s.p50]),
      outliers: f.outliers.map((o) => ({
        node: o.node,
        value: o.value,
        median: o.median,
        points: o.steps.flatMap((v, i) => (v === null || f.steps[i] === undefined ? [] : [[at(f.steps[i]), v]])),
      })),
    };
  });
}

/** A figure's value with its unit, short: bytes per second in KiB/MiB, percents to 0.1. */
export function formatFigure(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (unit === 'B/s') {
    const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
    let x = v;
    let i = 0;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return `${x.toFixed(x < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }
  if (unit === '') return v.toFixed(2);
  return `${v.toFixed(1)}${unit === '%' ? ' %' : ` ${unit}`}`;
}
