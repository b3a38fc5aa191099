// The agent config's `checks` and `monitoring` sections (snake_case JSON like serf's keys).
//
//   "checks": [ { "name": "disk", "command": "check_disk -w 20% -c 10% -p /", "interval": "10s",
//                 "timeout": "5s", "subscriptions": ["role=web"], "handlers": ["ops"],
//                 "low_flap_threshold": 20, "high_flap_threshold": 30 },
//               { "name": "page", "http": "/health", "port": 8080, "status": 200 },
//               { "name": "db", "tcp": true, "port": 5432, "host": "127.0.0.1" },
//               { "name": "heartbeat", "ttl": "30s", "ttl_status": 2 } ]
//   "monitoring": { "handlers": { "ops": { "type": "script", "command": "…", "timeout": "10s",
//                   "filters": { "occurrences": 3, … } } },
//                   "default_handlers": ["ops"], "member_handlers": ["ops"] }
//
// A check has exactly one of `command`, `http`, `tcp` or `ttl`: a TTL check's results are pushed
// (`kodama check-result`), so it has no probe. `host` is where http/tcp checks connect (default
// 127.0.0.1: a check watches its own node). Unknown keys are errors, as everywhere in the agent
// config: a typo must not silently turn a check off. Every error names the key path and says
// what would be accepted.
//
// Handler names in `checks` are validated against `monitoring.handlers` only on a monitor node
// (validateCheckHandlers): a plain node runs checks but carries no monitoring config, and its
// checks may name handlers that only the monitors define.

import { checkKeys, configFail as fail, durationField, intIn, isObj } from '../agent/config-fields.ts';
import type { Obj } from '../agent/config-fields.ts';
import type { ProbeSpec } from '../probes/types.ts';
import type { CheckState, CheckStatus, HandlerFilters, HandlerSpec, MonitorCheckSpec, MonitoringSpec } from './types.ts';

export const CHECK_SPEC_DEFAULTS = {
  intervalMs: 10_000,
  /** Capped at the interval when the interval is shorter. */
  timeoutMs: 10_000,
  ttlStatus: 2 as CheckStatus,
  lowFlapThreshold: 20,
  highFlapThreshold: 30,
  expectStatus: 200,
  host: '127.0.0.1',
} as const;

export const HANDLER_DEFAULTS = {
  timeoutMs: 10_000,
  filters: { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true } as HandlerFilters,
} as const;

/** Below this a check would spin the CPU for no gain. */
export const MIN_CHECK_INTERVAL_MS = 100;
export const CHECK_NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
/** `member` names member-failed alerts (AlertEvent.check.name): a check of that name would be confused with them. */
export const RESERVED_CHECK_NAMES = new Set(['member']);
const HANDLER_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const CHECK_KEYS = new Set(['name', 'command', 'http', 'tcp', 'ttl', 'port', 'host', 'status', 'interval', 'timeout',
  'subscriptions', 'ttl_status', 'handlers', 'low_flap_threshold', 'high_flap_threshold']);
const MONITORING_KEYS = new Set(['handlers', 'default_handlers', 'member_handlers']);
const HANDLER_KEYS: Record<HandlerSpec['type'], Set<string>> = {
  script: new Set(['type', 'command', 'timeout', 'filters']),
  webhook: new Set(['type', 'url', 'timeout', 'filters']),
  log: new Set(['type', 'path', 'filters']),
};
const FILTER_KEYS = new Set(['occurrences', 'severities', 'not_silenced', 'state_changes_only']);
const SEVERITIES: readonly Exclude<CheckState, 'passing'>[] = ['warning', 'critical', 'unknown'];

function durationMs(o: Obj, key: string, where: string, min: number): number | undefined {
  return durationField(o, key, where, min);
}

function stringList(o: Obj, key: string, where: string, example: string): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(where, `'${key}' expected a list of strings such as ${example}, got ${JSON.stringify(v)}`);
  return [...(v as string[])];
}

function handlerNames(o: Obj, key: string, where: string): string[] | undefined {
  const names = stringList(o, key, where, '["ops"]');
  for (const n of names ?? []) {
    if (!HANDLER_NAME_RE.test(n)) fail(where, `'${key}' has an invalid handler name ${JSON.stringify(n)} (letters, digits, "_", "-", ".")`);
  }
  return names;
}

function parseSubscriptions(o: Obj, where: string): string[] {
  const subs = stringList(o, 'subscriptions', where, '["role=web"]') ?? [];
  for (const s of subs) {
    if (s === '*') continue;
    const eq = s.indexOf('=');
    if (eq <= 0) fail(where, `'subscriptions' entry ${JSON.stringify(s)} expected key=value (a tag match such as "role=web") or "*" for every node`);
  }
  return subs;
}

function parseCheck(raw: unknown, where: string): MonitorCheckSpec {
  if (!isObj(raw)) fail(where, `expected an object such as {"name": "disk", "command": "check_disk -w 20% -c 10%"}, got ${JSON.stringify(raw)}`);
  const name = raw['name'];
  if (typeof name !== 'string' || !CHECK_NAME_RE.test(name)) {
    fail(where, `'name' expected a check name (letters, digits, "_", "-", "."; 1 to 32 characters), got ${JSON.stringify(name)}`);
  }
  if (RESERVED_CHECK_NAMES.has(name)) fail(where, `'name' "${name}" is reserved for member-failed alerts: pick another name`);
  const at = `${where} (${name})`;
  checkKeys(raw, CHECK_KEYS, at);
  const kinds = (['command', 'http', 'tcp', 'ttl'] as const).filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    fail(at, kinds.length === 0
      ? "needs one of 'command' (a Nagios plugin command), 'http' (a path), 'tcp' (true) or 'ttl' (a duration: results are pushed)"
      : `has ${kinds.map((k) => `'${k}'`).join(' and ')}: use one per check (a TTL check has no command: its results are pushed with kodama check-result)`);
  }
  const kind = kinds[0]!;
  const intervalMs = durationMs(raw, 'interval', at, MIN_CHECK_INTERVAL_MS) ?? CHECK_SPEC_DEFAULTS.intervalMs;
  const explicitTimeout = durationMs(raw, 'timeout', at, 1);
  if (explicitTimeout !== undefined && explicitTimeout > intervalMs) {
    fail(at, `'timeout' (${raw['timeout'] as string}) must not exceed 'interval' (${intervalMs} ms): a check would overlap its next run`);
  }
  const timeoutMs = explicitTimeout ?? Math.min(CHECK_SPEC_DEFAULTS.timeoutMs, intervalMs);
  const low = intIn(raw, 'low_flap_threshold', at, 0, 100, CHECK_SPEC_DEFAULTS.lowFlapThreshold);
  const high = intIn(raw, 'high_flap_threshold', at, 0, 101, CHECK_SPEC_DEFAULTS.highFlapThreshold);
  if (!(low === 0 && high === 0) && low >= high) {
    fail(at, `'low_flap_threshold' (${low}) must be below 'high_flap_threshold' (${high}); 0 and 0 turn flap detection off`);
  }
  const handlers = handlerNames(raw, 'handlers', at);
  const spec: MonitorCheckSpec = {
    name,
    intervalMs,
    subscriptions: parseSubscriptions(raw, at),
    ttlStatus: intIn(raw, 'ttl_status', at, 0, 3, CHECK_SPEC_DEFAULTS.ttlStatus) as CheckStatus,
    lowFlapThreshold: low,
    highFlapThreshold: high,
    ...(handlers !== undefined ? { handlers } : {}),
  };
  if (kind !== 'http' && raw['status'] !== undefined) fail(at, "'status' applies to http checks only");
  if ((kind === 'command' || kind === 'ttl') && (raw['port'] !== undefined || raw['host'] !== undefined)) {
    fail(at, `'port' and 'host' apply to http and tcp checks only`);
  }
  if (kind !== 'ttl' && raw['ttl_status'] !== undefined) fail(at, "'ttl_status' applies to TTL checks only");
  const target = (): { host: string; port: number } => {
    if (raw['port'] === undefined) fail(at, `'port' is required for ${kind} checks: the port to connect to`);
    const port = intIn(raw, 'port', at, 1, 65535, 0);
    const host = raw['host'] ?? CHECK_SPEC_DEFAULTS.host;
    if (typeof host !== 'string' || host === '' || /\s/.test(host)) fail(at, `'host' expected an address such as "127.0.0.1", got ${JSON.stringify(host)}`);
    return { host, port };
  };
  let probe: ProbeSpec | undefined;
  switch (kind) {
    case 'command': {
      const command = raw['command'];
      if (typeof command !== 'string' || command.trim() === '') fail(at, `'command' expected a shell command, got ${JSON.stringify(command)}`);
      probe = { kind: 'script', command, timeoutMs };
      break;
    }
    case 'http': {
      const path = raw['http'];
      if (typeof path !== 'string' || !path.startsWith('/') || /\s/.test(path)) fail(at, `'http' expected a path starting with "/", such as "/health", got ${JSON.stringify(path)}`);
      spec.target = target();
      probe = { kind: 'http', path, expectStatus: intIn(raw, 'status', at, 100, 599, CHECK_SPEC_DEFAULTS.expectStatus), timeoutMs };
      break;
    }
    case 'tcp':
      if (raw['tcp'] !== true) fail(at, `'tcp' expected true (connect to 'port'), got ${JSON.stringify(raw['tcp'])}`);
      spec.target = target();
      probe = { kind: 'tcp', timeoutMs };
      break;
    case 'ttl':
      spec.ttlMs = durationMs(raw, 'ttl', at, MIN_CHECK_INTERVAL_MS);
      if (raw['interval'] !== undefined || raw['timeout'] !== undefined) fail(at, "'interval' and 'timeout' do not apply to TTL checks (results are pushed; 'ttl' is the deadline)");
      break;
  }
  if (probe !== undefined) spec.probe = probe;
  return spec;
}

/**
 * Parse the `checks` value of an agent config (a list). `source` names the file in errors.
 * Throws AgentError('ERR_AGENT_CONFIG').
 */
export function parseCheckSpecs(raw: unknown, source: string): MonitorCheckSpec[] {
  const where = `${source}: checks`;
  if (!Array.isArray(raw)) fail(where, `expected a list of checks such as [{"name": "disk", "command": "check_disk -w 20% -c 10%"}], got ${JSON.stringify(raw)}`);
  const out = raw.map((c, i) => parseCheck(c, `${where}[${i}]`));
  const dup = findDuplicateCheck(out);
  if (dup !== undefined) fail(where, `check "${dup}" is defined twice (names are unique per node): rename or merge one`);
  return out;
}

export function findDuplicateCheck(checks: readonly MonitorCheckSpec[]): string | undefined {
  const seen = new Set<string>();
  for (const c of checks) {
    if (seen.has(c.name)) return c.name;
    seen.add(c.name);
  }
  return undefined;
}

function parseFilters(raw: unknown, where: string): HandlerFilters {
  const d = HANDLER_DEFAULTS.filters;
  if (raw === undefined) return { ...d, severities: [...d.severities] };
  if (!isObj(raw)) fail(where, `expected an object such as {"occurrences": 3}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, FILTER_KEYS, where);
  const sev = stringList(raw, 'severities', where, '["critical", "unknown"]') ?? [...d.severities];
  for (const s of sev) {
    if (!(SEVERITIES as readonly string[]).includes(s)) fail(where, `'severities' entry ${JSON.stringify(s)} expected one of ${SEVERITIES.join(', ')}`);
  }
  const bool = (key: string, dflt: boolean): boolean => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') fail(where, `'${key}' expected true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    occurrences: intIn(raw, 'occurrences', where, 1, 1_000_000, d.occurrences),
    severities: sev as HandlerFilters['severities'],
    notSilenced: bool('not_silenced', d.notSilenced),
    stateChangesOnly: bool('state_changes_only', d.stateChangesOnly),
  };
}

function parseHandler(name: string, raw: unknown, where: string): HandlerSpec {
  if (!HANDLER_NAME_RE.test(name)) fail(where, `invalid handler name ${JSON.stringify(name)} (letters, digits, "_", "-", ".")`);
  if (!isObj(raw)) fail(where, `expected an object such as {"type": "script", "command": "/usr/local/bin/page-oncall"}, got ${JSON.stringify(raw)}`);
  const type = raw['type'];
  if (type !== 'script' && type !== 'webhook' && type !== 'log') fail(where, `'type' expected "script", "webhook" or "log", got ${JSON.stringify(type)}`);
  checkKeys(raw, HANDLER_KEYS[type], where);
  const filters = parseFilters(raw['filters'], `${where}.filters`);
  const timeoutMs = durationMs(raw, 'timeout', where, 1) ?? HANDLER_DEFAULTS.timeoutMs;
  switch (type) {
    case 'script': {
      const command = raw['command'];
      if (typeof command !== 'string' || command.trim() === '') fail(where, `'command' expected a shell command (it gets the alert JSON on stdin), got ${JSON.stringify(command)}`);
      return { name, type, command, timeoutMs, filters };
    }
    case 'webhook': {
      const url = raw['url'];
      let ok = false;
      if (typeof url === 'string') {
        try {
          const u = new URL(url);
          ok = u.protocol === 'http:' || u.protocol === 'https:';
        } catch {
          ok = false;
        }
      }
      if (!ok) fail(where, `'url' expected an http(s) URL such as "http://127.0.0.1:9000/alerts", got ${JSON.stringify(url)}`);
      return { name, type, url: url as string, timeoutMs, filters };
    }
    case 'log': {
      const path = raw['path'];
      if (path !== undefined && (typeof path !== 'string' || path === '')) fail(where, `'path' expected a file path (or leave it out to log to the agent's log), got ${JSON.stringify(path)}`);
      return { name, type, ...(path !== undefined ? { path: path as string } : {}), filters };
    }
  }
}

/**
 * Parse the `monitoring` value of an agent config (an object; its presence makes the node a
 * monitor). Throws AgentError('ERR_AGENT_CONFIG').
 */
export function parseMonitoringSpec(raw: unknown, source: string): MonitoringSpec {
  const where = `${source}: monitoring`;
  if (!isObj(raw)) fail(where, `expected an object such as {"handlers": {"audit": {"type": "log"}}, "default_handlers": ["audit"]}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, MONITORING_KEYS, where);
  const hraw = raw['handlers'] ?? {};
  if (!isObj(hraw)) fail(`${where}.handlers`, `expected an object of named handlers such as {"ops": {"type": "script", "command": "…"}}, got ${JSON.stringify(hraw)}`);
  const handlers = Object.entries(hraw).map(([n, h]) => parseHandler(n, h, `${where}.handlers.${n}`));
  const defined = new Set(handlers.map((h) => h.name));
  const defaultHandlers = handlerNames(raw, 'default_handlers', where) ?? [];
  const memberHandlers = handlerNames(raw, 'member_handlers', where) ?? [...defaultHandlers];
  for (const [key, list] of [['default_handlers', defaultHandlers], ['member_handlers', memberHandlers]] as const) {
    for (const n of list) {
      if (!defined.has(n)) fail(where, `'${key}' names handler "${n}", which is not defined in 'monitoring.handlers' (defined: ${[...defined].join(', ') || 'none'})`);
    }
  }
  return { handlers, defaultHandlers, memberHandlers };
}

/** On a monitor node: every handler a check names must be defined. Throws AgentError('ERR_AGENT_CONFIG'). */
export function validateCheckHandlers(checks: readonly MonitorCheckSpec[], monitoring: MonitoringSpec): void {
  const defined = new Set(monitoring.handlers.map((h) => h.name));
  for (const c of checks) {
    for (const n of c.handlers ?? []) {
      if (!defined.has(n)) {
        fail(`checks (${c.name})`, `'handlers' names "${n}", which is not defined in 'monitoring.handlers' on this monitor node (defined: ${[...defined].join(', ') || 'none'})`);
      }
    }
  }
}

/** Does a check with these subscriptions run on a node with these tags? Empty or `*` = every node. */
export function subscriptionMatches(subs: readonly string[], tags: Record<string, string>): boolean {
  if (subs.length === 0) return true;
  for (const s of subs) {
    if (s === '*') return true;
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const key = s.slice(0, eq);
    if (Object.hasOwn(tags, key) && tags[key] === s.slice(eq + 1)) return true;
  }
  return false;
}
