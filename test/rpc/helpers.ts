// Shared test fixtures for the RPC tests: a scripted backend, the real `serf` CLI and agent,
// raw sockets for hostile input, free ports. Every process and socket started here is bounded
// in time and cleaned up by the caller's `after`/finally.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { RpcBackend, RpcMember } from '../../src/rpc/backend.ts';
import { RpcClient } from '../../src/rpc/client.ts';

export const SERF = '/usr/bin/serf';

export function member(
  name: string,
  ip: number[],
  port: number,
  tags: Record<string, string>,
  status: RpcMember['status'],
): RpcMember {
  return {
    name,
    addr: new Uint8Array(ip),
    port,
    tags,
    status,
    protocolMin: 1,
    protocolMax: 5,
    protocolCur: 2,
    delegateMin: 2,
    delegateMax: 5,
    delegateCur: 5,
  };
}

/** Four members covering IPv4/IPv6, every tag shape the filters care about, and statuses. */
export const MEMBERS: RpcMember[] = [
  member('web-1', [127, 0, 0, 1], 7946, { role: 'web', dc: 'x1' }, 'alive'),
  member('web-2', [10, 1, 2, 3], 7950, { role: 'web', dc: 'x2' }, 'failed'),
  member('db-1', [192, 168, 0, 9], 8000, { role: 'db' }, 'alive'),
  member('v6-node', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 7946, {}, 'left'),
];

export interface RecordingBackend extends RpcBackend {
  joins: { addrs: string[]; replay: boolean }[];
  leaves: number;
}

export function recordingBackend(members: RpcMember[] = MEMBERS): RecordingBackend {
  const b: RecordingBackend = {
    joins: [],
    leaves: 0,
    members: () => members.map((m) => ({ ...m, tags: { ...m.tags } })),
    join: async (addrs, replay) => {
      b.joins.push({ addrs, replay });
      // the first address "fails" when it is unreachable-looking, like memberlist's multi-error
      const bad = addrs.filter((a) => a.startsWith('0.'));
      return { num: addrs.length - bad.length, error: bad.map((a) => `Failed to join ${a}: refused`).join('\n') };
    },
    leave: async () => {
      b.leaves++;
    },
    stats: () => ({ agent: { name: 'fake' }, serf: { members: String(members.length), encrypted: 'false' } }),
  };
  return b;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real serf CLI with a hard timeout. */
export function runSerf(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      SERF,
      args,
      { timeout: timeoutMs, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A port free for both TCP and UDP on 127.0.0.1 right now (serf binds both on -bind). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
    const udpOk = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpOk) return port;
  }
  throw new Error('no free port after 20 attempts');
}

export interface SerfAgent {
  child: ChildProcess;
  rpcAddr: string;
  bindPort: number;
  output: () => string;
  /** '' while running; otherwise how it ended and the last lines it printed (for failure messages). */
  ended: () => string;
  kill(): Promise<void>;
}

/**
 * Start `serf agent` and wait until its RPC answers (bounded). A port found free can be taken by
 * another test before serf binds it (seen once in CI: "bind: address already in use"): then try
 * again with new ports, at most 3 times.
 */
export async function startSerfAgent(extra: string[], node = 's1'): Promise<SerfAgent> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSerfAgentOnce(extra, node);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) throw e;
    }
  }
}

async function startSerfAgentOnce(extra: string[], node: string): Promise<SerfAgent> {
  const bindPort = await freePort();
  const rpcPort = await freePort();
  const rpcAddr = `127.0.0.1:${rpcPort}`;
  const child = spawn(
    SERF,
    ['agent', '-node', node, '-bind', `127.0.0.1:${bindPort}`, '-rpc-addr', rpcAddr, '-log-level', 'debug', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let endedAs = '';
  child.once('exit', (code, signal) => {
    endedAs = `serf agent ${node} (pid ${child.pid}) exited at ${new Date().toISOString()}: code ${code}, signal ${signal}`;
  });
  const agent: SerfAgent = {
    child,
    rpcAddr,
    bindPort,
    output: () => out,
    ended: () => (endedAs === '' ? '' : `${endedAs}; last output:\n${out.split('\n').slice(-25).join('\n')}`),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    // Someone else listening on the port would answer too: serf must have said it is running
    // (it prints that after binding both ports) and still be running.
    if (/==> Serf agent running!/.test(out) && child.exitCode === null && (await tcpOpen(rpcPort))) return agent;
    await sleep(100);
  }
  await agent.kill();
  throw new Error(`serf agent did not start:\n${out}`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface RawResult {
  /** Everything the server sent before it closed or the wait ran out. */
  bytes: Buffer;
  /** The server closed (FIN or reset) within the wait. */
  closed: boolean;
}

/**
 * Open a raw TCP connection, write `chunks` (in order), and collect what comes back until the
 * server closes, `until` bytes arrived (or the predicate holds), or `waitMs` passed.
 */
export function rawExchange(
  port: number,
  chunks: Uint8Array[],
  waitMs = 10_000,
  until: number | ((got: Buffer) => boolean) = Infinity,
): Promise<RawResult> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(got), closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('data', (d: Buffer) => {
      got.push(d);
      size += d.length;
      if (typeof until === 'number' ? size >= until : until(Buffer.concat(got))) finish(false);
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
    });
  });
}

/** A normal client still gets served: handshake + members round trip. */
export async function stillServes(port: number): Promise<number> {
  const c = await RpcClient.connect(`127.0.0.1:${port}`, { timeoutMs: 3000 });
  try {
    return (await c.members()).length;
  } finally {
    c.close();
  }
}

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
