// `kodama exec --role web -- <command…>`: runs a command on every matching node (through the
// local agent's RPC, as `kodama-exec` queries), streams each node's output as `node: line`, then
// a summary table (node, exit, duration). Exit 0 only if every node ran it and exited 0.

import type { RpcClient } from '../rpc/index.ts';
import { ExecError } from '../exec/errors.ts';
import { resolveTargets, runOnNodes } from '../exec/client.ts';
import type { ExecNodeResult } from '../exec/types.ts';
import type { ParsedFlags } from './flags.ts';
import type { CliIo } from './io.ts';
import { positiveDurationFlag } from './duration.ts';
import { columnize } from './columnize.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama exec [options] -- <command…>

  Runs a shell command (sh -c) on every node matching the filters and streams
  each node's output as "<node>: <line>", then prints a summary (node, exit,
  duration). Nodes run it only if their agent enabled exec (-enable-exec), the
  cluster is encrypted (-encrypt) and the token matches; a node with an
  allow-list (exec.allow) runs only the commands it lists. Every run is logged
  on the node. Refusals are listed per node with what to do.

Options:

  -role=NAME                Only nodes with tag role=NAME.
  -node=NAME                Only this node (repeatable).
  -token=TOKEN              The exec token (default: env KODAMA_EXEC_TOKEN).
  -timeout=60s              Kill the command on a node after this long (the
                            node's own exec timeout caps it).
  -lost-after=10s           A node that does not answer for this long is "lost".
${RPC_HELP}

Exit status: 0 when every node exited 0; 1 otherwise (refused, lost, non-zero
exit) or on errors.
`;

export interface ExecCliOptions {
  role: string | undefined;
  nodes: string[];
  token: string;
  timeoutMs: number | undefined;
  lostAfterMs: number;
  command: string;
}

export function tokenFrom(f: ParsedFlags, io: CliIo): string {
  const token = f.strings.get('token') ?? io.env['KODAMA_EXEC_TOKEN'] ?? '';
  if (token === '') throw usage('an exec token is required: pass -token <token> or set KODAMA_EXEC_TOKEN (the token of the nodes\' exec config)');
  return token;
}

export function commandFrom(f: ParsedFlags): string {
  const cmd = f.positional.join(' ').trim();
  if (cmd === '') throw usage('no command given: put it after --, e.g. kodama exec -role web -- uptime');
  return cmd;
}

/** Prints `node: line` per complete line as bytes arrive; flush() at a node's end. */
export class LineStreamer {
  private readonly partial = new Map<string, Buffer>();
  constructor(private readonly write: (text: string) => void) {}
  push(node: string, bytes: Uint8Array): void {
    let buf = Buffer.concat([this.partial.get(node) ?? Buffer.alloc(0), Buffer.from(bytes)]);
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
      this.write(`${node}: ${buf.subarray(0, nl).toString('utf8')}\n`);
      buf = buf.subarray(nl + 1);
    }
    this.partial.set(node, buf);
  }
  flush(node: string): void {
    const rest = this.partial.get(node);
    if (rest !== undefined && rest.length > 0) this.write(`${node}: ${rest.toString('utf8')}\n`);
    this.partial.delete(node);
  }
}

export function outcomeOf(r: ExecNodeResult): string {
  if (r.refused !== undefined) return r.lost === true ? `lost (${r.refused.code})` : `refused (${r.refused.code})`;
  if (r.lost === true) return 'lost (no answer)';
  if (r.exitCode !== null) return String(r.exitCode);
  return `killed (${r.signal ?? 'signal'})`;
}

export function summaryTable(results: readonly ExecNodeResult[]): string {
  const rows = [['NODE', 'EXIT', 'DURATION']];
  for (const r of results) rows.push([r.node, outcomeOf(r), r.lost === true || r.refused !== undefined ? '-' : `${(r.durationMs / 1000).toFixed(1)}s`]);
  return `${columnize(rows)}\n`;
}

/** Refusal / loss explanations, one per node, after the table. */
export function problems(results: readonly ExecNodeResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    if (r.refused !== undefined) out.push(`${r.node}: ${r.refused.code}: ${r.refused.message}`);
    else if (r.lost === true) out.push(`${r.node}: lost: no answer (failed, or not a kodama agent: serf agents do not run exec)`);
  }
  return out;
}

export async function execRun(client: RpcClient, o: ExecCliOptions, io: CliIo): Promise<number> {
  let results: ExecNodeResult[];
  try {
    const targets = await resolveTargets(client, { ...(o.role !== undefined ? { role: o.role } : {}), nodes: o.nodes });
    const lines = new LineStreamer((t) => io.stdout(t));
    const interrupt = io.interrupt?.();
    results = await runOnNodes(client, targets, {
      token: o.token,
      command: o.command,
      lostAfterMs: o.lostAfterMs,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(interrupt !== undefined ? { interrupt } : {}),
      onOutput: (node, bytes) => lines.push(node, bytes),
      onResult: (r) => lines.flush(r.node),
    });
  } catch (e) {
    if (e instanceof ExecError) {
      io.stderr(`Error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  io.stdout(`\n${summaryTable(results)}`);
  const why = problems(results);
  if (why.length > 0) io.stderr(`${why.join('\n')}\n`);
  const ok = results.filter((r) => r.exitCode === 0).length;
  io.stdout(`${ok}/${results.length} nodes exited 0\n`);
  return ok === results.length ? 0 : 1;
}

export const execCommand = rpcCommand<ExecCliOptions>({
  name: 'exec',
  synopsis: 'Runs a command on every node of a role',
  help,
  failure: 'Error running exec',
  flags: [
    { name: 'role', kind: 'string' },
    { name: 'node', kind: 'list' },
    { name: 'token', kind: 'string' },
    { name: 'timeout', kind: 'string' },
    { name: 'lost-after', kind: 'string' },
  ],
  parse(f, io) {
    const nodes = f.lists.get('node') ?? [];
    const role = f.strings.get('role');
    if (role === undefined && nodes.length === 0) throw usage('say where to run: -role NAME and/or -node NAME (every node: kodama members lists the roles)');
    return {
      role,
      nodes,
      token: tokenFrom(f, io),
      timeoutMs: positiveDurationFlag(f, 'timeout'),
      lostAfterMs: positiveDurationFlag(f, 'lost-after') ?? 10_000,
      command: commandFrom(f),
    };
  },
  exec: execRun,
});
