// `kodama demo`: a local cluster on 127.0.0.1 — one balancer (this process), three web nodes
// (child processes) — with live traffic, then a short script: a node joins, one leaves
// gracefully, one is killed. `kodama demo web-node` is one of those web nodes.

import { setFlagsFromString } from 'node:v8';
import { CliError, parseFlags } from './flags.ts';
import type { FlagSpec } from './flags.ts';
import type { CliIo, Command } from './io.ts';
import type { DemoOptions } from '../demo/scenario.ts';

const help = `Usage: kodama demo [options]

  Runs a small kodama cluster on this machine (127.0.0.1 only) and shows
  traffic wiring at work: a balancer node with a proxy in front of service
  "web", three web nodes each serving a page naming its node, and a steady
  light load through the proxy. It prints joins, the balancer's backend set
  and requests per node per second, then plays a script:

    1. web-4 joins        -> it gets traffic soon after it turns healthy
    2. web-2 leaves       -> it is drained first: no request fails
    3. web-3 is killed    -> failures only until the cluster notices it

  Each step says what it expects and whether it happened. Without -once the
  demo keeps running (live view) until Ctrl-C, then stops every node.

  The balancer node serves the HTTP API and the dashboard; the demo prints
  its address as "dashboard: http://127.0.0.1:PORT/ui/" (open it in a browser
  to watch the cluster live).

Options:

  -once                     Run the script and exit: 0 if every expectation
                            held, 1 otherwise (with the reason).
  -haproxy                  Balance with HAProxy (must be installed:
                            apt-get install haproxy) instead of the embedded
                            proxy.
  -haproxy-binary=haproxy   HAProxy binary to run with -haproxy.
  -port=0                   Port of the balancer's frontend for "web" (0 = a
                            free port).
  -delay-ms=20              Delay of every page answer, so requests are in
                            flight when a node leaves or dies.
  -http-addr=127.0.0.1:8500 Where the balancer serves the HTTP API and the
                            dashboard. Without it: 127.0.0.1:8500, or a free
                            port if 8500 is taken.
  -no-script                Start the cluster and the load, print
                            "cluster ready: web-1 pid N, web-2 pid N, web-3 pid
                            N; dashboard: URL", then skip the script: the
                            three web nodes keep serving until Ctrl-C (or
                            SIGTERM). Kill a node by its pid (kill -9 PID) to
                            watch the dashboard turn it failed. Cannot be used
                            with -once.

Subcommand:

  kodama demo web-node -name web-1 -join 127.0.0.1:P [-port 0] [-serf-port 0]
                       [-delay-ms 0]
                       One web node (agent + page) as a process: prints one JSON
                       line {"node","port","serf"} when it is up, then its log.
                       SIGTERM drains and leaves gracefully, then exits 0.
`;

const webNodeHelp = `Usage: kodama demo web-node -name NAME -join HOST:PORT [options]

  One web node of the demo: a kodama agent (profile local, tag role=web)
  offering service "web" (HTTP check /health every 250 ms) and the page it
  serves on 127.0.0.1. Prints one JSON line {"node","port","serf"} once it
  listens and has joined, then the agent's log. SIGTERM (or SIGINT) drains
  the service (1.5 s), leaves the cluster and exits 0. SIGKILL is a node
  death.

Options:

  -name=NAME                Node name (required).
  -join=HOST:PORT           Node to join; can be given more than once.
  -port=0                   Port of the page (0 = a free port).
  -serf-port=0              Gossip port (0 = a free port).
  -delay-ms=0               Delay of every page answer (ms).
  -rpc-addr=ADDR            Listen for RPC (default: no RPC).
  -watch-stdin              Leave and exit when stdin closes (used by the demo
                            so that nodes never outlive it).
`;

const DEMO_FLAGS: FlagSpec[] = [
  { name: 'once', kind: 'bool' },
  { name: 'haproxy', kind: 'bool' },
  { name: 'haproxy-binary', kind: 'string' },
  { name: 'port', kind: 'string' },
  { name: 'delay-ms', kind: 'string' },
  { name: 'http-addr', kind: 'string' },
  { name: 'no-script', kind: 'bool' },
];

const WEB_NODE_FLAGS: FlagSpec[] = [
  { name: 'name', kind: 'string' },
  { name: 'join', kind: 'list' },
  { name: 'port', kind: 'string' },
  { name: 'serf-port', kind: 'string' },
  { name: 'delay-ms', kind: 'string' },
  { name: 'rpc-addr', kind: 'string' },
  { name: 'watch-stdin', kind: 'bool' },
];

function intFlag(v: string | undefined, name: string, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > max) throw new CliError('ERR_CLI_USAGE', `invalid value "${v}" for -${name}: want an integer 0..${max}`);
  return n;
}

async function runWebNode(args: string[], io: CliIo): Promise<number> {
  let opts: { name: string; join: string[]; port: number; serfPort: number; delayMs: number; rpcAddr: string | null; watchStdin: boolean };
  try {
    const f = parseFlags(args, WEB_NODE_FLAGS);
    const name = f.strings.get('name');
    if (name === undefined || name === '') throw new CliError('ERR_CLI_USAGE', 'missing -name');
    if (f.positional.length > 0) throw new CliError('ERR_CLI_USAGE', `unexpected argument: ${f.positional[0]}`);
    opts = {
      name,
      join: f.lists.get('join') ?? [],
      port: intFlag(f.strings.get('port'), 'port', 0, 65535),
      serfPort: intFlag(f.strings.get('serf-port'), 'serf-port', 0, 65535),
      delayMs: intFlag(f.strings.get('delay-ms'), 'delay-ms', 0, 60_000),
      rpcAddr: f.strings.get('rpc-addr') ?? null,
      watchStdin: f.bools.has('watch-stdin'),
    };
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
      io.stdout(webNodeHelp);
      return 0;
    }
    if (e instanceof CliError) {
      io.stderr(`${e.message}\n\n${webNodeHelp}`);
      return 1;
    }
    throw e;
  }
  const { runWebNodeProcess } = await import('../demo/web-node.ts');
  return runWebNodeProcess(opts, io);
}

async function run(args: string[], io: CliIo): Promise<number> {
  // bin/kodama turns V8's optimizing compiler off (an idle agent's memory); the demo proxies and
  // generates live traffic in this process, where optimized code pays (as a balancer agent).
  setFlagsFromString('--opt');
  if (args[0] === 'web-node') return runWebNode(args.slice(1), io);
  let opts: DemoOptions;
  try {
    const f = parseFlags(args, DEMO_FLAGS);
    if (f.positional.length > 0) throw new CliError('ERR_CLI_USAGE', `unexpected argument: ${f.positional[0]}`);
    const script = !f.bools.has('no-script');
    if (!script && f.bools.has('once')) throw new CliError('ERR_CLI_USAGE', '-no-script cannot be used with -once (-once runs the script)');
    const httpAddr = f.strings.get('http-addr');
    if (httpAddr !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(httpAddr)) {
      throw new CliError('ERR_CLI_USAGE', `invalid value "${httpAddr}" for -http-addr: want host:port, e.g. 127.0.0.1:8500`);
    }
    opts = {
      once: f.bools.has('once'),
      haproxy: f.bools.has('haproxy'),
      haproxyBinary: f.strings.get('haproxy-binary') ?? 'haproxy',
      port: intFlag(f.strings.get('port'), 'port', 0, 65535),
      delayMs: intFlag(f.strings.get('delay-ms'), 'delay-ms', 20, 10_000),
      script,
      ...(httpAddr !== undefined ? { httpAddr } : {}),
    };
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    if (e instanceof CliError) {
      io.stderr(`${e.message}\n\n${help}`);
      return 1;
    }
    throw e;
  }
  const { runDemo } = await import('../demo/scenario.ts');
  return runDemo(opts, io);
}

export const demoCommand: Command = {
  synopsis: 'Runs a local cluster with a load balancer and live traffic',
  help,
  flags: DEMO_FLAGS,
  // Run through `run` (args[0] === 'web-node'); listed for the help tests.
  subcommands: { 'web-node': { synopsis: 'One web node of the demo', help: webNodeHelp, flags: WEB_NODE_FLAGS, run: runWebNode } },
  run,
};
