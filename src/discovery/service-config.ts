// The agent config's `services` section (snake_case JSON like serf's keys) → ServiceSpec[].
//
//   "services": [ { "name": "web", "port": 8080, "protocol": "http", "weight": 100, "tags": ["v1"],
//     "checks": [ { "http": "/health", "status": 200, "host": "web.local", "interval": "1s",
//                   "timeout": "500ms", "rise": 2, "fall": 2 },
//                 { "tcp": true, "interval": "2s" },
//                 { "script": "/usr/lib/nagios/plugins/check_load -w 5 -c 10", "timeout": "5s" } ] } ]
//
// and its `containers` section (services from local containers):
//
//   "containers": { "socket": "/run/podman/podman.sock", "poll": "1s" }
//
// Unknown keys are errors (as in the rest of the agent config): a typo must not silently turn a
// health check off. Every error names the key path and says what would be accepted.

import { checkKeys, configFail as fail, durationField, intIn, isObj } from '../agent/config-fields.ts';
import type { Obj } from '../agent/config-fields.ts';
import { DEFAULT_WEIGHT, MAX_SERVICE_NAME_LENGTH, MAX_WEIGHT, isValidServiceName } from './advertise.ts';
import type { CheckSpec, ContainersSpec, ServiceProtocol, ServiceSpec } from './types.ts';

/** Defaults of a check (Nerve's and HAProxy's usual figures). */
export const CHECK_DEFAULTS = {
  /** How often a check runs: fast enough that a dead page leaves rotation in ~fall seconds. */
  intervalMs: 1000,
  /** A check that takes longer than this fails (status 2). */
  timeoutMs: 1000,
  /** Consecutive passes before a service is advertised: one lucky answer is not health. */
  rise: 2,
  /** Consecutive failures before it is withdrawn: one lost packet is not sickness. */
  fall: 2,
  /** Expected HTTP status of an http check. */
  expectStatus: 200,
} as const;

/** Below this a check would spin the CPU (and the checked service) for no gain. */
export const MIN_CHECK_INTERVAL_MS = 10;

const SERVICE_KEYS = new Set(['name', 'port', 'protocol', 'weight', 'tags', 'checks']);
const CHECK_KEYS = new Set(['http', 'status', 'host', 'tcp', 'script', 'interval', 'timeout', 'rise', 'fall']);

function durationMs(o: Obj, key: string, where: string, dflt: number): number {
  return durationField(o, key, where, MIN_CHECK_INTERVAL_MS) ?? dflt;
}

function parseCheck(raw: unknown, where: string): CheckSpec {
  if (!isObj(raw)) fail(where, `expected an object such as {"http": "/health"}, {"tcp": true} or {"script": "cmd"}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, CHECK_KEYS, where);
  const kinds = (['http', 'tcp', 'script'] as const).filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    fail(where, kinds.length === 0
      ? "needs one of 'http' (a path), 'tcp' (true) or 'script' (a command)"
      : `has ${kinds.map((k) => `'${k}'`).join(' and ')}: use one kind per check (add another check for the other)`);
  }
  const timing = {
    intervalMs: durationMs(raw, 'interval', where, CHECK_DEFAULTS.intervalMs),
    timeoutMs: durationMs(raw, 'timeout', where, CHECK_DEFAULTS.timeoutMs),
    rise: intIn(raw, 'rise', where, 1, 1000, CHECK_DEFAULTS.rise),
    fall: intIn(raw, 'fall', where, 1, 1000, CHECK_DEFAULTS.fall),
  };
  const kind = kinds[0]!;
  if (kind !== 'http') {
    for (const k of ['status', 'host']) {
      if (raw[k] !== undefined) fail(where, `'${k}' applies to http checks only`);
    }
  }
  switch (kind) {
    case 'http': {
      const path = raw['http'];
      if (typeof path !== 'string' || !path.startsWith('/')) fail(where, `'http' expected a path starting with "/", such as "/health", got ${JSON.stringify(path)}`);
      if (/[\s]/.test(path)) fail(where, `'http' path must not contain spaces, got ${JSON.stringify(path)}`);
      const host = raw['host'];
      if (host !== undefined && (typeof host !== 'string' || host === '' || /[\s]/.test(host))) {
        fail(where, `'host' expected a Host header value such as "web.example.com", got ${JSON.stringify(host)}`);
      }
      return {
        kind: 'http',
        path,
        expectStatus: intIn(raw, 'status', where, 100, 599, CHECK_DEFAULTS.expectStatus),
        ...(host !== undefined ? { host } : {}),
        ...timing,
      };
    }
    case 'tcp':
      if (raw['tcp'] !== true) fail(where, `'tcp' expected true (connect to the service's port), got ${JSON.stringify(raw['tcp'])}`);
      return { kind: 'tcp', ...timing };
    case 'script': {
      const command = raw['script'];
      if (typeof command !== 'string' || command.trim() === '') fail(where, `'script' expected a shell command, got ${JSON.stringify(command)}`);
      return { kind: 'script', command, ...timing };
    }
  }
}

function parseService(raw: unknown, where: string): ServiceSpec {
  if (!isObj(raw)) fail(where, `expected an object such as {"name": "web", "port": 8080}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, SERVICE_KEYS, where);
  const name = raw['name'];
  if (typeof name !== 'string' || !isValidServiceName(name)) {
    fail(where, `'name' expected a service name (letters, digits, "_", "-", "."; up to ${MAX_SERVICE_NAME_LENGTH} characters, starting with a letter or digit), got ${JSON.stringify(name)}`);
  }
  const at = `${where} (${name})`;
  if (raw['port'] === undefined) fail(at, "'port' is required: the port the service listens on");
  const port = intIn(raw, 'port', at, 1, 65535, 0);
  const protocol = raw['protocol'] ?? 'http';
  if (protocol !== 'http' && protocol !== 'tcp') fail(at, `'protocol' expected "http" or "tcp", got ${JSON.stringify(protocol)}`);
  const weight = intIn(raw, 'weight', at, 0, MAX_WEIGHT, DEFAULT_WEIGHT);
  const tags = raw['tags'] ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) fail(at, `'tags' expected a list of strings, got ${JSON.stringify(tags)}`);
  const checksRaw = raw['checks'] ?? [];
  if (!Array.isArray(checksRaw)) fail(at, `'checks' expected a list of checks, got ${JSON.stringify(checksRaw)}`);
  const checks = checksRaw.map((c, i) => parseCheck(c, `${at}.checks[${i}]`));
  return { name, port, protocol: protocol as ServiceProtocol, weight, tags: [...(tags as string[])], checks };
}

/**
 * Parse the `services` value of an agent config. `source` names the file (or "environment")
 * in error messages. Throws AgentError('ERR_AGENT_CONFIG').
 */
export function parseServiceSpecs(raw: unknown, source: string): ServiceSpec[] {
  const where = `${source}: services`;
  if (!Array.isArray(raw)) fail(where, `expected a list of services such as [{"name": "web", "port": 8080}], got ${JSON.stringify(raw)}`);
  const out = raw.map((s, i) => parseService(s, `${where}[${i}]`));
  const seen = new Set<string>();
  for (const s of out) {
    if (seen.has(s.name)) fail(where, `service "${s.name}" is defined twice (one tag s:${s.name} per node): merge the two entries`);
    seen.add(s.name);
  }
  return out;
}

/** Default re-list interval of the container engine: a stop's grace period (10 s) is far longer. */
export const DEFAULT_CONTAINER_POLL_MS = 1000;

const CONTAINERS_KEYS = new Set(['socket', 'poll']);

/** Parse the `containers` value of an agent config. Throws AgentError('ERR_AGENT_CONFIG'). */
export function parseContainersSpec(raw: unknown, source: string): ContainersSpec {
  const where = `${source}: containers`;
  if (!isObj(raw)) fail(where, `expected an object such as {"socket": "/run/podman/podman.sock"}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, CONTAINERS_KEYS, where);
  const socket = raw['socket'];
  if (typeof socket !== 'string' || socket.trim() === '') {
    fail(where, `'socket' expected the path of the engine's API socket, such as "/run/podman/podman.sock" or "/var/run/docker.sock", got ${JSON.stringify(socket)}`);
  }
  const pollMs = durationField(raw, 'poll', where, 100) ?? DEFAULT_CONTAINER_POLL_MS;
  return { socket: socket.trim().replace(/^unix:\/\//, ''), pollMs };
}
