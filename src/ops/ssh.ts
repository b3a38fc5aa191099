// ssh to a role's members with the operator's own ssh client: run one command on each in
// parallel (bounded), or open a tmux window with a pane per member and synchronized input.
// The member list comes from the caller (src/cli/ssh.ts reads it from the agent); this file
// only spawns `ssh` and `tmux`.

import { spawn } from 'node:child_process';
import type { SshTarget } from './inventory.ts';

export interface SshOptions {
  /** The ssh client (default `ssh`). */
  ssh?: string;
  /** Options for ssh before ours (`-o K=V`, `-i key`, …): ssh keeps the first value it reads. */
  sshArgs?: readonly string[];
  /** The environment ssh and tmux run with (default: this process's). */
  env?: Record<string, string | undefined>;
}

/**
 * ssh's argv for one target: the caller's options first (they win), then the port and user the
 * member's tags or the flags give, then `--` so that nothing after it reads as an option.
 * A command run in parallel cannot answer a password prompt: BatchMode unless the caller said.
 */
export function sshArgv(t: SshTarget, o: SshOptions, command: readonly string[] | undefined): string[] {
  const argv = [...(o.sshArgs ?? [])];
  if (t.port !== undefined) argv.push('-p', String(t.port));
  if (t.user !== undefined) argv.push('-l', t.user);
  if (command !== undefined) argv.push('-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-T');
  else argv.push('-t');
  argv.push('--', t.host, ...(command ?? []));
  return argv;
}

export interface SshResult {
  node: string;
  /** ssh's exit code: the remote command's, or 255 when ssh itself failed. */
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** ssh's last line on stderr when it failed (why it could not connect, say). */
  lastError: string | undefined;
}

export interface RunOptions extends SshOptions {
  /** At most this many ssh processes at once. */
  parallel: number;
  onOutput(node: string, stream: 'stdout' | 'stderr', bytes: Uint8Array): void;
  onResult?(r: SshResult): void;
  /** Aborting kills every ssh still running (SIGTERM). */
  signal?: AbortSignal;
}

/** Runs `command` on every target, `parallel` at a time; results in target order. */
export async function runOverSsh(targets: readonly SshTarget[], command: readonly string[], o: RunOptions): Promise<SshResult[]> {
  const results: SshResult[] = new Array<SshResult>(targets.length);
  let next = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const t = targets[i]!;
      const started = Date.now();
      let errTail = '';
      const child = spawn(o.ssh ?? 'ssh', sshArgv(t, o, command), { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
      const kill = (): void => void child.kill('SIGTERM');
      o.signal?.addEventListener('abort', kill, { once: true });
      child.stdout.on('data', (b: Buffer) => o.onOutput(t.node, 'stdout', b));
      child.stderr.on('data', (b: Buffer) => {
        errTail = (errTail + b.toString('utf8')).slice(-2000);
        o.onOutput(t.node, 'stderr', b);
      });
      const finish = (code: number | null, sig: string | null, spawnError?: string): void => {
        o.signal?.removeEventListener('abort', kill);
        const lines = errTail.split('\n').map((l) => l.trim()).filter((l) => l !== '');
        const r: SshResult = {
          node: t.node,
          exitCode: code,
          signal: sig,
          durationMs: Date.now() - started,
          lastError: spawnError ?? (code === 0 ? undefined : lines[lines.length - 1]),
        };
        results[i] = r;
        o.onResult?.(r);
        resolve();
      };
      child.once('error', (e) => finish(null, null, `could not run ${o.ssh ?? 'ssh'}: ${e.message} (install openssh-client, or pass -ssh PATH)`));
      child.once('close', (code, sig) => finish(code, sig));
    });
  const worker = async (): Promise<void> => {
    while (next < targets.length && o.signal?.aborted !== true) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel, targets.length)) }, worker));
  for (let i = 0; i < targets.length; i++) {
    results[i] ??= { node: targets[i]!.node, exitCode: null, signal: null, durationMs: 0, lastError: 'not started (interrupted)' };
  }
  return results;
}

/**
 * The shell each pane runs: ssh to the member, and when ssh ends say how and wait for Enter,
 * so that a pane whose ssh failed at once stays to say why.
 */
const PANE_SCRIPT = '"$0" "$@"; s=$?; echo; echo "[kodama: ssh to $KODAMA_NODE ended with exit $s - press Enter to close]"; read _';

export interface TmuxPlanOptions extends SshOptions {
  /** The window's name (the role). */
  name: string;
  /** Inside tmux ($TMUX set): a new window there; else a new detached session. */
  inside: boolean;
}

/** One pane's command: sh running PANE_SCRIPT ($0 the ssh client, then its argv); tmux execs it, no quoting. */
export function paneCommand(t: SshTarget, o: SshOptions): string[] {
  return ['env', `KODAMA_NODE=${t.node}`, 'sh', '-c', PANE_SCRIPT, o.ssh ?? 'ssh', ...sshArgv(t, o, undefined)];
}

export interface TmuxRunResult {
  /** The session the window is in (to attach to from outside tmux). */
  session: string;
  window: string;
  panes: { node: string; pane: string }[];
}

export type TmuxRunner = (args: string[]) => Promise<string>;

/** Runs `tmux args…` (finding its server through env's TMUX / TMUX_TMPDIR), resolving with its stdout; rejects with tmux's own message. */
export const tmuxRunner =
  (env: Record<string, string | undefined> = process.env): TmuxRunner =>
  (args) =>
  new Promise((resolve, reject) => {
    const child = spawn('tmux', args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.once('error', (e) => reject(new Error(`could not run tmux: ${e.message} (install tmux)`)));
    child.once('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`tmux ${args[0]}: ${err.trim() || `exit ${code}`}`))));
  });

/**
 * A window with one pane per target (tiled, each titled with its node's name) and synchronized
 * input: what is typed goes to every member.
 */
export async function openTmuxWindow(targets: readonly SshTarget[], o: TmuxPlanOptions, tmux: TmuxRunner = tmuxRunner(o.env)): Promise<TmuxRunResult> {
  const [first, ...rest] = targets;
  if (first === undefined) throw new Error('no member to open a pane for');
  const fmt = '#{session_name} #{window_id} #{pane_id}';
  const opened = o.inside
    ? await tmux(['new-window', '-P', '-F', fmt, '-n', o.name, '--', ...paneCommand(first, o)])
    : await tmux(['new-session', '-d', '-x', '200', '-y', '50', '-P', '-F', fmt, '-n', o.name, '--', ...paneCommand(first, o)]);
  const [session, window, pane] = opened.split(' ');
  if (session === undefined || window === undefined || pane === undefined) throw new Error(`tmux said "${opened}" where it names the new window`);
  const panes = [{ node: first.node, pane }];
  for (const t of rest) {
    // Tiled after each split, so that the next split has room.
    const id = await tmux(['split-window', '-t', window, '-P', '-F', '#{pane_id}', '--', ...paneCommand(t, o)]);
    await tmux(['select-layout', '-t', window, 'tiled']);
    panes.push({ node: t.node, pane: id });
  }
  for (const p of panes) await tmux(['select-pane', '-t', p.pane, '-T', p.node]);
  await tmux(['set-window-option', '-t', window, 'pane-border-status', 'top']);
  await tmux(['set-window-option', '-t', window, 'pane-border-format', ' #{pane_title} ']);
  await tmux(['set-window-option', '-t', window, 'synchronize-panes', 'on']);
  await tmux(['select-pane', '-t', pane]);
  return { session, window, panes };
}
