// The one way tests and benchmarks start agents: real `serf agent` (/usr/bin/serf) and
// `bin/kodama agent` (the build in dist/) child processes on 127.0.0.1.
//
// Ports. Test files run two at a time, each in its own process, and other engineers' runs share
// the machine's loopback: a port one process picked must never be another's, or a reconnect
// could join two tests' clusters. So every process claims a *slot*, a block of SLOT_SPAN ports in
// PORTS_LO..PORTS_HI (below the kernel's ephemeral range, 32768+, so no `listen(0)` or outgoing
// connection lands in it), by holding a listening TCP socket on the slot's first port for its
// whole life: the kernel frees the claim when the process dies, however it dies, and no two live
// processes can hold one. freePort() hands out the slot's other ports in turn, each checked free
// for TCP *and* UDP (memberlist uses both on one port). No environment variable or lock file is
// needed: it works the same under scripts/run-tests.mjs, `node --test <file>` and the benchmarks.
//
// Readiness. An agent is up when it printed its *own* banner ("==> Serf agent running!" /
// "==> kodama agent running!", both printed after every port is bound) and, with an RPC port,
// that RPC answers: a port that answers may be another process's. A port probed free can still be
// taken before the agent binds it (by a process outside the slots): then the agent exits with
// "address already in use" and is started again on fresh ports, at most 3 attempts, and says so.
//
// Death and teardown. Each agent runs in its own process group (handlers and checks are its
// children). stop() sends SIGTERM, then SIGKILLs the group after a bound; stopAll() does that for
// every agent still running (use it in `after`), and process exit or SIGINT/SIGTERM SIGKILLs every
// group left. An agent that dies without being asked to prints its exit code or signal and its
// last 25 lines of output to stderr; report() gives the same text on demand (and start failures
// carry it).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../../src/rpc/client.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const KODAMA_BIN = `${REPO}bin/kodama`;
export const SERF_BIN = '/usr/bin/serf';

export type Kind = 'serf' | 'kodama';

/** The line each agent prints once it has bound its ports (src/cli/agent.ts; serf's command/agent). */
export const BANNER: Record<Kind, string> = { serf: '==> Serf agent running!', kodama: '==> kodama agent running!' };

/** Lines of output report() shows. */
export const TAIL_LINES = 25;

// ---------------------------------------------------------------------------------------------
// Ports

const PORTS_LO = 20_000;
const PORTS_HI = 32_000; // exclusive; Linux's ephemeral range starts at 32768
const SLOT_SPAN = 500;
const SLOTS = Math.floor((PORTS_HI - PORTS_LO) / SLOT_SPAN);

export interface PortSlot {
  slot: number;
  /** The claimed port (held for the process's life); handed-out ports are first+1 .. first+SLOT_SPAN-1. */
  first: number;
  last: number;
}

let slotClaim: Promise<PortSlot> | undefined;
let lockServer: Server | undefined;

function listenOnce(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer((c) => c.destroy());
    s.once('error', () => resolve(undefined));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

async function claimSlot(): Promise<PortSlot> {
  // Start at a pid-derived slot so concurrent processes rarely race for the same one.
  const start = process.pid % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    const first = PORTS_LO + slot * SLOT_SPAN;
    const s = await listenOnce(first);
    if (s === undefined) continue;
    s.unref();
    lockServer = s;
    return { slot, first, last: first + SLOT_SPAN - 1 };
  }
  throw new Error(`no free port slot: all ${SLOTS} blocks of ${SLOT_SPAN} in ${PORTS_LO}-${PORTS_HI - 1} are claimed by other processes`);
}

/** This process's port slot (claimed on first use). */
export function portSlot(): Promise<PortSlot> {
  slotClaim ??= claimSlot();
  return slotClaim;
}

/** Is `port` free on 127.0.0.1 for both TCP and UDP right now? */
export async function portIsFree(port: number): Promise<boolean> {
  const tcp = await listenOnce(port);
  if (tcp === undefined) return false;
  const udp = createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(port, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((r) => tcp.close(() => r()));
  if (udpOk) await new Promise<void>((r) => udp.close(() => r()));
  return udpOk;
}

let cursor = 0;

/**
 * A port from this process's slot, free for TCP and UDP on 127.0.0.1 right now. Ports are handed
 * out in turn, so one is handed out again only after all the slot's others were (and only if free).
 */
export async function freePort(): Promise<number> {
  const { first } = await portSlot();
  for (let i = 0; i < SLOT_SPAN - 1; i++) {
    const port = first + 1 + (cursor % (SLOT_SPAN - 1));
    cursor++;
    if (await portIsFree(port)) return port;
  }
  throw new Error(`no free TCP+UDP port left in this process's slot ${first + 1}-${first + SLOT_SPAN - 1}`);
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface AgentOptions {
  /** -tag k=v each. */
  tags?: Record<string, string>;
  encrypt?: string;
  /** -join=addr each. */
  join?: string[];
  /** More flags, appended after the common ones. */
  args?: string[];
  /** -profile (default 'local'); null: no -profile flag (the agent's default, lan). */
  profile?: string | null;
  /** -log-level, when given. */
  logLevel?: string;
  /**
   * The whole argument list after the binary (`agent …`), built from the picked ports, instead of
   * the common flags above (for config files, the other flag spellings, or no RPC).
   */
  argv?: (p: { port: number; rpcPort: number }) => string[];
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Reuse a gossip / RPC port (restart tests); default: fresh ports from this process's slot. */
  port?: number;
  rpcPort?: number;
  /** Whether the agent serves RPC on rpcPort (readiness then includes RPC answering). Default true. */
  rpc?: boolean;
  /** Wait for the banner (and RPC) before returning; default true. false: return at once (an agent expected to exit, or started in bulk). */
  ready?: boolean;
  /** Bound for the start-up wait (default 30 s: node loads the agent, and the machine may be busy). */
  startTimeoutMs?: number;
  /** Append output to this file instead of piping it (the harness then reads no pipes: benchmarks). */
  logFile?: string;
  cwd?: string;
  /** Another executable of this kind (e.g. an installed `kodama`); default bin/kodama or /usr/bin/serf. */
  bin?: string;
  /** The agent is expected to exit on its own: do not print its death to stderr. */
  expectExit?: boolean;
}

export interface AgentProcess {
  name: string;
  kind: Kind;
  child: ChildProcess;
  pid: number;
  port: number;
  rpcPort: number;
  /** 127.0.0.1:port (the gossip address). */
  addr: string;
  rpcAddr: string;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** Its last `n` lines of output. */
  tail(n?: number): string;
  /** Its exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  hasExited(): boolean;
  /** How it ended, undefined while running. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** performance.now() at spawn and at the banner (undefined until seen). */
  spawnedAt: number;
  bannerAt: number | undefined;
  /** "<kind> agent <name> (pid N) exited with code C | was killed by SIGX | is running", and its last 25 lines. */
  report(): string;
  /** Send a signal to the agent process only (not its group), marked as asked for. */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL the whole group (a crashed host) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL the group after `graceMs` (default 10 s); resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<AgentProcess>();

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // group gone (or never made): the process itself
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    } catch {
      // already reaped
    }
  }
}

/** SIGKILL every agent group this process started, at once (exit hooks; no waiting). */
export function killAllNow(): void {
  for (const a of live) killGroup(a.child, 'SIGKILL');
}

/** Stop every agent still running (SIGTERM, SIGKILL after the bound), in parallel: use in `after`. */
export async function stopAll(graceMs?: number): Promise<void> {
  await Promise.all([...live].map((a) => a.stop(graceMs)));
}

/** Agents started by this process and not yet seen to exit. */
export function liveAgents(): AgentProcess[] {
  return [...live];
}

let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    killAllNow();
    lockServer?.close();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAllNow();
      // Die of the signal as we would have without this hook.
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n).join('\n');
}

/**
 * "<what> (pid N) exited with code C | was killed by SIGX | is running; its last 25 lines of
 * output: …" — for agents started some other way too (test/netns).
 */
export function describeProcess(what: string, pid: number, exit: { code: number | null; signal: NodeJS.Signals | null } | undefined, output: string): string {
  const how = exit === undefined ? 'is running' : exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `${what} (pid ${pid}) ${how}; its last ${TAIL_LINES} lines of output:\n${lastLines(output, TAIL_LINES)}`;
}

function commonArgs(name: string, port: number, rpcPort: number, o: AgentOptions): string[] {
  const args = ['agent', `-node=${name}`, `-bind=127.0.0.1:${port}`];
  if (o.rpc !== false) args.push(`-rpc-addr=127.0.0.1:${rpcPort}`);
  const profile = o.profile === undefined ? 'local' : o.profile;
  if (profile !== null) args.push(`-profile=${profile}`);
  for (const [k, v] of Object.entries(o.tags ?? {})) args.push('-tag', `${k}=${v}`);
  if (o.encrypt !== undefined) args.push(`-encrypt=${o.encrypt}`);
  for (const j of o.join ?? []) args.push(`-join=${j}`);
  if (o.logLevel !== undefined) args.push(`-log-level=${o.logLevel}`);
  args.push(...(o.args ?? []));
  return args;
}

/** Whether a death not asked for is printed (off while starting: a start failure throws its report). */
interface DeathWatch {
  report: boolean;
}

function spawnAgent(kind: Kind, name: string, o: AgentOptions, port: number, rpcPort: number, watch: DeathWatch): AgentProcess {
  installHooks();
  const file = o.bin ?? (kind === 'serf' ? SERF_BIN : KODAMA_BIN);
  const argv = o.argv !== undefined ? o.argv({ port, rpcPort }) : commonArgs(name, port, rpcPort, o);
  const env = { ...process.env, ...o.env };
  const cwd = o.cwd ?? REPO;
  let child: ChildProcess;
  let out = '';
  const logFile = o.logFile;
  const spawnedAt = performance.now();
  if (logFile !== undefined) {
    const fd = openSync(logFile, 'a');
    try {
      child = spawn(file, argv, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
  } else {
    child = spawn(file, argv, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let asked = false;
  let resolveExited: (code: number | null) => void = () => undefined;
  const exited = new Promise<number | null>((r) => (resolveExited = r));
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const output = (): string => {
    if (logFile === undefined) return out;
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const p: AgentProcess = {
    name,
    kind,
    child,
    pid: child.pid ?? -1,
    port,
    rpcPort,
    addr: `127.0.0.1:${port}`,
    rpcAddr: `127.0.0.1:${rpcPort}`,
    output,
    tail: (n = TAIL_LINES) => lastLines(output(), n),
    exited,
    hasExited: () => ended !== undefined,
    exit: () => ended,
    spawnedAt,
    bannerAt: undefined,
    report: () => describeProcess(`${kind} agent ${name}`, p.pid, ended, output()),
    signal: (sig) => {
      asked = true;
      if (ended === undefined) child.kill(sig);
    },
    kill: async () => {
      asked = true;
      killGroup(child, 'SIGKILL');
      await p.exited;
    },
    stop: async (graceMs = 10_000) => {
      asked = true;
      if (ended === undefined) {
        try {
          child.kill('SIGTERM');
        } catch {
          // already gone
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
      }
      // The group too: a handler or check the agent left behind.
      killGroup(child, 'SIGKILL');
      await p.exited;
    },
  };
  if (logFile === undefined) {
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (p.bannerAt === undefined && out.includes(BANNER[kind])) p.bannerAt = performance.now();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }
  live.add(p);
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
    if (ended !== undefined) return;
    ended = { code, signal };
    live.delete(p);
    // Whatever the agent left in its group goes with it.
    killGroup(child, 'SIGKILL');
    // Resolve once the pipes are drained ('close'), so output() and the report hold the agent's
    // last words; bounded, in case something it started still holds a pipe open.
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (!asked && watch.report && (code !== 0 || signal !== null)) process.stderr.write(`\n[test/lib/agents] ${p.report()}\n`);
      resolveExited(code);
    };
    if (logFile !== undefined || closed) finish();
    else {
      timer = setTimeout(finish, 1000);
      child.once('close', finish);
    }
  };
  let closed = false;
  child.once('close', () => (closed = true));
  child.once('exit', onExit);
  child.once('error', (e) => {
    out += `\nspawn ${file} failed: ${e.message}\n`;
    closed = true;
    onExit(null, null);
  });
  return p;
}

async function rpcAnswers(addr: string): Promise<boolean> {
  try {
    const c = await RpcClient.connect(addr, { timeoutMs: 2000 });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Wait until the agent printed its own banner and (with RPC) its RPC answers; throws with its
 * report if it exits first or `timeoutMs` passes.
 */
export async function waitReady(p: AgentProcess, timeoutMs = 30_000, rpc = true): Promise<void> {
  const r = await readyOrExit(p, timeoutMs, rpc);
  if (r === 'exited') throw new Error(`${p.kind} agent ${p.name} exited while starting: ${p.report()}`);
}

async function readyOrExit(p: AgentProcess, timeoutMs: number, rpc: boolean): Promise<'up' | 'exited'> {
  const deadline = Date.now() + timeoutMs;
  const fileMode = p.child.stdout === null;
  for (let i = 0; i < 1_000_000; i++) {
    if (p.hasExited()) return 'exited';
    if (p.bannerAt === undefined && fileMode && p.output().includes(BANNER[p.kind])) p.bannerAt = performance.now();
    if (p.bannerAt !== undefined && (!rpc || (await rpcAnswers(p.rpcAddr)))) {
      if (!p.hasExited()) return 'up';
    }
    if (Date.now() >= deadline) break;
    // The file is polled often (benchmarks time the banner); the pipe sets bannerAt as it arrives.
    await sleep(fileMode ? 5 : 50);
  }
  throw new Error(`${p.kind} agent ${p.name} not up within ${timeoutMs} ms (its banner${rpc ? ' and RPC' : ''}): ${p.report()}`);
}

/** Start an agent of either kind (see startSerf / startKodama). */
export async function startAgent(kind: Kind, name: string, o: AgentOptions = {}): Promise<AgentProcess> {
  const picked = o.port === undefined && (o.rpcPort === undefined || o.rpc === false);
  for (let attempt = 1; ; attempt++) {
    const port = o.port ?? (await freePort());
    const rpcPort = o.rpcPort ?? (o.rpc === false ? 0 : await freePort());
    const watch: DeathWatch = { report: false };
    const p = spawnAgent(kind, name, o, port, rpcPort, watch);
    if (o.ready === false) {
      watch.report = o.expectExit !== true;
      return p;
    }
    let r: 'up' | 'exited';
    try {
      r = await readyOrExit(p, o.startTimeoutMs ?? 30_000, o.rpc !== false);
    } catch (e) {
      await p.kill();
      throw e;
    }
    if (r === 'up') {
      watch.report = o.expectExit !== true;
      return p;
    }
    await p.exited;
    const taken = /address already in use/i.test(p.output());
    if (!taken || !picked || attempt >= 3) throw new Error(`${kind} agent ${name} exited while starting: ${p.report()}`);
    process.stderr.write(
      `[test/lib/agents] ${kind} agent ${name}: a port was taken before it bound it (address already in use); starting it again on fresh ports (attempt ${attempt + 1} of 3)\n`,
    );
  }
}

/** Start `serf agent` (/usr/bin/serf) and wait for its banner and RPC (unless ready: false). */
export function startSerf(name: string, o: AgentOptions = {}): Promise<AgentProcess> {
  return startAgent('serf', name, o);
}

/** Start `bin/kodama agent` (the build) and wait for its banner and RPC (unless ready: false). */
export function startKodama(name: string, o: AgentOptions = {}): Promise<AgentProcess> {
  return startAgent('kodama', name, o);
}
