// Interop harness: real `serf agent` and `./bin/kodama agent` child processes on 127.0.0.1.
// Every child is tracked and SIGKILLed by killAll() (call it in `after`, it also runs on
// process exit), every wait is bounded in time, and ports are probed free for TCP *and* UDP
// (memberlist needs both on one port).

import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '../../src/rpc/index.ts';
import type { RpcMember } from '../../src/rpc/index.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const KODAMA_BIN = `${REPO}bin/kodama`;

export interface Proc {
  name: string;
  kind: 'serf' | 'kodama';
  child: ChildProcess;
  port: number;
  rpcAddr: string;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
}
process.once('exit', killAll);

async function tryPort(port: number): Promise<number | undefined> {
  const tcp = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!ok) return undefined;
  const actual = (tcp.address() as { port: number }).port;
  const udp = createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(actual, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((r) => tcp.close(() => r()));
  if (udpOk) await new Promise<void>((r) => udp.close(() => r()));
  return udpOk ? actual : undefined;
}

const handedOut = new Set<number>();

/** A port free for both TCP and UDP on 127.0.0.1 right now (not handed out before). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await tryPort(0);
    if (p !== undefined && !handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free port found in 50 tries');
}

function track(name: string, kind: Proc['kind'], child: ChildProcess, port: number, rpcAddr: string): Proc {
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return { name, kind, child, port, rpcAddr, output: () => out, exited };
}

export interface NodeOptions {
  tags?: Record<string, string>;
  encrypt?: string;
  join?: string[];
  /** More flags, appended after the common ones. */
  args?: string[];
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Reuse a gossip port (restart tests); default: a fresh free port. */
  port?: number;
  rpcPort?: number;
}

function commonArgs(name: string, port: number, rpcPort: number, o: NodeOptions): string[] {
  const args = ['agent', `-node=${name}`, `-bind=127.0.0.1:${port}`, `-rpc-addr=127.0.0.1:${rpcPort}`, '-profile=local'];
  for (const [k, v] of Object.entries(o.tags ?? {})) args.push('-tag', `${k}=${v}`);
  if (o.encrypt !== undefined) args.push(`-encrypt=${o.encrypt}`);
  for (const j of o.join ?? []) args.push(`-join=${j}`);
  args.push(...(o.args ?? []));
  return args;
}

/**
 * Start a serf agent and wait until it says it is running (printed after it bound both ports:
 * an RPC port that answers may be another process's). Ports are probed free and bound a moment
 * later, so another test process may take one first: then serf exits with "address already in
 * use" and is started again on fresh ports (at most 3 attempts; not when the ports were given).
 */
export async function startSerf(name: string, o: NodeOptions = {}): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const port = o.port ?? (await freePort());
    const rpcPort = o.rpcPort ?? (await freePort());
    const child = spawn('serf', commonArgs(name, port, rpcPort, o), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
    const p = track(name, 'serf', child, port, `127.0.0.1:${rpcPort}`);
    const up = await waitFor(
      `${name} running`,
      10_000,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) return 'exited';
        return p.output().includes('==> Serf agent running!') && (await tryRpc(p.rpcAddr)) ? 'up' : undefined;
      },
      () => p.output(),
    );
    if (up === 'up') return p;
    const taken = /address already in use/.test(p.output()) && o.port === undefined && o.rpcPort === undefined;
    if (!taken || attempt >= 3) throw new Error(`serf agent ${name} exited while starting:\n${p.output()}`);
  }
}

export async function startKodama(name: string, o: NodeOptions & { logLevel?: string } = {}): Promise<Proc> {
  const port = o.port ?? (await freePort());
  const rpcPort = o.rpcPort ?? (await freePort());
  const args = commonArgs(name, port, rpcPort, o);
  if (o.logLevel !== undefined) args.push(`-log-level=${o.logLevel}`);
  const child = spawn(KODAMA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO, env: { ...process.env, ...o.env } });
  const p = track(name, 'kodama', child, port, `127.0.0.1:${rpcPort}`);
  return p;
}

/** Wait until a process's RPC port answers (kodama starts slower than serf: node loads the agent). */
export async function rpcUp(p: Proc, timeoutMs = 20_000): Promise<void> {
  // The banner first: an RPC port that answers may be another process's.
  const banner = p.kind === 'serf' ? '==> Serf agent running!' : '==> kodama agent running!';
  await waitFor(
    `${p.name} RPC up`,
    timeoutMs,
    async () => (p.output().includes(banner) && (await tryRpc(p.rpcAddr)) ? true : undefined),
    () => p.output(),
  );
}

async function tryRpc(addr: string): Promise<boolean> {
  try {
    const c = await RpcClient.connect(addr, { timeoutMs: 1000 });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Members through RPC (works against serf and kodama alike); undefined if unreachable. */
export async function rpcMembers(addr: string): Promise<RpcMember[] | undefined> {
  let c: RpcClient | undefined;
  try {
    c = await RpcClient.connect(addr, { timeoutMs: 2000 });
    return await c.members();
  } catch {
    return undefined;
  } finally {
    c?.close();
  }
}

export interface CliMember {
  name: string;
  addr: string;
  port: number;
  tags: Record<string, string>;
  status: string;
}

/** Run a CLI (`serf` or `./bin/kodama`) `members -format json` and parse its output. */
export function cliMembers(bin: 'serf' | 'kodama', rpcAddr: string): Promise<CliMember[]> {
  const file = bin === 'serf' ? 'serf' : KODAMA_BIN;
  return new Promise((resolve, reject) => {
    execFile(file, ['members', `-rpc-addr=${rpcAddr}`, '-format=json'], { timeout: 15_000, cwd: REPO }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${bin} members failed: ${err.message}\n${stderr}`));
        return;
      }
      try {
        resolve((JSON.parse(stdout) as { members: CliMember[] | null }).members ?? []);
      } catch (e) {
        reject(new Error(`${bin} members: bad JSON: ${(e as Error).message}\n${stdout}`));
      }
    });
  });
}

/** Poll `check` every `intervalMs` until it returns a value, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  context?: () => string,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 10_000; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const extra = context ? `\n--- context ---\n${context().slice(-4000)}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${extra}`);
}

/** Wait until `addr`'s view has every name in `want` with the given status. */
export function waitStatuses(
  addr: string,
  want: Record<string, string>,
  timeoutMs: number,
  context?: () => string,
): Promise<RpcMember[]> {
  return waitFor(
    `${addr} to see ${JSON.stringify(want)}`,
    timeoutMs,
    async () => {
      const ms = await rpcMembers(addr);
      if (ms === undefined) return undefined;
      for (const [name, status] of Object.entries(want)) {
        if (ms.find((m) => m.name === name)?.status !== status) return undefined;
      }
      return ms;
    },
    context,
  );
}

/** The process's exit code, or 'still running' after `timeoutMs` (the timer never outlives it). */
export async function exitWithin(p: Proc, timeoutMs: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((r) => {
    timer = setTimeout(() => r('still running'), timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
