// Field readers for the nested sections of the agent config (`services`, `checks`,
// `monitoring`, …): each one validates one key of a JSON object and fails with
// AgentError('ERR_AGENT_CONFIG') naming where the key is and what would be accepted.
import { AgentError } from './errors.ts';

export type Obj = Record<string, unknown>;

export function configFail(where: string, msg: string): never {
  throw new AgentError('ERR_AGENT_CONFIG', `${where}: ${msg}`);
}

/** The valid name nearest to a misspelt one (edit distance ≤ 2, or a prefix), for "did you mean". */
export function nearest(word: string, valid: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = v.startsWith(word) || word.startsWith(v) ? Math.min(1, Math.abs(v.length - word.length)) + 0.5 : editDistance(word, v);
    if (d < bestD) {
      bestD = d;
      best = v;
    }
  }
  return bestD <= 2 ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? (prev[j - 2] ?? 0) : Infinity;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1), swap);
    }
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Unknown keys are errors: a typo must not silently turn a check or a service off. */
export function checkKeys(o: Obj, allowed: ReadonlySet<string>, where: string): void {
  const unknown = Object.keys(o).filter((k) => !allowed.has(k)).sort();
  if (unknown.length > 0) {
    const named = unknown.map((k) => {
      const near = nearest(k, allowed);
      return near !== undefined ? `'${k}' (did you mean '${near}'?)` : `'${k}'`;
    });
    configFail(where, `unknown key(s) ${named.join(', ')} (allowed: ${[...allowed].join(', ')})`);
  }
}

export function intIn(o: Obj, key: string, where: string, min: number, max: number, dflt: number): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    configFail(where, `'${key}' expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** A duration string ("500ms", "10s") of at least `minMs`; undefined when the key is absent. */
export function durationField(o: Obj, key: string, where: string, minMs: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') configFail(where, `'${key}' expected a duration string such as "500ms" or "10s", got ${JSON.stringify(v)}`);
  const ms = parseDuration(v, `${where}: '${key}'`);
  if (ms < minMs) configFail(where, `'${key}' must be at least ${minMs}ms, got "${v}"`);
  return ms;
}

/** A Go duration ("500ms", "1m30s", "0"), as serf's flags and config take them, in milliseconds. */
export function parseDuration(s: string, what: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (s === '0') return 0;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) throw new AgentError('ERR_AGENT_CONFIG', `${what}: invalid duration "${s}" (use e.g. 500ms, 30s, 5m)`);
    total += Number(m[1]) * (unit[m[2]!] ?? 0);
    pos = re.lastIndex;
  }
  if (pos === 0) throw new AgentError('ERR_AGENT_CONFIG', `${what}: invalid duration "${s}" (use e.g. 500ms, 30s, 5m)`);
  return total;
}
