// The agent's configuration from three sources, as `serf agent` reads it plus 12-factor env vars:
//
//   JSON files (-config-file, -config-dir: every *.json in lexical order, serf's keys;
//   an unknown key is an error)  <  KODAMA_* environment variables  <  command-line flags
//
// Merging follows serf's MergeConfig: a later source overrides scalars it sets, tags merge key by
// key (the later value wins), and the lists (start_join, retry_join, event_handlers) append.
// Pure functions over already-read text, except readConfigPaths(), which reads the files.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from './errors.ts';
import { nearest, parseDuration } from './config-fields.ts';
import { parseBalancerSpec } from '../discovery/balancer-config.ts';
import { parseContainersSpec, parseServiceSpecs } from '../discovery/service-config.ts';
import type { BalancerSpec, ContainersSpec, ServiceSpec } from '../discovery/types.ts';
import { findDuplicateCheck, parseCheckSpecs, parseMonitoringSpec, validateCheckHandlers } from '../checks/config.ts';
import type { MonitorCheckSpec, MonitoringSpec } from '../checks/types.ts';
import { parseExecSpec } from '../exec/config.ts';
import type { ExecSpec } from '../exec/types.ts';
import { checkHttpConfig } from '../http/auth.ts';

export { parseDuration };

export interface AgentConfig {
  nodeName?: string;
  role?: string;
  tags?: Record<string, string>;
  tagsFile?: string;
  bind?: string;
  advertise?: string;
  encryptKey?: string;
  keyringFile?: string;
  logLevel?: string;
  rpcAddr?: string;
  rpcAuth?: string;
  protocol?: number;
  replayOnJoin?: boolean;
  queryResponseSizeLimit?: number;
  querySizeLimit?: number;
  userEventSizeLimit?: number;
  startJoin?: string[];
  eventHandlers?: string[];
  profile?: string;
  snapshotPath?: string;
  /** kodama's default is true (serf's is false): a terminated instance should leave, not fail. */
  leaveOnTerminate?: boolean;
  skipLeaveOnInterrupt?: boolean;
  reconnectIntervalMs?: number;
  reconnectTimeoutMs?: number;
  tombstoneTimeoutMs?: number;
  maxQueueDepth?: number;
  minQueueDepth?: number;
  retryJoin?: string[];
  retryMaxAttempts?: number;
  retryIntervalMs?: number;
  rejoinAfterLeave?: boolean;
  enableCompression?: boolean;
  broadcastTimeoutMs?: number;
  disableCoordinates?: boolean;
  disableNameResolution?: boolean;
  /** serf's enable_syslog / -syslog: log lines also go to the local syslog. */
  enableSyslog?: boolean;
  /** serf's syslog_facility / -syslog-facility (default LOCAL0). */
  syslogFacility?: string;
  /** serf's statsd_addr / statsite_addr (kodama also takes -statsd / -statsite). */
  statsdAddr?: string;
  statsiteAddr?: string;
  /** serf's discover / -discover: find peers on the local link by mDNS under this cluster name. */
  discover?: string;
  /** serf's interface / -iface: bind to this interface's address; also the -discover interface. */
  iface?: string;
  /** kodama: log_json / -log-json: one JSON object per log line instead of serf's text lines. */
  logJson?: boolean;
  /** kodama: give kodama's own queries and user events (kodama-*) to handlers and streams too. */
  showInternalEvents?: boolean;
  /** kodama: services this node offers (list; appends across files like start_join). */
  services?: ServiceSpec[];
  /** kodama: services of local containers (a later file's object replaces an earlier one). */
  containers?: ContainersSpec;
  /** kodama: -containers-socket / KODAMA_CONTAINERS_SOCKET (sets or overrides `containers.socket`). */
  containersSocket?: string;
  /** kodama: how long `,drain` is gossiped before the Serf leave. */
  leaveDrainMs?: number;
  /** kodama: metrics_interval / -metrics-interval (default 10s; 0 = no sampling). */
  metricsIntervalMs?: number;
  /** kodama: metrics_history (default 1h). */
  metricsHistoryMs?: number;
  /** kodama: run the load-balancer role (a later file's object replaces an earlier one). */
  balancer?: BalancerSpec;
  /** kodama: monitoring checks (list; appends across files like start_join). */
  checks?: MonitorCheckSpec[];
  /** kodama: this node is a monitor (a later file's object replaces an earlier one). */
  monitoring?: MonitoringSpec;
  /**
   * kodama: the `exec` section as written (a later file's object replaces an earlier one). It is
   * parsed into an ExecSpec only in resolveConfig, after -enable-exec / -exec-token /
   * KODAMA_EXEC_TOKEN are laid over it: a file may enable exec and leave the token to the env.
   */
  execRaw?: Record<string, unknown>;
  /** kodama: -enable-exec. */
  execEnabled?: boolean;
  /** kodama: -exec-token / KODAMA_EXEC_TOKEN (overrides the section's token). */
  execToken?: string;
  /** kodama: where deploys persist their state (data_dir, -data-dir, KODAMA_DATA_DIR). */
  dataDir?: string;
  /** kodama: HTTP API and dashboard `host:port` (http_addr, -http-addr, KODAMA_HTTP_ADDR); unset = off. */
  httpAddr?: string;
  /** kodama: token the HTTP API requires (http_token, -http-token, KODAMA_HTTP_TOKEN); required off loopback. */
  httpToken?: string;
}

/** serf's defaults (DefaultConfig), with kodama's leave_on_terminate = true. */
export const DEFAULT_CONFIG: Readonly<Required<Pick<AgentConfig,
  'bind' | 'logLevel' | 'rpcAddr' | 'protocol' | 'profile' | 'retryIntervalMs' | 'broadcastTimeoutMs' |
  'queryResponseSizeLimit' | 'querySizeLimit' | 'userEventSizeLimit' | 'leaveOnTerminate' |
  'skipLeaveOnInterrupt' | 'enableCompression' | 'retryMaxAttempts' | 'replayOnJoin' | 'rejoinAfterLeave'>>> = {
  bind: '0.0.0.0:7946',
  logLevel: 'info',
  rpcAddr: '127.0.0.1:7373',
  protocol: 5,
  profile: 'lan',
  retryIntervalMs: 30_000,
  broadcastTimeoutMs: 5_000,
  queryResponseSizeLimit: 1024,
  querySizeLimit: 1024,
  userEventSizeLimit: 512,
  leaveOnTerminate: true,
  skipLeaveOnInterrupt: false,
  enableCompression: true,
  retryMaxAttempts: 0,
  replayOnJoin: false,
  rejoinAfterLeave: false,
};

/** serf clamps these (with a warning) rather than failing. */
export const MIN_RETRY_INTERVAL_MS = 1000;
export const MIN_BROADCAST_TIMEOUT_MS = 1000;

type Kind = 'string' | 'int' | 'bool' | 'list' | 'tags' | 'duration' | 'services' | 'containers' | 'balancer' | 'checks' | 'monitoring' | 'exec';
interface KeySpec { field: keyof AgentConfig; kind: Kind }

/** serf's JSON keys (mapstructure tags in serf's config.go) → our fields. */
const JSON_KEYS: Record<string, KeySpec> = {
  node_name: { field: 'nodeName', kind: 'string' },
  role: { field: 'role', kind: 'string' },
  disable_coordinates: { field: 'disableCoordinates', kind: 'bool' },
  tags: { field: 'tags', kind: 'tags' },
  tags_file: { field: 'tagsFile', kind: 'string' },
  bind: { field: 'bind', kind: 'string' },
  advertise: { field: 'advertise', kind: 'string' },
  encrypt_key: { field: 'encryptKey', kind: 'string' },
  keyring_file: { field: 'keyringFile', kind: 'string' },
  log_level: { field: 'logLevel', kind: 'string' },
  rpc_addr: { field: 'rpcAddr', kind: 'string' },
  rpc_auth: { field: 'rpcAuth', kind: 'string' },
  protocol: { field: 'protocol', kind: 'int' },
  replay_on_join: { field: 'replayOnJoin', kind: 'bool' },
  query_response_size_limit: { field: 'queryResponseSizeLimit', kind: 'int' },
  query_size_limit: { field: 'querySizeLimit', kind: 'int' },
  user_event_size_limit: { field: 'userEventSizeLimit', kind: 'int' },
  start_join: { field: 'startJoin', kind: 'list' },
  event_handlers: { field: 'eventHandlers', kind: 'list' },
  profile: { field: 'profile', kind: 'string' },
  snapshot_path: { field: 'snapshotPath', kind: 'string' },
  leave_on_terminate: { field: 'leaveOnTerminate', kind: 'bool' },
  skip_leave_on_interrupt: { field: 'skipLeaveOnInterrupt', kind: 'bool' },
  reconnect_interval: { field: 'reconnectIntervalMs', kind: 'duration' },
  reconnect_timeout: { field: 'reconnectTimeoutMs', kind: 'duration' },
  tombstone_timeout: { field: 'tombstoneTimeoutMs', kind: 'duration' },
  max_queue_depth: { field: 'maxQueueDepth', kind: 'int' },
  min_queue_depth: { field: 'minQueueDepth', kind: 'int' },
  disable_name_resolution: { field: 'disableNameResolution', kind: 'bool' },
  retry_join: { field: 'retryJoin', kind: 'list' },
  retry_max_attempts: { field: 'retryMaxAttempts', kind: 'int' },
  retry_interval: { field: 'retryIntervalMs', kind: 'duration' },
  rejoin_after_leave: { field: 'rejoinAfterLeave', kind: 'bool' },
  enable_compression: { field: 'enableCompression', kind: 'bool' },
  broadcast_timeout: { field: 'broadcastTimeoutMs', kind: 'duration' },
  show_internal_events: { field: 'showInternalEvents', kind: 'bool' },
  enable_syslog: { field: 'enableSyslog', kind: 'bool' },
  syslog_facility: { field: 'syslogFacility', kind: 'string' },
  log_json: { field: 'logJson', kind: 'bool' },
  statsd_addr: { field: 'statsdAddr', kind: 'string' },
  statsite_addr: { field: 'statsiteAddr', kind: 'string' },
  discover: { field: 'discover', kind: 'string' },
  interface: { field: 'iface', kind: 'string' },
  // kodama's performance history (operations by role)
  metrics_interval: { field: 'metricsIntervalMs', kind: 'duration' },
  metrics_history: { field: 'metricsHistoryMs', kind: 'duration' },
  // kodama's traffic wiring (not serf keys)
  services: { field: 'services', kind: 'services' },
  containers: { field: 'containers', kind: 'containers' },
  leave_drain: { field: 'leaveDrainMs', kind: 'duration' },
  balancer: { field: 'balancer', kind: 'balancer' },
  // kodama's monitoring
  checks: { field: 'checks', kind: 'checks' },
  monitoring: { field: 'monitoring', kind: 'monitoring' },
  // kodama's deploys and actions by role
  exec: { field: 'execRaw', kind: 'exec' },
  data_dir: { field: 'dataDir', kind: 'string' },
  http_addr: { field: 'httpAddr', kind: 'string' },
  http_token: { field: 'httpToken', kind: 'string' },
};

/** KODAMA_* variables → serf JSON keys (so they share the JSON decoder's checks). */
const ENV_KEYS: Record<string, string> = {
  KODAMA_NODE: 'node_name',
  KODAMA_ROLE: 'role',
  KODAMA_BIND: 'bind',
  KODAMA_ADVERTISE: 'advertise',
  KODAMA_ENCRYPT: 'encrypt_key',
  KODAMA_KEYRING_FILE: 'keyring_file',
  KODAMA_TAGS_FILE: 'tags_file',
  KODAMA_LOG_LEVEL: 'log_level',
  KODAMA_LOG_JSON: 'log_json',
  KODAMA_RPC_ADDR: 'rpc_addr',
  KODAMA_RPC_AUTH: 'rpc_auth',
  KODAMA_PROTOCOL: 'protocol',
  KODAMA_PROFILE: 'profile',
  KODAMA_SNAPSHOT: 'snapshot_path',
  KODAMA_REPLAY: 'replay_on_join',
  KODAMA_REJOIN: 'rejoin_after_leave',
  KODAMA_LEAVE_ON_TERMINATE: 'leave_on_terminate',
  KODAMA_SKIP_LEAVE_ON_INTERRUPT: 'skip_leave_on_interrupt',
  KODAMA_RETRY_MAX: 'retry_max_attempts',
  KODAMA_RETRY_INTERVAL: 'retry_interval',
  KODAMA_BROADCAST_TIMEOUT: 'broadcast_timeout',
  KODAMA_RECONNECT_INTERVAL: 'reconnect_interval',
  KODAMA_RECONNECT_TIMEOUT: 'reconnect_timeout',
  KODAMA_TOMBSTONE_TIMEOUT: 'tombstone_timeout',
  KODAMA_LEAVE_DRAIN: 'leave_drain',
  KODAMA_DATA_DIR: 'data_dir',
  KODAMA_METRICS_INTERVAL: 'metrics_interval',
  KODAMA_HTTP_ADDR: 'http_addr',
  KODAMA_HTTP_TOKEN: 'http_token',
  // Lists: comma separated (addresses contain no commas).
  KODAMA_JOIN: 'start_join',
  KODAMA_RETRY_JOIN: 'retry_join',
  // key=value pairs, comma separated.
  KODAMA_TAGS: 'tags',
  // Handler specs contain commas (`member-join,member-leave=script`): one per line.
  KODAMA_EVENT_HANDLERS: 'event_handlers',
};

/** Not a config file key: the exec token overrides the `exec` section's token. */
const ENV_EXEC_TOKEN = 'KODAMA_EXEC_TOKEN';
/** Not a config file key either: the engine socket, with or without a `containers` section. */
const ENV_CONTAINERS_SOCKET = 'KODAMA_CONTAINERS_SOCKET';

/** The env var names kodama reads, for --help. */
export const ENV_VARS: readonly string[] = [...Object.keys(ENV_KEYS), ENV_EXEC_TOKEN, ENV_CONTAINERS_SOCKET];

export interface Decoded {
  config: AgentConfig;
  warnings: string[];
}

/** Go time.ParseDuration's usual subset; a bare number of seconds is refused, as Go does. */
/** serf's UnmarshalTags: `key=value`, key non-empty, value may contain '='. */
export function parseTagPairs(pairs: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new AgentError('ERR_AGENT_CONFIG', `${what}: Invalid tag: '${p}' (expected key=value)`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

function setField(cfg: AgentConfig, spec: KeySpec, key: string, v: unknown, source: string): void {
  const bad = (want: string): never => {
    throw new AgentError('ERR_AGENT_CONFIG', `${source}: '${key}' expected ${want}, got ${JSON.stringify(v)}`);
  };
  const rec = cfg as Record<string, unknown>;
  switch (spec.kind) {
    case 'string':
      if (typeof v !== 'string') bad('a string');
      rec[spec.field] = v;
      break;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) bad('an integer');
      rec[spec.field] = v;
      break;
    case 'bool':
      if (typeof v !== 'boolean') bad('true or false');
      rec[spec.field] = v;
      break;
    case 'duration':
      if (typeof v !== 'string') bad('a duration string such as "30s"');
      rec[spec.field] = parseDuration(v as string, `${source}: '${key}'`);
      break;
    case 'list':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad('a list of strings');
      rec[spec.field] = [...(v as string[])];
      break;
    case 'tags': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('an object of string values');
      const tags: Record<string, string> = {};
      for (const [k, tv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof tv !== 'string') bad('an object of string values');
        tags[k] = tv as string;
      }
      rec[spec.field] = tags;
      break;
    }
    case 'services':
      rec[spec.field] = parseServiceSpecs(v, source);
      break;
    case 'containers':
      rec[spec.field] = parseContainersSpec(v, source);
      break;
    case 'balancer':
      rec[spec.field] = parseBalancerSpec(v, source);
      break;
    case 'checks':
      rec[spec.field] = parseCheckSpecs(v, source);
      break;
    case 'monitoring':
      rec[spec.field] = parseMonitoringSpec(v, source);
      break;
    case 'exec': {
      // Everything but "enabled without a token" is checked here, where the file is known; that
      // rule waits for resolveConfig (the token may come from the env or a flag).
      const early = typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Record<string, unknown>)['enabled'] === 'boolean'
        ? { ...(v as Record<string, unknown>), enabled: false }
        : v;
      parseExecSpec(early, source);
      rec[spec.field] = { ...(v as Record<string, unknown>) };
      break;
    }
  }
}

/** A decoded document, or the files merged, with every problem found (empty: valid). */
export interface Checked extends Decoded {
  problems: string[];
}

/**
 * Where JSON.parse stopped, as `line L, column C` with the line and a caret under the column:
 * "position 45" alone sends the reader counting characters.
 */
export function jsonErrorAt(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  const reason = message.replace(/\s*\(line \d+ column \d+\)\s*$/, '').replace(/\s*in JSON at position \d+$/, '');
  const pos = m !== null ? Number(m[1]) : /Unexpected end of JSON input/.test(message) ? text.length : -1;
  if (pos < 0) return reason;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  const lineText = text.split('\n')[line - 1] ?? '';
  // JSON allows no comma before `}` or `]`: the parser stops at the bracket, a line late.
  const comma = /,\s*$/.exec(before);
  const hint = comma !== null && /^[}\]]/.test(text.slice(pos)) ? ` (a comma after the last entry, line ${before.slice(0, comma.index).split('\n').length}? JSON allows none)` : '';
  return `line ${line}, column ${col}: ${reason}${hint}\n    ${lineText}\n    ${' '.repeat(Math.max(0, col - 1))}^`;
}

/**
 * Decode one serf JSON config document, collecting every problem (one per top-level key at most:
 * a section stops at its first mistake). Unknown keys are an error, as in serf.
 */
export function checkConfigJson(text: string, source: string): Checked {
  const config: AgentConfig = {};
  const warnings: string[] = [];
  const problems: string[] = [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    problems.push(`Error decoding '${source}': ${jsonErrorAt(text, (e as Error).message)}`);
    return { config, warnings, problems };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`Error decoding '${source}': expected a JSON object`);
    return { config, warnings, problems };
  }
  const unknown: string[] = [];
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    const spec = Object.hasOwn(JSON_KEYS, key) ? JSON_KEYS[key] : undefined;
    if (spec !== undefined) {
      try {
        setField(config, spec, key, v, `Error decoding '${source}'`);
      } catch (e) {
        if (!(e instanceof AgentError)) throw e;
        problems.push(e.message);
      }
    } else unknown.push(key);
  }
  if (unknown.length > 0) {
    const hints = unknown.sort().map((k) => {
      const near = nearest(k, Object.keys(JSON_KEYS));
      return near !== undefined ? `${k} (did you mean ${near}?)` : k;
    });
    problems.push(`Error decoding '${source}': Config has invalid keys: ${hints.join(', ')}`);
  }
  return { config, warnings, problems };
}

/** Decode one serf JSON config document; every problem found is in the one error thrown. */
export function decodeConfigJson(text: string, source: string): Decoded {
  const c = checkConfigJson(text, source);
  if (c.problems.length > 0) throw new AgentError('ERR_AGENT_CONFIG', c.problems.join('\n'));
  return { config: c.config, warnings: c.warnings };
}

/** serf's MergeConfig: b's scalars win, tags merge, lists append. */
export function mergeConfig(a: AgentConfig, b: AgentConfig): AgentConfig {
  const out: AgentConfig = { ...a };
  const rec = out as Record<string, unknown>;
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    if (k === 'tags') out.tags = { ...(a.tags ?? {}), ...(v as Record<string, string>) };
    else if (Array.isArray(v)) rec[k] = [...((a as Record<string, unknown>)[k] as string[] | undefined ?? []), ...v];
    else rec[k] = v;
  }
  return out;
}

/** Read -config-file / -config-dir paths in order (a directory: its *.json files, sorted), collecting every problem. */
export function checkConfigPaths(paths: readonly string[]): Checked & { files: string[] } {
  let config: AgentConfig = {};
  const warnings: string[] = [];
  const problems: string[] = [];
  const files: string[] = [];
  const one = (file: string): void => {
    files.push(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push(`Error reading '${file}': ${(e as Error).message}`);
      return;
    }
    const d = checkConfigJson(text, file);
    config = mergeConfig(config, d.config);
    warnings.push(...d.warnings);
    problems.push(...d.problems);
  };
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      problems.push(`Error reading '${p}': ${(e as Error).message}`);
      continue;
    }
    if (!isDir) {
      one(p);
      continue;
    }
    const names = readdirSync(p).filter((n) => n.endsWith('.json')).sort();
    for (const n of names) {
      const sub = join(p, n);
      if (statSync(sub).isDirectory()) continue; // serf does not recurse
      one(sub);
    }
  }
  return { config, warnings, problems, files };
}

/** Read -config-file / -config-dir paths in order; every problem found is in the one error thrown. */
export function readConfigPaths(paths: readonly string[]): Decoded {
  const c = checkConfigPaths(paths);
  if (c.problems.length > 0) throw new AgentError('ERR_AGENT_CONFIG', c.problems.join('\n'));
  return { config: c.config, warnings: c.warnings };
}

/** KODAMA_* variables; empty ones are ignored (unset-by-emptying is the 12-factor habit). */
export function configFromEnv(env: Record<string, string | undefined>): Decoded {
  const raw: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const text = env[name];
    if (text === undefined || text.trim() === '') continue;
    const spec = JSON_KEYS[key]!;
    switch (spec.kind) {
      case 'int':
        if (!/^-?\d+$/.test(text.trim())) throw new AgentError('ERR_AGENT_CONFIG', `${name}: expected an integer, got "${text}"`);
        raw[key] = Number(text.trim());
        break;
      case 'bool': {
        const t = text.trim().toLowerCase();
        if (t === 'true' || t === '1' || t === 'yes') raw[key] = true;
        else if (t === 'false' || t === '0' || t === 'no') raw[key] = false;
        else throw new AgentError('ERR_AGENT_CONFIG', `${name}: expected true or false, got "${text}"`);
        break;
      }
      case 'list':
        raw[key] = text.split(name === 'KODAMA_EVENT_HANDLERS' ? '\n' : ',').map((s) => s.trim()).filter((s) => s !== '');
        break;
      case 'tags':
        raw[key] = parseTagPairs(text.split(',').map((s) => s.trim()).filter((s) => s !== ''), name);
        break;
      default:
        raw[key] = text.trim();
    }
  }
  const d = decodeConfigJson(JSON.stringify(raw), 'environment');
  const token = env[ENV_EXEC_TOKEN];
  if (token !== undefined && token.trim() !== '') d.config.execToken = token.trim();
  const socket = env[ENV_CONTAINERS_SOCKET];
  if (socket !== undefined && socket.trim() !== '') d.config.containersSocket = socket.trim();
  return d;
}

/** The final configuration: defaults, then files, env and flags; then serf's sanity rules. */
export interface ResolvedConfig extends AgentConfig {
  nodeName: string;
  tags: Record<string, string>;
  bind: string;
  logLevel: string;
  rpcAddr: string;
  protocol: number;
  profile: string;
  startJoin: string[];
  retryJoin: string[];
  eventHandlers: string[];
  retryIntervalMs: number;
  retryMaxAttempts: number;
  broadcastTimeoutMs: number;
  leaveOnTerminate: boolean;
  skipLeaveOnInterrupt: boolean;
  enableCompression: boolean;
  replayOnJoin: boolean;
  rejoinAfterLeave: boolean;
  /** The exec section with the flags/env laid over it; undefined = never mentioned (disabled). */
  exec?: ExecSpec;
}

export function resolveConfig(layers: readonly AgentConfig[], defaultNodeName: string): Decoded & { config: ResolvedConfig } {
  let c: AgentConfig = { ...DEFAULT_CONFIG };
  for (const l of layers) c = mergeConfig(c, l);
  const warnings: string[] = [];
  const tags = { ...(c.tags ?? {}) };
  if (c.role !== undefined && c.role !== '') {
    warnings.push("Deprecation warning: 'Role' has been replaced with 'Tags'");
    tags['role'] = c.role;
  }
  let retryIntervalMs = c.retryIntervalMs ?? DEFAULT_CONFIG.retryIntervalMs;
  if (retryIntervalMs < MIN_RETRY_INTERVAL_MS) {
    retryIntervalMs = MIN_RETRY_INTERVAL_MS;
    warnings.push("Warning: 'RetryInterval' is too low. Setting to 1s");
  }
  let broadcastTimeoutMs = c.broadcastTimeoutMs ?? DEFAULT_CONFIG.broadcastTimeoutMs;
  if (broadcastTimeoutMs < MIN_BROADCAST_TIMEOUT_MS) {
    broadcastTimeoutMs = MIN_BROADCAST_TIMEOUT_MS;
    warnings.push("Warning: 'BroadcastTimeout' is too low. Setting to 1s");
  }
  if (c.rejoinAfterLeave === true && (c.snapshotPath ?? '') === '') {
    warnings.push("Warning: 'RejoinAfterLeave' enabled without snapshot file");
  }
  if (c.profile !== undefined && !['lan', 'wan', 'local'].includes(c.profile)) {
    throw new AgentError('ERR_AGENT_CONFIG', `Unknown profile: ${c.profile} (use lan, wan or local)`);
  }
  if ((c.retryMaxAttempts ?? 0) < 0) throw new AgentError('ERR_AGENT_CONFIG', 'retry_max_attempts must not be negative');
  // `services` lists append across files: the same service twice is a mistake to point out.
  const names = (c.services ?? []).map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) {
    throw new AgentError('ERR_AGENT_CONFIG', `service "${dup}" is defined in more than one config file: keep one definition`);
  }
  const dupCheck = findDuplicateCheck(c.checks ?? []);
  if (dupCheck !== undefined) {
    throw new AgentError('ERR_AGENT_CONFIG', `check "${dupCheck}" is defined in more than one config file: keep one definition`);
  }
  // Handler names are checked only where handlers are defined: a plain node's checks may name
  // handlers that only the monitor nodes configure.
  if (c.monitoring !== undefined) validateCheckHandlers(c.checks ?? [], c.monitoring);
  // A non-loopback API without a token is refused here, with how to set one.
  if (c.httpAddr !== undefined && c.httpAddr !== '') checkHttpConfig(c.httpAddr, c.httpToken);
  let exec: ExecSpec | undefined;
  if (c.execRaw !== undefined || c.execEnabled !== undefined || c.execToken !== undefined) {
    exec = parseExecSpec(
      {
        ...(c.execRaw ?? {}),
        ...(c.execEnabled !== undefined ? { enabled: c.execEnabled } : {}),
        ...(c.execToken !== undefined ? { token: c.execToken } : {}),
      },
      'configuration',
    );
  }
  // -containers-socket / KODAMA_CONTAINERS_SOCKET: a socket alone turns the watcher on; over a
  // file's section it replaces only the socket (the section's poll stays).
  let containers = c.containers;
  if (c.containersSocket !== undefined) {
    containers = parseContainersSpec({ socket: c.containersSocket }, '-containers-socket');
    if (c.containers !== undefined) containers = { ...c.containers, socket: containers.socket };
  }
  const config: ResolvedConfig = {
    ...DEFAULT_CONFIG,
    ...c,
    ...(containers !== undefined ? { containers } : {}),
    nodeName: c.nodeName !== undefined && c.nodeName !== '' ? c.nodeName : defaultNodeName,
    tags,
    startJoin: c.startJoin ?? [],
    retryJoin: c.retryJoin ?? [],
    eventHandlers: c.eventHandlers ?? [],
    retryIntervalMs,
    broadcastTimeoutMs,
    ...(exec !== undefined ? { exec } : {}),
  };
  return { config, warnings };
}
