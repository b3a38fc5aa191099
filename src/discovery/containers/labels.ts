// A container as the engine lists it (Docker API `GET /containers/json`, which Podman serves
// too) → the service it offers, from its labels. Pure: JSON in, a ServiceSpec or a reason out.
//
//   kodama.service   service name (required: the label that makes a container ours)
//   kodama.port      the port it serves on (required). With --network host that port is on the
//                    node's address; with a published port (-p 8081:8080, kodama.port=8080) the
//                    host port (8081) is advertised. Anything else is not reachable from a
//                    balancer and is refused with why.
//   kodama.check     "tcp" (default: the port accepts a connection), "http:/path" (answers 200),
//                    "http:/path=204" (another status), or "none" (healthy while running)
//   kodama.protocol  "http" (default) or "tcp";  kodama.weight  0..256 (default 100)
//   kodama.interval, kodama.timeout (durations, default 1s), kodama.rise, kodama.fall (default 2)
//
// Container state → what the service does: "running" → checked, advertised while healthy;
// "stopping" (Podman, during a stop's grace period) or a TERM/INT/QUIT/KILL `kill` event seen
// (Docker says so only by that event) → drained; anything else (exited, paused, dead…) → gone.

import { parseDuration } from '../../agent/config-fields.ts';
import { DEFAULT_WEIGHT, MAX_SERVICE_NAME_LENGTH, MAX_WEIGHT, isValidServiceName } from '../advertise.ts';
import { CHECK_DEFAULTS, MIN_CHECK_INTERVAL_MS } from '../service-config.ts';
import type { CheckSpec, ServiceSpec } from '../types.ts';

export const LABEL_PREFIX = 'kodama.';
export const SERVICE_LABEL = 'kodama.service';
const KNOWN_LABELS = new Set(['service', 'port', 'check', 'protocol', 'weight', 'interval', 'timeout', 'rise', 'fall'].map((k) => LABEL_PREFIX + k));

export type ContainerPhase = 'running' | 'stopping' | 'gone';

export interface ContainerService {
  /** The engine's container id. */
  id: string;
  /** Its name (without Docker's leading "/"), for log lines. */
  container: string;
  /** Seconds since the epoch (the engine's `Created`): the older container wins a shared name. */
  created: number;
  phase: ContainerPhase;
  spec: ServiceSpec;
}

/** Not ours (no kodama.service label), ours, or ours but unusable (`error` says why, naming the label). */
export type ContainerReading = { kind: 'ignored' } | { kind: 'service'; service: ContainerService } | { kind: 'invalid'; id: string; container: string; error: string };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function intLabel(labels: Record<string, string>, key: string, min: number, max: number, dflt: number): number {
  const text = labels[key];
  if (text === undefined) return dflt;
  if (!/^\d{1,6}$/.test(text.trim()) || Number(text) < min || Number(text) > max) throw new Error(`label ${key}=${JSON.stringify(text)}: expected an integer from ${min} to ${max}`);
  return Number(text);
}

function durationLabel(labels: Record<string, string>, key: string, dflt: number): number {
  const text = labels[key];
  if (text === undefined) return dflt;
  let ms: number;
  try {
    ms = parseDuration(text.trim(), `label ${key}`);
  } catch {
    throw new Error(`label ${key}=${JSON.stringify(text)}: expected a duration such as "500ms" or "2s"`);
  }
  if (ms < MIN_CHECK_INTERVAL_MS) throw new Error(`label ${key}=${JSON.stringify(text)}: must be at least ${MIN_CHECK_INTERVAL_MS}ms`);
  return ms;
}

function checkFrom(labels: Record<string, string>): CheckSpec[] {
  const timing = {
    intervalMs: durationLabel(labels, 'kodama.interval', CHECK_DEFAULTS.intervalMs),
    timeoutMs: durationLabel(labels, 'kodama.timeout', CHECK_DEFAULTS.timeoutMs),
    rise: intLabel(labels, 'kodama.rise', 1, 1000, CHECK_DEFAULTS.rise),
    fall: intLabel(labels, 'kodama.fall', 1, 1000, CHECK_DEFAULTS.fall),
  };
  const text = (labels['kodama.check'] ?? 'tcp').trim();
  if (text === 'none') return [];
  if (text === 'tcp') return [{ kind: 'tcp', ...timing }];
  const m = /^http:(\/\S*?)(?:=(\d{3}))?$/.exec(text);
  if (m === null) throw new Error(`label kodama.check=${JSON.stringify(text)}: expected "tcp", "http:/path", "http:/path=<status>" or "none"`);
  const status = m[2] === undefined ? CHECK_DEFAULTS.expectStatus : Number(m[2]);
  if (status < 100 || status > 599) throw new Error(`label kodama.check=${JSON.stringify(text)}: status must be from 100 to 599`);
  return [{ kind: 'http', path: m[1]!, expectStatus: status, ...timing }];
}

/** The host port a balancer reaches: a published port of `port` if any, else `port` itself (host network). */
function reachablePort(ports: unknown, port: number): number {
  if (!Array.isArray(ports)) return port;
  for (const p of ports) {
    if (!isObj(p) || p['PrivatePort'] !== port) continue;
    if (p['Type'] !== undefined && p['Type'] !== 'tcp') continue;
    const pub = p['PublicPort'];
    const ip = typeof p['IP'] === 'string' ? p['IP'] : '';
    // Published on loopback only: a balancer on another node could not reach it.
    if (typeof pub === 'number' && Number.isInteger(pub) && pub > 0 && pub < 65536 && !ip.startsWith('127.') && ip !== '::1') return pub;
  }
  // Unpublished: only right with --network host, which the list does not always say (Podman's
  // does not), so the port is taken as is and the health check (run against the node's
  // address, where balancers connect) keeps an unreachable one out.
  return port;
}

/**
 * One entry of `GET /containers/json?all=true` → what it offers. `stopping`: ids whose stop was
 * announced by a `kill` event (Docker keeps such a container "running" until it exits).
 */
export function readContainer(raw: unknown, stopping: ReadonlySet<string> = new Set()): ContainerReading {
  if (!isObj(raw) || !isObj(raw['Labels']) || raw['Labels'][SERVICE_LABEL] === undefined) return { kind: 'ignored' };
  const id = typeof raw['Id'] === 'string' ? raw['Id'] : '';
  const names = Array.isArray(raw['Names']) ? raw['Names'] : [];
  const container = typeof names[0] === 'string' ? names[0].replace(/^\//, '') : id.slice(0, 12);
  const invalid = (error: string): ContainerReading => ({ kind: 'invalid', id, container: container || '?', error });
  if (id === '') return invalid('the engine listed it without an Id');
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw['Labels'])) if (typeof v === 'string' && k.startsWith(LABEL_PREFIX)) labels[k] = v;
  // A misspelt label would silently fall back to a default (a check turned off, a wrong port).
  const unknown = Object.keys(labels).filter((k) => !KNOWN_LABELS.has(k));
  if (unknown.length > 0) return invalid(`unknown label(s) ${unknown.join(', ')} (known: ${[...KNOWN_LABELS].join(', ')})`);
  const name = (labels[SERVICE_LABEL] ?? '').trim();
  if (!isValidServiceName(name)) return invalid(`label ${SERVICE_LABEL}=${JSON.stringify(labels[SERVICE_LABEL])}: expected a service name (letters, digits, "_", "-", "."; up to ${MAX_SERVICE_NAME_LENGTH} characters, starting with a letter or digit)`);
  try {
    if (labels['kodama.port'] === undefined) throw new Error('label kodama.port is required: the port the service listens on');
    const port = intLabel(labels, 'kodama.port', 1, 65535, 0);
    const protocol = (labels['kodama.protocol'] ?? 'http').trim();
    if (protocol !== 'http' && protocol !== 'tcp') throw new Error(`label kodama.protocol=${JSON.stringify(protocol)}: expected "http" or "tcp"`);
    const weight = intLabel(labels, 'kodama.weight', 0, MAX_WEIGHT, DEFAULT_WEIGHT);
    const checks = checkFrom(labels);
    const state = typeof raw['State'] === 'string' ? raw['State'] : '';
    const phase: ContainerPhase = state === 'running' ? (stopping.has(id) ? 'stopping' : 'running') : state === 'stopping' ? 'stopping' : 'gone';
    const created = typeof raw['Created'] === 'number' ? raw['Created'] : 0;
    const spec: ServiceSpec = { name, port: reachablePort(raw['Ports'], port), protocol, weight, tags: [`container=${container}`], checks };
    return { kind: 'service', service: { id, container, created, phase, spec } };
  } catch (e) {
    return invalid((e as Error).message);
  }
}

/** Signals that end a container: its stop has begun (Docker's `kill` event carries the number or name). */
const ENDING_SIGNALS = new Set(['2', '3', '9', '15', 'INT', 'QUIT', 'KILL', 'TERM', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGTERM']);

export interface EngineEvent {
  /** A container of ours changed: list again. */
  relist: boolean;
  /** A `kill` with an ending signal: this container is stopping. */
  stoppingId?: string;
}

/** One line of the `/events` stream → what to do about it (undefined: not about our containers). */
export function readEvent(raw: unknown): EngineEvent | undefined {
  if (!isObj(raw) || raw['Type'] !== 'container' || !isObj(raw['Actor'])) return undefined;
  const attrs = isObj(raw['Actor']['Attributes']) ? raw['Actor']['Attributes'] : {};
  if (attrs[SERVICE_LABEL] === undefined) return undefined;
  const id = raw['Actor']['ID'];
  const action = typeof raw['Action'] === 'string' ? raw['Action'] : '';
  const signal = attrs['signal'];
  if (action === 'kill' && typeof id === 'string' && typeof signal === 'string' && ENDING_SIGNALS.has(signal.toUpperCase())) return { relist: true, stoppingId: id };
  return { relist: true };
}

/**
 * What this node advertises from its containers: one service per name (the `s:<name>` tag is
 * one per node). A name configured in `services` is the config's; of several containers with
 * one name, a running one beats a stopping one, then the oldest wins. `shadowed` says who lost
 * (the caller logs each once).
 */
export function chooseServices(found: readonly ContainerService[], configured: ReadonlySet<string>): { chosen: ContainerService[]; shadowed: { service: ContainerService; by: string }[] } {
  const byName = new Map<string, ContainerService[]>();
  for (const c of found) {
    if (c.phase === 'gone') continue;
    byName.set(c.spec.name, [...(byName.get(c.spec.name) ?? []), c]);
  }
  const chosen: ContainerService[] = [];
  const shadowed: { service: ContainerService; by: string }[] = [];
  for (const [name, list] of [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    list.sort((a, b) => (a.phase === b.phase ? a.created - b.created || (a.id < b.id ? -1 : 1) : a.phase === 'running' ? -1 : 1));
    if (configured.has(name)) {
      for (const c of list) shadowed.push({ service: c, by: 'the services config' });
      continue;
    }
    chosen.push(list[0]!);
    for (const c of list.slice(1)) shadowed.push({ service: c, by: `container ${list[0]!.container}` });
  }
  return { chosen, shadowed };
}
