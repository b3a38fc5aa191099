// Shared test fixtures for the RPC tests: a scripted backend, the real `serf` CLI, raw sockets
// for hostile input. (Real agents and free ports: test/lib/agents.ts.) Every process and socket
// started here is bounded in time and cleaned up by the caller's `after`/finally.

import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import type { RpcBackend, RpcMember } from '../../src/rpc/backend.ts';
import { RpcClient } from '../../src/rpc/client.ts';
import { SERF_BIN } from '../lib/agents.ts';

export const SERF = SERF_BIN;

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
