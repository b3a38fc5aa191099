// `kodama deploy blue-green|status|abort|rollback|route`: talks to the local agent's deploy
// coordinator (ops deploy.* of the RPC command `kodama`, src/deploy/runner.ts). blue-green
// starts a deploy and then follows it live (phase lines with figures) until it ends; the deploy
// itself runs in the agent, so Ctrl-C only stops watching.

import type { RpcClient } from '../rpc/index.ts';
import type { DeployState } from '../deploy/types.ts';
import { FINAL_PHASES } from '../deploy/types.ts';
import type { CliIo, Command } from './io.ts';
import { subcommandGroup } from './subcommands.ts';
import { parseDurationMs } from './duration.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';
import type { ParsedFlags } from './flags.ts';

/** How often a watching CLI asks for the deploy's state. */
export const WATCH_POLL_MS = 500;
/** Figures are printed again when they change, at most this often. */
const FIGURES_EVERY_MS = 2000;

const topHelp = `Usage: kodama deploy <subcommand> [options]

  Blue-green deploys of a service behind kodama's balancers. Nodes carry a
  colour tag (default "color"); a deploy checks the new colour, shifts every
  balancer to it (a cluster-wide, Lamport-ordered route), drains the old
  colour, bakes with health and error-rate gates, and rolls back on its own
  when a gate fails. The deploy runs in the agent you talk to (started with
  -data-dir), survives its restart, and is shown live here.

Subcommands:

    blue-green   Start a deploy and follow it until it ends
    status       Show the current (or last) deploy and the history
    abort        Stop the running deploy (before traffic moved: nothing
                 changes; after: it rolls back)
    rollback     Send all traffic back to the old colour (running or done)
    route        Set a service's traffic split by hand

Run "kodama deploy <subcommand> -help" for its options.
`;

const blueGreenHelp = `Usage: kodama deploy blue-green -service NAME -from COLOUR -to COLOUR [options]

  Starts a blue-green deploy on the agent and prints its progress until it
  ends. Exit 0 when done, 1 when rolled back, aborted or failed.

Options:

  -service=NAME             The service to deploy (required).
  -from=COLOUR              The colour serving now (required).
  -to=COLOUR                The colour to move to (required).
  -tag=color                The node tag that holds the colour.
  -expected=N               Healthy nodes of -to required (default: how many
                            -from nodes serve now, at least 1).
  -steps=100                Percentages on -to per step, ascending, ending
                            with 100 (e.g. 10,50,100).
  -check-bake=10s           How long -to must be healthy before traffic moves.
  -check-timeout=5m         Give up (nothing moved) if -to is not ready by then.
  -step-bake=30s            Bake between intermediate steps.
  -drain-timeout=60s        Longest wait for -from's in-flight requests.
  -bake=30s                 Final bake with the gates before done.
  -max-error-rate=0.01      Error-rate gate: errors/requests of -to.
  -min-requests=20          The error-rate gate judges after this many.
  -apply-timeout=30s        Longest wait for every balancer to apply a route.
  -detach                   Start it and return (follow with "kodama deploy
                            status").
${RPC_HELP}
`;

const statusHelp = `Usage: kodama deploy status [options]

  Shows the agent's current (or last) deploy: phase, figures, recent events,
  and the earlier deploys.

Options:

  -format=text|json         Output format (default text). JSON: {"current":
                            DeployState or null, "history": [DeployState]}.
${RPC_HELP}
`;

const abortHelp = `Usage: kodama deploy abort [options]

  Stops the running deploy. Before any traffic moved it ends "aborted" and
  nothing changes; afterwards it rolls back (all traffic to -from).

Options:

  -reason=TEXT              Why (kept in the deploy's history).
${RPC_HELP}
`;

const rollbackHelp = `Usage: kodama deploy rollback [options]

  Sends all of the service's traffic back to the deploy's -from colour, for
  a running deploy or one that is done. Waits until every balancer applied it.

Options:

  -reason=TEXT              Why (kept in the deploy's history).
${RPC_HELP}
`;

const routeHelp = `Usage: kodama deploy route -service NAME [options] VALUE=PERCENT ...

  Sets the service's traffic split by hand, e.g.
    kodama deploy route -service web blue=0 green=100
  A value not listed (or a node without the tag) gets 0 % (drained). With no
  VALUE=PERCENT at all the route is cleared (every healthy backend serves).
  A running deploy of the service stops ("superseded").

Options:

  -service=NAME             The service (required).
  -tag=color                The node tag the values refer to.
${RPC_HELP}
`;

const rpcTimeoutMs = 15_000;

function fmtTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

function figuresLine(s: DeployState): string {
  return Object.entries(s.figures)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

export function formatEvent(e: DeployState['events'][number]): string {
  return `${fmtTime(e.at)} ${e.phase.padEnd(12)} ${e.msg}`;
}

function isFinalPhase(p: string): boolean {
  return (FINAL_PHASES as readonly string[]).includes(p);
}

function asState(v: unknown): DeployState {
  return v as DeployState;
}

/** Print the deploy's new events and changed figures until it ends; returns the exit code. */
async function follow(client: RpcClient, id: string, io: CliIo, printedUpTo: DeployState['events'][number] | undefined): Promise<number> {
  const signal = io.interrupt?.();
  let lastPrinted = printedUpTo;
  let lastFigures = '';
  let lastFiguresAt = 0;
  for (;;) {
    let st: { current: DeployState | null };
    try {
      st = (await client.call('deploy.status', {})) as { current: DeployState | null };
    } catch (e) {
      // The deploy lives in the agent: losing the agent loses the view, not the deploy.
      io.stderr(`lost the agent while following deploy ${id}: ${(e as Error).message}\n` +
        'The deploy state is kept in the agent\'s data dir; once it runs again, "kodama deploy status" shows where it stands.\n');
      return 1;
    }
    const s = st.current;
    if (s === null || s.id !== id) {
      io.stderr(`deploy ${id} is no longer the agent's current deploy\n`);
      return 1;
    }
    // The state keeps only its last events: find the last one printed, print what follows it.
    const lp = lastPrinted;
    const idx = lp === undefined ? -1 : s.events.findLastIndex((e) => e.at === lp.at && e.msg === lp.msg);
    const fresh = idx >= 0 ? s.events.slice(idx + 1) : lp === undefined ? s.events : s.events.filter((e) => e.at >= lp.at);
    for (const e of fresh) io.stdout(`${formatEvent(e)}\n`);
    lastPrinted = s.events[s.events.length - 1] ?? lastPrinted;
    const figs = figuresLine(s);
    const now = Date.now();
    if (figs !== '' && figs !== lastFigures && now - lastFiguresAt >= FIGURES_EVERY_MS && !isFinalPhase(s.phase)) {
      io.stdout(`         ${s.phase.padEnd(12)} ${figs}\n`);
      lastFigures = figs;
      lastFiguresAt = now;
    }
    if (isFinalPhase(s.phase)) {
      io.stdout(`deploy ${s.id}: ${s.phase}${s.reason ? `: ${s.reason}` : ''}\n`);
      return s.phase === 'done' ? 0 : 1;
    }
    if (signal?.aborted) {
      io.stdout(`stopped watching; deploy ${s.id} goes on in the agent (kodama deploy status / abort)\n`);
      return 0;
    }
    await new Promise<void>((r) => {
      // One listener per wait, removed when the wait ends: a long follow must not pile them up.
      const wake = (): void => {
        clearTimeout(t);
        r();
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', wake);
        r();
      }, WATCH_POLL_MS);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }
}

function durFlag(f: ParsedFlags, name: string): number | undefined {
  const v = f.strings.get(name);
  if (v === undefined) return undefined;
  const ms = parseDurationMs(v);
  if (ms < 0) throw usage(`-${name} must not be negative`);
  return ms;
}

function numFlag(f: ParsedFlags, name: string, integer: boolean): number | undefined {
  const v = f.strings.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw usage(`invalid value "${v}" for flag -${name}`);
  return n;
}

const blueGreen = rpcCommand({
  name: 'deploy blue-green',
  synopsis: 'Start a blue-green deploy and follow it',
  help: blueGreenHelp,
  flags: [
    ...['service', 'from', 'to', 'tag', 'expected', 'steps', 'check-bake', 'check-timeout', 'step-bake', 'drain-timeout', 'bake', 'max-error-rate', 'min-requests', 'apply-timeout'].map(
      (name) => ({ name, kind: 'string' as const }),
    ),
    { name: 'detach', kind: 'bool' },
  ],
  failure: 'Error starting the deploy',
  timeoutMs: rpcTimeoutMs,
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const args: Record<string, unknown> = {};
    for (const k of ['service', 'from', 'to'] as const) {
      const v = f.strings.get(k);
      if (v === undefined || v === '') throw usage(`-${k} is required`);
      args[k] = v;
    }
    const tag = f.strings.get('tag');
    if (tag !== undefined) args['tag'] = tag;
    const steps = f.strings.get('steps');
    if (steps !== undefined) {
      const list = steps.split(',').map((x) => x.trim().replace(/%$/, ''));
      if (list.some((x) => !/^\d+$/.test(x))) throw usage(`-steps must be percentages like 10,50,100, got "${steps}"`);
      args['steps'] = list.map(Number);
    }
    const set = (key: string, v: number | undefined): void => {
      if (v !== undefined) args[key] = v;
    };
    set('expected', numFlag(f, 'expected', true));
    set('checkBakeMs', durFlag(f, 'check-bake'));
    set('checkTimeoutMs', durFlag(f, 'check-timeout'));
    set('stepBakeMs', durFlag(f, 'step-bake'));
    set('drainTimeoutMs', durFlag(f, 'drain-timeout'));
    set('bakeMs', durFlag(f, 'bake'));
    set('maxErrorRate', numFlag(f, 'max-error-rate', false));
    set('minRequests', numFlag(f, 'min-requests', true));
    set('applyTimeoutMs', durFlag(f, 'apply-timeout'));
    return { args, detach: f.bools.has('detach') };
  },
  exec: async (client, o, io) => {
    const s = asState(await client.call('deploy.start', o.args));
    io.stdout(`deploy ${s.id}: ${s.spec.service} ${s.spec.from} → ${s.spec.to} (tag ${s.spec.tag}, expected ${s.spec.expected}, steps ${s.spec.steps.join(',')}) on ${s.coordinator}\n`);
    if (o.detach) return 0;
    return follow(client, s.id, io, undefined);
  },
});

const status = rpcCommand({
  name: 'deploy status',
  synopsis: 'Show the current deploy',
  help: statusHelp,
  flags: [{ name: 'format', kind: 'string' }],
  failure: 'Error reading the deploy status',
  timeoutMs: rpcTimeoutMs,
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`-format must be text or json, got "${format}"`);
    return { format };
  },
  exec: async (client, o, io) => {
    const st = (await client.call('deploy.status', {})) as { current: DeployState | null; history: DeployState[] };
    if (o.format === 'json') {
      io.stdout(`${JSON.stringify(st, null, 2)}\n`);
      return 0;
    }
    const s = st.current;
    if (s === null) {
      io.stdout('No deploy on this agent yet (kodama deploy blue-green starts one).\n');
      return 0;
    }
    io.stdout(
      `Deploy ${s.id}\n  service ${s.spec.service}: ${s.spec.from} → ${s.spec.to} (tag ${s.spec.tag}, expected ${s.spec.expected}, steps ${s.spec.steps.join(',')})\n` +
        `  phase   ${s.phase}${s.step >= 0 ? ` (step ${s.step + 1}/${s.spec.steps.length}: ${s.spec.steps[s.step]}%)` : ''} since ${fmtTime(s.phaseSince)}\n` +
        (s.reason ? `  reason  ${s.reason}\n` : '') +
        (Object.keys(s.figures).length > 0 ? `  figures ${figuresLine(s)}\n` : '') +
        `  route   ltime ${s.routeLTime}\n  events:\n` +
        s.events.slice(-15).map((e) => `    ${formatEvent(e)}\n`).join(''),
    );
    if (st.history.length > 0) {
      io.stdout('History:\n');
      for (const h of st.history.slice(-10).reverse()) io.stdout(`  ${fmtTime(h.startedAt)} ${h.id} ${h.spec.service} ${h.spec.from} → ${h.spec.to}: ${h.phase}${h.reason ? ` (${h.reason})` : ''}\n`);
    }
    return 0;
  },
});

function stopCommand(op: 'abort' | 'rollback', help: string, synopsis: string): Command {
  return rpcCommand({
    name: `deploy ${op}`,
    synopsis,
    help,
    flags: [{ name: 'reason', kind: 'string' }],
    failure: `Error: deploy ${op}`,
    timeoutMs: rpcTimeoutMs,
    parse: (f) => {
      if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
      const reason = f.strings.get('reason');
      return { reason };
    },
    exec: async (client, o, io) => {
      const s = asState(await client.call(`deploy.${op}`, o.reason === undefined ? {} : { reason: o.reason }));
      io.stdout(`deploy ${s.id}: ${s.phase}${s.reason ? ` (${s.reason})` : ''}\n`);
      if (isFinalPhase(s.phase)) return 0;
      // rolling back: follow until every balancer has it
      const code = await follow(client, s.id, io, s.events[s.events.length - 1]);
      const after = (await client.call('deploy.status', {})) as { current: DeployState | null };
      return code === 0 || after.current?.phase === 'rolled-back' || after.current?.phase === 'aborted' ? 0 : 1;
    },
  });
}

const route = rpcCommand({
  name: 'deploy route',
  synopsis: "Set a service's traffic split",
  help: routeHelp,
  flags: [
    { name: 'service', kind: 'string' },
    { name: 'tag', kind: 'string' },
  ],
  failure: 'Error setting the route',
  timeoutMs: rpcTimeoutMs,
  parse: (f) => {
    const service = f.strings.get('service');
    if (service === undefined || service === '') throw usage('-service is required');
    const weights: Record<string, number> = {};
    for (const p of f.positional) {
      const m = /^([^=]+)=(\d{1,3})%?$/.exec(p);
      if (m === null || Number(m[2]) > 100) throw usage(`expected VALUE=PERCENT (0..100), got "${p}"`);
      weights[m[1] ?? ''] = Number(m[2]);
    }
    const tag = f.strings.get('tag');
    return { service, weights, ...(tag === undefined ? {} : { tag }) };
  },
  exec: async (client, o, io) => {
    const e = (await client.call('deploy.route', o)) as { ltime: number; weights: Record<string, number>; tag: string };
    const split = Object.entries(e.weights).map(([k, v]) => `${k}=${v}`).join(' ');
    io.stdout(`route ${o.service}: ${split === '' ? 'cleared (every healthy backend serves)' : `${e.tag} ${split}`} (ltime ${e.ltime})\n`);
    return 0;
  },
});

const SUBCOMMANDS: Record<string, Command> = {
  'blue-green': blueGreen,
  status,
  abort: stopCommand('abort', abortHelp, 'Stop the running deploy'),
  rollback: stopCommand('rollback', rollbackHelp, 'Roll traffic back to the old colour'),
  route,
};

export const deployCommand: Command = subcommandGroup('Blue-green deploys: start, follow, abort, roll back, set routes', topHelp, SUBCOMMANDS);
