// The agent config's `balancer` object (snake_case JSON, like serf's keys) → a validated
// BalancerSpec. Pure: no file is read here (template sources are read when rendering, so a
// template fixed on disk is picked up without restarting the agent).
//
//   { "driver": "embedded" | "haproxy",                       default embedded (zero install)
//     "services": { "<name>": { "bind": "host:port",          required
//                               "mode": "http" | "tcp",        default http
//                               "min_backends": 1,             default 1
//                               "drain_timeout": "10s",        default 10s
//                               "prefer_near": false } },      default false (weigh by round trip)
//     "haproxy": { "binary": "haproxy", "dir": "…", "slots": 8, "reload_debounce": "2s" },
//     "templates": [ { "source", "destination", "command"?, "debounce"? (default 250ms) } ] }
//
// haproxy.dir defaults to `<os.tmpdir()>/kodama-haproxy-<pid>`: a fresh place per agent process,
// so two balancers on one machine never share sockets or a config file.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostPort } from '../agent/address.ts';
import { AgentError } from '../agent/errors.ts';
import { checkKeys as checkKnownKeys, parseDuration } from '../agent/config-fields.ts';
import type { BalancedServiceSpec, BalancerSpec, ServiceProtocol, TemplateSpec } from './types.ts';

export const DEFAULT_MIN_BACKENDS = 1;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_HAPROXY_SLOTS = 8;
export const DEFAULT_RELOAD_DEBOUNCE_MS = 2_000;
export const DEFAULT_TEMPLATE_DEBOUNCE_MS = 250;
/** HAProxy refuses absurd server counts long before this; the cap keeps a typo from exhausting memory. */
export const MAX_HAPROXY_SLOTS = 4096;

/** Service names become tag keys `s:<name>` and HAProxy backend names: keep them plain. */
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function defaultHaproxyDir(): string {
  return join(tmpdir(), `kodama-haproxy-${process.pid}`);
}

type Obj = Record<string, unknown>;

function fail(msg: string): never {
  throw new AgentError('ERR_AGENT_CONFIG', msg);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(o: Obj, allowed: readonly string[], where: string): void {
  checkKnownKeys(o, new Set(allowed), where);
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') fail(`${where}: expected a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`${where}: expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function duration(v: unknown, where: string): number {
  if (typeof v !== 'string') fail(`${where}: expected a duration string such as "500ms" or "10s", got ${JSON.stringify(v)}`);
  return parseDuration(v, where);
}

function parseBind(v: unknown, where: string): { host: string; port: number } {
  const text = str(v, where);
  let hp: { host: string; port: number };
  try {
    hp = parseHostPort(text, -1);
  } catch (e) {
    fail(`${where}: ${(e as Error).message} (use host:port, e.g. "127.0.0.1:8000")`);
  }
  if (hp.port < 1) fail(`${where}: "${text}" needs a port 1..65535 to listen on (use host:port, e.g. "127.0.0.1:8000")`);
  return hp;
}

function parseService(name: string, raw: unknown, where: string): BalancedServiceSpec {
  if (!SERVICE_NAME.test(name)) {
    fail(`${where}: service name '${name}' must be 1-63 letters, digits, '_', '.' or '-' (it becomes the tag key s:<name>)`);
  }
  if (!isObj(raw)) fail(`${where}: expected an object like {"bind": "127.0.0.1:8000"}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, ['bind', 'mode', 'min_backends', 'drain_timeout', 'prefer_near'], where);
  if (raw.prefer_near !== undefined && typeof raw.prefer_near !== 'boolean') fail(`${where}.prefer_near: expected true or false, got ${JSON.stringify(raw.prefer_near)}`);
  if (raw.bind === undefined) fail(`${where}: 'bind' is required (the address the balancer listens on, e.g. "127.0.0.1:8000")`);
  let mode: ServiceProtocol = 'http';
  if (raw.mode !== undefined) {
    if (raw.mode !== 'http' && raw.mode !== 'tcp') fail(`${where}.mode: expected "http" or "tcp", got ${JSON.stringify(raw.mode)}`);
    mode = raw.mode;
  }
  return {
    service: name,
    mode,
    bind: parseBind(raw.bind, `${where}.bind`),
    minBackends: raw.min_backends === undefined ? DEFAULT_MIN_BACKENDS : int(raw.min_backends, `${where}.min_backends`, 0, 10_000),
    drainTimeoutMs: raw.drain_timeout === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : duration(raw.drain_timeout, `${where}.drain_timeout`),
    ...(raw.prefer_near === true ? { preferNear: true } : {}),
  };
}

function parseTemplate(raw: unknown, where: string): TemplateSpec {
  if (!isObj(raw)) fail(`${where}: expected an object like {"source": "x.mustache", "destination": "x.conf"}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, ['source', 'destination', 'command', 'debounce'], where);
  if (raw.source === undefined) fail(`${where}: 'source' is required (the mustache template file)`);
  if (raw.destination === undefined) fail(`${where}: 'destination' is required (the file to write)`);
  const t: TemplateSpec = {
    source: str(raw.source, `${where}.source`),
    destination: str(raw.destination, `${where}.destination`),
    debounceMs: raw.debounce === undefined ? DEFAULT_TEMPLATE_DEBOUNCE_MS : duration(raw.debounce, `${where}.debounce`),
  };
  if (raw.command !== undefined) t.command = str(raw.command, `${where}.command`);
  return t;
}

/** Validate the `balancer` config object; `source` names where it came from (file path) for messages. */
export function parseBalancerSpec(raw: unknown, source: string): BalancerSpec {
  const where = `${source}: balancer`;
  if (!isObj(raw)) fail(`${where}: expected an object like {"services": {"web": {"bind": "127.0.0.1:8000"}}}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, ['driver', 'services', 'haproxy', 'templates'], where);

  let driver: BalancerSpec['driver'] = 'embedded';
  if (raw.driver !== undefined) {
    if (raw.driver !== 'embedded' && raw.driver !== 'haproxy') {
      fail(`${where}.driver: expected "embedded" or "haproxy", got ${JSON.stringify(raw.driver)}`);
    }
    driver = raw.driver;
  }

  if (!isObj(raw.services)) {
    fail(`${where}.services: required, an object of service name → {"bind": "host:port"}, e.g. {"web": {"bind": "127.0.0.1:8000"}}`);
  }
  const services: BalancedServiceSpec[] = [];
  const binds = new Map<string, string>();
  for (const [name, s] of Object.entries(raw.services)) {
    const spec = parseService(name, s, `${where}.services.${name}`);
    const key = `${spec.bind.host}:${spec.bind.port}`;
    const other = binds.get(key);
    if (other !== undefined) fail(`${where}.services: '${other}' and '${name}' both bind ${key}; give each service its own port`);
    binds.set(key, name);
    services.push(spec);
  }
  if (services.length === 0) fail(`${where}.services: name at least one service to balance, e.g. {"web": {"bind": "127.0.0.1:8000"}}`);

  const haproxy: BalancerSpec['haproxy'] = {
    binary: 'haproxy',
    dir: defaultHaproxyDir(),
    slots: DEFAULT_HAPROXY_SLOTS,
    reloadDebounceMs: DEFAULT_RELOAD_DEBOUNCE_MS,
  };
  if (raw.haproxy !== undefined) {
    const h = raw.haproxy;
    const hw = `${where}.haproxy`;
    if (!isObj(h)) fail(`${hw}: expected an object like {"binary": "haproxy", "dir": "/var/lib/kodama/haproxy"}, got ${JSON.stringify(h)}`);
    checkKeys(h, ['binary', 'dir', 'slots', 'reload_debounce'], hw);
    if (h.binary !== undefined) haproxy.binary = str(h.binary, `${hw}.binary`);
    if (h.dir !== undefined) haproxy.dir = str(h.dir, `${hw}.dir`);
    if (h.slots !== undefined) haproxy.slots = int(h.slots, `${hw}.slots`, 1, MAX_HAPROXY_SLOTS);
    if (h.reload_debounce !== undefined) haproxy.reloadDebounceMs = duration(h.reload_debounce, `${hw}.reload_debounce`);
  }

  const templates: TemplateSpec[] = [];
  if (raw.templates !== undefined) {
    if (!Array.isArray(raw.templates)) fail(`${where}.templates: expected a list of {"source", "destination", "command"?, "debounce"?}`);
    raw.templates.forEach((t, i) => templates.push(parseTemplate(t, `${where}.templates[${i}]`)));
  }
  return { driver, services, haproxy, templates };
}
