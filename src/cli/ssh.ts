// `kodama ssh -role web [-- CMD…]`: the operator's own ssh to every alive member of a role, found
// through the local agent. With CMD: run it on each (bounded parallel), every output line
// prefixed with the node's name, then a summary of exit codes (exit 1 if any failed). Without:
// a tmux window with a pane per member and synchronized input. src/ops/ssh.ts does the spawning.

import { spawn } from 'node:child_process';
import { RpcError } from '../rpc/index.ts';
import type { RpcClient } from '../rpc/index.ts';
import { sshTarget } from '../ops/inventory.ts';
import type { SshDefaults, SshTarget } from '../ops/inventory.ts';
import { openTmuxWindow, runOverSsh } from '../ops/ssh.ts';
import type { SshResult } from '../ops/ssh.ts';
import type { CliIo, Command } from './io.ts';
import { columnize } from './columnize.ts';
import { LineStreamer } from './exec.ts';
import { RPC_HELP, intFlag, rpcCommand, tagFilterFrom, usage } from './rpc-command.ts';

const help = `Usage: kodama ssh [options] [-- <command…>]

  Runs a command over ssh on every alive member matching the filters, in
  parallel, each output line prefixed "<node>: " (stderr to stderr), then a
  summary (node, exit, duration, why ssh failed). Without a command, opens a
  tmux window with one pane per member and synchronized input: what you type
  goes to every member (inside tmux a new window; outside, a new session,
  attached when this is a terminal).

  Each member is reached at its cluster address; port and user come from its
  ssh_port / ssh_user tags, else -port / -user, else your ssh config. Commands
  run with BatchMode=yes (no password prompts in parallel) unless you pass
  -o BatchMode=no.

Options:

  -role=<regexp>            Only members whose role tag matches (anchored).
  -tag <key>=<regexp>       Only members with a matching tag (repeatable).
  -node=NAME                Only this member (repeatable).
  -port=N                   ssh port where a member has no ssh_port tag.
  -user=NAME                ssh user where a member has no ssh_user tag.
  -i=FILE                   Identity file, passed to ssh.
  -o=OPTION                 An ssh option (-o StrictHostKeyChecking=no),
                            repeatable, passed to ssh.
  -parallel=16              At most this many ssh sessions at once.
  -ssh=ssh                  The ssh client to run.
${RPC_HELP}

Exit status: 0 when every member's command exited 0; 1 otherwise (ssh could
not connect: exit 255, or the command failed) or on errors.
`;

interface SshCliOptions {
  tags: Record<string, string>;
  nodes: string[];
  defaults: SshDefaults;
  sshArgs: string[];
  ssh: string;
  parallel: number;
  command: string[] | undefined;
}

/** The alive members to reach, and the matching ones that are not (named, not tried). */
export async function sshTargets(client: RpcClient, o: Pick<SshCliOptions, 'tags' | 'nodes' | 'defaults'>): Promise<{ targets: SshTarget[]; skipped: string[] }> {
  const members = (await client.membersFiltered({ tags: o.tags })).filter((m) => o.nodes.length === 0 || o.nodes.includes(m.name));
  for (const n of o.nodes) {
    if (!members.some((m) => m.name === n)) throw new Error(`no member named ${n} matches (see kodama members)`);
  }
  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const alive = members.filter((m) => m.status === 'alive').sort(byName);
  const skipped = members.filter((m) => m.status === 'failed' || m.status === 'leaving').sort(byName).map((m) => `${m.name} (${m.status})`);
  if (alive.length === 0) {
    const what = [...Object.entries(o.tags).map(([k, v]) => `${k}=${v}`), ...o.nodes].join(', ');
    throw new Error(`no alive member matches ${what === '' ? 'the filters' : what} (see kodama members)`);
  }
  return { targets: alive.map((m) => sshTarget(m, o.defaults)), skipped };
}

function outcome(r: SshResult): string {
  if (r.exitCode === 255) return '255 (ssh failed)';
  if (r.exitCode !== null) return String(r.exitCode);
  if (r.signal !== null) return `killed (${r.signal})`;
  return 'not run';
}

export function sshSummary(results: readonly SshResult[]): string {
  const rows = [['NODE', 'EXIT', 'DURATION']];
  for (const r of results) rows.push([r.node, outcome(r), `${(r.durationMs / 1000).toFixed(1)}s`]);
  const why = results.filter((r) => r.exitCode !== 0 && r.lastError !== undefined).map((r) => `${r.node}: ${r.lastError}`);
  const ok = results.filter((r) => r.exitCode === 0).length;
  return `${columnize(rows)}\n${why.length > 0 ? `${why.join('\n')}\n` : ''}${ok}/${results.length} nodes exited 0\n`;
}

async function runCommand(o: SshCliOptions, command: string[], targets: SshTarget[], io: CliIo): Promise<number> {
  const out = new LineStreamer((t) => io.stdout(t));
  const err = new LineStreamer((t) => io.stderr(t));
  const interrupt = io.interrupt?.();
  const results = await runOverSsh(targets, command, {
    ssh: o.ssh,
    sshArgs: o.sshArgs,
    env: io.env,
    parallel: o.parallel,
    onOutput: (node, stream, bytes) => (stream === 'stdout' ? out : err).push(node, bytes),
    onResult: (r) => {
      out.flush(r.node);
      err.flush(r.node);
    },
    ...(interrupt !== undefined ? { signal: interrupt } : {}),
  });
  io.stdout(`\n${sshSummary(results)}`);
  return results.every((r) => r.exitCode === 0) ? 0 : 1;
}

async function openPanes(o: SshCliOptions, targets: SshTarget[], io: CliIo): Promise<number> {
  const inside = (io.env['TMUX'] ?? '') !== '';
  const name = o.tags['role'] ?? 'kodama';
  const w = await openTmuxWindow(targets, { name, inside, ssh: o.ssh, sshArgs: o.sshArgs, env: io.env });
  io.stdout(`tmux: ${w.panes.length} panes in window ${name} (session ${w.session}), input synchronized: ${w.panes.map((p) => p.node).join(', ')}\n`);
  if (inside) return 0;
  if (io.interactive !== true) {
    io.stdout(`attach with: tmux attach -t ${w.session}\n`);
    return 0;
  }
  return new Promise((resolve) => {
    const child = spawn('tmux', ['attach', '-t', w.session], { stdio: 'inherit', env: io.env });
    child.once('error', () => resolve(1));
    child.once('close', (code) => resolve(code ?? 1));
  });
}

export const sshCommand: Command = rpcCommand<SshCliOptions>({
  name: 'ssh',
  synopsis: 'Runs a command over ssh on every member of a role, or opens tmux panes to them',
  help,
  failure: 'Error reading members',
  flags: [
    { name: 'role', kind: 'string' },
    { name: 'tag', kind: 'list' },
    { name: 'node', kind: 'list' },
    { name: 'port', kind: 'string' },
    { name: 'user', kind: 'string' },
    { name: 'i', kind: 'string' },
    { name: 'o', kind: 'list' },
    { name: 'parallel', kind: 'string' },
    { name: 'ssh', kind: 'string' },
  ],
  parse(f) {
    const tags = tagFilterFrom(f);
    const nodes = f.lists.get('node') ?? [];
    if (Object.keys(tags).length === 0 && nodes.length === 0) throw usage('say where to go: -role NAME, -tag KEY=VALUE and/or -node NAME (kodama members lists them)');
    const port = f.strings.has('port') ? intFlag(f, 'port', 0) : undefined;
    if (port !== undefined && (port < 1 || port > 65535)) throw usage(`invalid -port ${port}: a TCP port is 1-65535`);
    const parallel = intFlag(f, 'parallel', 16);
    if (parallel < 1) throw usage(`invalid -parallel ${parallel}: at least 1`);
    const sshArgs: string[] = [];
    const identity = f.strings.get('i');
    if (identity !== undefined) sshArgs.push('-i', identity);
    for (const opt of f.lists.get('o') ?? []) sshArgs.push('-o', opt);
    const command = f.positional.length > 0 ? [...f.positional] : undefined;
    return { tags, nodes, defaults: { port, user: f.strings.get('user') }, sshArgs, ssh: f.strings.get('ssh') ?? 'ssh', parallel, command };
  },
  async exec(client, o, io) {
    let found: { targets: SshTarget[]; skipped: string[] };
    try {
      found = await sshTargets(client, o);
    } catch (e) {
      if (!(e instanceof Error) || e instanceof RpcError) throw e;
      io.stderr(`Error: ${e.message}\n`);
      return 1;
    }
    client.close();
    if (found.skipped.length > 0) io.stderr(`not reached (not alive): ${found.skipped.join(', ')}\n`);
    if (o.command !== undefined) return runCommand(o, o.command, found.targets, io);
    try {
      return await openPanes(o, found.targets, io);
    } catch (e) {
      io.stderr(`Error: ${(e as Error).message}\n`);
      return 1;
    }
  },
});
