// `kodama rolling --role web --batch 2 -- <command…>`: the command over a role in batches,
// each batch drained from the balancers first and back in rotation before the next (see
// src/exec/rolling.ts). Streams `node: line` output and progress lines; stops at the first
// failure and says which batch and node, and what state it left.

import type { RpcClient } from '../rpc/index.ts';
import { ExecError } from '../exec/errors.ts';
import { runRolling, undrainNodes } from '../exec/rolling.ts';
import type { RollingOptions } from '../exec/rolling.ts';
import type { CliIo } from './io.ts';
import { positiveDurationFlag } from './duration.ts';
import { commandFrom, LineStreamer, problems, summaryTable, tokenFrom } from './exec.ts';
import { intFlag, RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama rolling [options] -- <command…>

  Runs a shell command on every node of a role, a batch at a time, keeping the
  rest in rotation. Per batch: the nodes' services are drained (their s:* tags
  get ",drain"), kodama waits until no balancer (nodes with tag "lb") has them
  ready and none has requests in flight on them, runs the command (as kodama
  exec: needs -enable-exec, an encrypted cluster and the token), puts them back
  and waits until every balancer has them ready again. The first failure stops
  the run: it says which batch and node, and what it left (a node whose command
  failed stays drained until "kodama rolling -undrain -node NAME" puts it back).

Options:

  -role=NAME                Nodes with tag role=NAME (required unless -node).
  -node=NAME                Only this node (repeatable).
  -batch=1                  Nodes per batch.
  -service=NAME             The balanced service to drain (default: the role).
  -token=TOKEN              The exec token (default: env KODAMA_EXEC_TOKEN).
  -drain-timeout=30s        Longest wait for a batch to leave rotation;
                            requests still in flight after it are warned about,
                            a node still in rotation stops the run.
  -health-timeout=60s       Longest wait for a batch to be ready again
                            everywhere.
  -timeout=10m              Kill the command on a node after this long.
  -undrain                  Run nothing: put the matching nodes back in
                            rotation (after a stopped run) and wait until they
                            are ready.
${RPC_HELP}

Exit status: 0 when every batch is done; 1 otherwise.
`;

/** What the flags say: runRolling's options without the I/O callbacks, and -undrain. */
export type RollingCliOptions = Pick<
  RollingOptions,
  'role' | 'nodes' | 'service' | 'batch' | 'token' | 'command' | 'drainTimeoutMs' | 'healthTimeoutMs' | 'runTimeoutMs'
> & { undrain: boolean };

export async function rollingRun(client: RpcClient, o: RollingCliOptions, io: CliIo): Promise<number> {
  const lines = new LineStreamer((t) => io.stdout(t));
  const interrupt = io.interrupt?.();
  const { undrain, ...spec } = o;
  const common = {
    ...(interrupt !== undefined ? { interrupt } : {}),
    say: (line: string) => io.stdout(`==> ${line}\n`),
  };
  try {
    if (undrain) {
      const notBack = await undrainNodes(client, { ...spec, ...common });
      return notBack.length === 0 ? 0 : 1;
    }
    const r = await runRolling(client, {
      ...spec,
      ...common,
      onOutput: (node, bytes) => lines.push(node, bytes),
      onResult: (res) => lines.flush(res.node),
    });
    if (r.results.length > 0) io.stdout(`\n${summaryTable(r.results)}`);
    if (r.failure !== undefined) {
      const f = r.failure;
      const why = problems(r.results);
      if (why.length > 0) io.stderr(`${why.join('\n')}\n`);
      const rest = r.batches.slice(f.batch).flat();
      io.stderr(`rolling stopped at batch ${f.batch}/${r.batches.length} (${f.step}) on ${f.node}: ${f.reason}\n` +
        `${r.completed} batch(es) done${rest.length > 0 ? `; not run: ${rest.join(', ')}` : ''}\n`);
      return 1;
    }
    io.stdout(`rolling done: ${r.results.length} node(s) in ${r.batches.length} batch(es)\n`);
    return 0;
  } catch (e) {
    if (e instanceof ExecError) {
      io.stderr(`Error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export const rollingCommand = rpcCommand<RollingCliOptions>({
  name: 'rolling',
  synopsis: 'Runs a command over a role in batches, drained from the balancers',
  help,
  failure: 'Error running rolling',
  flags: [
    { name: 'role', kind: 'string' },
    { name: 'node', kind: 'list' },
    { name: 'batch', kind: 'string' },
    { name: 'service', kind: 'string' },
    { name: 'token', kind: 'string' },
    { name: 'drain-timeout', kind: 'string' },
    { name: 'health-timeout', kind: 'string' },
    { name: 'timeout', kind: 'string' },
    { name: 'undrain', kind: 'bool' },
  ],
  parse(f, io) {
    const nodes = f.lists.get('node') ?? [];
    const role = f.strings.get('role');
    if (role === undefined && nodes.length === 0) throw usage('say which nodes: -role NAME and/or -node NAME');
    const service = f.strings.get('service') ?? role;
    if (service === undefined) throw usage('-service is needed with -node alone (the balanced service to drain)');
    const batch = intFlag(f, 'batch', 1);
    if (batch < 1) throw usage('-batch must be at least 1');
    const undrain = f.bools.has('undrain');
    if (undrain && f.positional.length > 0) throw usage('-undrain runs nothing: drop the command');
    const runTimeoutMs = positiveDurationFlag(f, 'timeout');
    return {
      ...(role !== undefined ? { role } : {}),
      nodes,
      service,
      batch,
      token: tokenFrom(f, io),
      command: undrain ? '' : commandFrom(f),
      undrain,
      drainTimeoutMs: positiveDurationFlag(f, 'drain-timeout') ?? 30_000,
      healthTimeoutMs: positiveDurationFlag(f, 'health-timeout') ?? 60_000,
      ...(runTimeoutMs !== undefined ? { runTimeoutMs } : {}),
    };
  },
  exec: rollingRun,
});
