// Go `flag`-style parsing, as serf's CLI does it: `-flag value`, `-flag=value`, `--flag` works
// like `-flag`; booleans take no separate value (`-flag` or `-flag=true`); repeatable flags
// collect every occurrence; parsing stops at `--` or the first non-flag argument.

import { nearest } from '../agent/config-fields.ts';

export class CliError extends Error {
  constructor(
    readonly code: 'ERR_CLI_USAGE' | 'ERR_CLI_HELP',
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export type FlagKind = 'string' | 'bool' | 'list';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
}

export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Set<string>;
  /** Every boolean given on the command line, with its last value (to tell `-x=false` from absent). */
  boolValues: Map<string, boolean>;
  lists: Map<string, string[]>;
  positional: string[];
}

const HELP = new Set(['h', 'help']);

/** Throws CliError ERR_CLI_HELP for -h/-help/--help, ERR_CLI_USAGE for anything malformed. */
export function parseFlags(args: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: ParsedFlags = { strings: new Map(), bools: new Set(), boolValues: new Map(), lists: new Map(), positional: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (HELP.has(name) && !byName.has(name)) throw new CliError('ERR_CLI_HELP', 'help requested');
    const spec = byName.get(name);
    if (spec === undefined || name === '') {
      const near = name === '' ? undefined : nearest(name, [...byName.keys()]);
      throw new CliError('ERR_CLI_USAGE', `flag provided but not defined: -${name}${near !== undefined ? ` (did you mean -${near}?)` : ''}`);
    }
    if (spec.kind === 'bool') {
      if (value === undefined || value === 'true' || value === '1') {
        out.bools.add(name);
        out.boolValues.set(name, true);
      } else if (value === 'false' || value === '0') {
        out.bools.delete(name);
        out.boolValues.set(name, false);
      } else throw new CliError('ERR_CLI_USAGE', `invalid boolean value "${value}" for -${name}`);
      continue;
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined) throw new CliError('ERR_CLI_USAGE', `flag needs an argument: -${name}`);
      value = next;
      i++;
    }
    if (spec.kind === 'list') {
      const list = out.lists.get(name) ?? [];
      list.push(value);
      out.lists.set(name, list);
    } else {
      out.strings.set(name, value);
    }
  }
  out.positional = args.slice(i);
  return out;
}
