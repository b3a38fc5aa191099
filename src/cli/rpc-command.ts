// The frame every RPC-speaking command shares (as serf's CLI): flag parsing with -rpc-addr and
// -rpc-auth (flag > KODAMA_RPC_* > SERF_RPC_* > default), help on -h, usage errors with the
// help text, connecting, and turning RPC failures into one line that says what to do next.

import { RpcClient, RpcError } from '../rpc/index.ts';
import { SerfError } from '../serf/errors.ts';
import { parseTag } from '../serf/tags.ts';
import { CliError, parseFlags } from './flags.ts';
import type { FlagSpec, ParsedFlags } from './flags.ts';
import type { CliIo, Command } from './io.ts';

export const RPC_FLAGS: FlagSpec[] = [
  { name: 'rpc-addr', kind: 'string' },
  { name: 'rpc-auth', kind: 'string' },
];

export const RPC_HELP = `  -rpc-addr=127.0.0.1:7373  RPC address of the agent (env KODAMA_RPC_ADDR, then
                            SERF_RPC_ADDR).
  -rpc-auth=""              RPC auth token of the agent (env KODAMA_RPC_AUTH,
                            then SERF_RPC_AUTH).`;

export function rpcAddrFrom(flag: string | undefined, env: CliIo['env']): string {
  return flag ?? env['KODAMA_RPC_ADDR'] ?? env['SERF_RPC_ADDR'] ?? '127.0.0.1:7373';
}

export function rpcAuthFrom(flag: string | undefined, env: CliIo['env']): string {
  return flag ?? env['KODAMA_RPC_AUTH'] ?? env['SERF_RPC_AUTH'] ?? '';
}

/** A usage mistake found after flag parsing: printed with the help text, exit 1. */
export function usage(message: string): CliError {
  return new CliError('ERR_CLI_USAGE', message);
}

/** One line for an RPC failure, with the hint the error kind calls for. */
export function describeRpcError(e: unknown): string {
  if (e instanceof RpcError) {
    if (e.code === 'ERR_RPC_AUTH' && !/-rpc-auth/.test(e.message)) {
      return `${e.message} (pass the right token with -rpc-auth or KODAMA_RPC_AUTH)`;
    }
    return e.message;
  }
  return (e as Error).message;
}

export interface RpcCommandSpec<T> {
  name: string;
  synopsis: string;
  help: string;
  flags: FlagSpec[];
  /** Validate flags and positionals before connecting; throw `usage(…)` for mistakes. */
  parse(f: ParsedFlags, io: CliIo): T;
  /** Talk to the agent; returns the exit code. Errors thrown here are reported as `<failure>: …`. */
  exec(client: RpcClient, opts: T, io: CliIo): Promise<number>;
  /** Prefix for an RPC error escaping exec, as serf words it (e.g. "Error sending event"). */
  failure: string;
  /**
   * Per-request timeout; default RpcClient's 10 s. Commands whose answer legitimately waits on the
   * cluster (leave's broadcast and propagate delay, joins to slow hosts, key queries) take longer.
   */
  timeoutMs?: number;
}

export function rpcCommand<T>(spec: RpcCommandSpec<T>): Command {
  const run = async (args: string[], io: CliIo): Promise<number> => {
    let opts: T;
    let addr: string;
    let auth: string;
    try {
      const f = parseFlags(args, [...spec.flags, ...RPC_FLAGS]);
      opts = spec.parse(f, io);
      addr = rpcAddrFrom(f.strings.get('rpc-addr'), io.env);
      auth = rpcAuthFrom(f.strings.get('rpc-auth'), io.env);
    } catch (e) {
      if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
        io.stdout(spec.help);
        return 0;
      }
      if (e instanceof CliError || e instanceof SerfError) {
        io.stderr(`${e.message}\n\n${spec.help}`);
        return 1;
      }
      throw e;
    }
    let client: RpcClient;
    try {
      client = await RpcClient.connect(addr, {
        ...(auth === '' ? {} : { authKey: auth }),
        ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }),
      });
    } catch (e) {
      io.stderr(`Error connecting to agent: ${describeRpcError(e)}\n`);
      return 1;
    }
    try {
      return await spec.exec(client, opts, io);
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      io.stderr(`${spec.failure}: ${describeRpcError(e)}\n`);
      return 1;
    } finally {
      client.close();
    }
  };
  return { synopsis: spec.synopsis, help: spec.help, flags: [...spec.flags, ...RPC_FLAGS], run };
}

/** Go strconv.Atoi-ish for small non-negative flag values. */
export function intFlag(f: ParsedFlags, name: string, dflt: number): number {
  const s = f.strings.get(name);
  if (s === undefined) return dflt;
  if (!/^[+-]?\d+$/.test(s)) throw usage(`invalid value "${s}" for flag -${name}: parse error`);
  return Number(s);
}

/**
 * The member filter of -role and -tag key=regexp (repeatable), as serf's `members -tag` reads it:
 * tag → regexp, anchored by the agent. kodama keeps -role first-class (serf deprecated it for
 * -tag role=…): acting on "all web servers" is what roles are for.
 */
export function tagFilterFrom(f: ParsedFlags): Record<string, string> {
  const tags: Record<string, string> = {};
  const role = f.strings.get('role');
  if (role !== undefined) tags['role'] = role;
  for (const kv of f.lists.get('tag') ?? []) {
    const [k, v] = parseTag(kv);
    tags[k] = v;
  }
  return tags;
}
