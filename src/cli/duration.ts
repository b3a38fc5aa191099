// Go time.ParseDuration's common subset (`500ms`, `5s`, `1m30s`), for flags serf takes as
// durations.

import { CliError } from './flags.ts';
import type { ParsedFlags } from './flags.ts';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  if (s === '0') return 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) throw new CliError('ERR_CLI_USAGE', `invalid duration "${s}"`);
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
    pos = re.lastIndex;
  }
  if (pos === 0) throw new CliError('ERR_CLI_USAGE', `invalid duration "${s}"`);
  return total;
}

/** A flag that must be a positive duration (`-timeout 30s`); undefined when not given. */
export function positiveDurationFlag(f: ParsedFlags, name: string): number | undefined {
  const s = f.strings.get(name);
  if (s === undefined) return undefined;
  const ms = parseDurationMs(s);
  if (ms <= 0) throw new CliError('ERR_CLI_USAGE', `-${name} must be a positive duration such as 30s`);
  return ms;
}
