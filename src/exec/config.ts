// The agent config's `exec` section (and what -enable-exec / -exec-token / KODAMA_EXEC_TOKEN fill in):
//
//   "exec": { "enabled": true, "token": "s3cret", "allow": ["systemctl restart web", "uptime*"],
//             "timeout": "10m", "max_output": "1MiB" }
//
// Off by default: a node runs nothing for anyone unless its operator said so. Enabled without a
// token is a config error rather than "anyone may run anything": the token is the only thing
// that tells a caller allowed to run commands from any member of the cluster.
import { checkKeys, configFail as fail, durationField, isObj } from '../agent/config-fields.ts';
import type { ExecSpec } from './types.ts';

export const EXEC_DEFAULTS = {
  timeoutMs: 10 * 60_000,
  maxOutputBytes: 1024 * 1024,
} as const;

/** The spec of a node that did not enable exec: it answers every request with a refusal. */
export const DISABLED_EXEC: ExecSpec = Object.freeze({
  enabled: false,
  token: '',
  allow: Object.freeze([]) as unknown as string[],
  timeoutMs: EXEC_DEFAULTS.timeoutMs,
  maxOutputBytes: EXEC_DEFAULTS.maxOutputBytes,
});

const EXEC_KEYS = new Set(['enabled', 'token', 'allow', 'timeout', 'max_output']);
/** Output is kept in memory per run: beyond this a config is surely a mistake. */
const MAX_OUTPUT_LIMIT = 64 * 1024 * 1024;
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 * 1024, mb: 1_000_000, mib: 1024 * 1024 };

export const TOKEN_HINT =
  'set a token with "exec": {"token": "…"} in the config file, -exec-token <token> or the environment variable KODAMA_EXEC_TOKEN';

function parseSize(v: unknown, where: string): number {
  let n: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(v);
    const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
    if (m !== null && unit !== undefined) n = Number(m[1]) * unit;
  }
  if (n === undefined || n < 1024 || n > MAX_OUTPUT_LIMIT) {
    fail(where, `'max_output' expected a size from 1KiB to 64MiB such as 1048576 or "1MiB", got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Validate the `exec` section. `source` names where it came from (a file path, "flags") so the
 * error points there. Throws AgentError('ERR_AGENT_CONFIG').
 */
export function parseExecSpec(raw: unknown, source: string): ExecSpec {
  const where = `${source}: exec`;
  if (raw === undefined || raw === null) return DISABLED_EXEC;
  if (!isObj(raw)) fail(where, `expected an object such as {"enabled": true, "token": "…"}, got ${JSON.stringify(raw)}`);
  checkKeys(raw, EXEC_KEYS, where);
  const enabled = raw['enabled'] ?? false;
  if (typeof enabled !== 'boolean') fail(where, `'enabled' expected true or false, got ${JSON.stringify(enabled)}`);
  const token = raw['token'] ?? '';
  if (typeof token !== 'string') fail(where, `'token' expected a string, got ${JSON.stringify(token)}`);
  if (token.trim() !== token) fail(where, "'token' must not start or end with white space (copy-paste mistake?)");
  const allowRaw = raw['allow'] ?? [];
  if (!Array.isArray(allowRaw) || !allowRaw.every((x) => typeof x === 'string' && x.trim() !== '')) {
    fail(where, `'allow' expected a list of command patterns such as ["systemctl restart web", "uptime*"], got ${JSON.stringify(allowRaw)}`);
  }
  const timeoutMs = durationField(raw, 'timeout', where, 100) ?? EXEC_DEFAULTS.timeoutMs;
  const maxOutputBytes = raw['max_output'] === undefined ? EXEC_DEFAULTS.maxOutputBytes : parseSize(raw['max_output'], where);
  if (enabled && token === '') fail(where, `exec is enabled without a token: ${TOKEN_HINT}`);
  return { enabled, token, allow: [...(allowRaw as string[])], timeoutMs, maxOutputBytes };
}

/** Whole-command glob match: `*` is any run of characters, everything else literal. */
export function commandAllowed(allow: readonly string[], command: string): boolean {
  if (allow.length === 0) return true;
  return allow.some((pattern) => globToRegExp(pattern).test(command));
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`, 's');
}
