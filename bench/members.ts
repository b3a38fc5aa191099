// What a member costs a real agent: `npm run bench -- members` (named only).
//
// One agent at a time — `serf agent`, then `./bin/kodama agent` — on 127.0.0.1, no handlers.
// Once it is up and idle, a push/pull join over its memberlist port (the bytes a joining peer
// sends: every member alive, incarnation 1, tags role=web dc=bench, on 127.60.x.y:7946) hands it
// N members it has never seen; the bench reads the agent's reply to the end, as a peer does (an
// agent merges only after its own state went out). Then it waits until the agent's RPC `members`
// lists N + 1, lets it settle (KODAMA_BENCH_SETTLE_MS, default 20000: long enough for V8's memory
// reducer to collect the join's garbage once the agent is idle; at 3 s the same run varies by
// ±5 MiB at N = 10,000), and reads VmRSS and RssAnon (/proc/PID/status) before and after:
// (after − before) / N is what one member costs the agent.
// The fake members do not answer probes; within the settle window the agent probes a handful
// (one per second), far too few to matter.
//
// KODAMA_BENCH_MEMBERS=100,1000,10000 (default) sizes; KODAMA_BENCH_KINDS=serf,kodama;
// KODAMA_BENCH_KODAMA_BIN another kodama build (a before/after pair: a worktree's bin/kodama).

import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { startAgent, stopAll, type AgentProcess, type Kind } from '../test/lib/agents.ts';
import { RpcClient } from '../src/rpc/client.ts';
import { encodeTags } from '../src/serf/tags.ts';
import { encodeMessage, encodeStream, streamFrameLength } from '../src/wire/index.ts';
import type { PushNodeState } from '../src/wire/types.ts';
import { installExitHooks, sleep } from './lib/procs.ts';

interface Memory {
  rssKiB: number;
  anonKiB: number;
}

interface Row {
  kind: Kind;
  n: number;
  before: Memory;
  after: Memory;
  mergeMs: number;
}

function memory(pid: number): Memory {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), anonKiB: field('RssAnon') };
}

/** The push/pull a peer joining with `n` members would send. */
function joinState(n: number): Uint8Array {
  const meta = encodeTags({ role: 'web', dc: 'bench' }, 5);
  const nodes: PushNodeState[] = [];
  for (let i = 0; i < n; i++) {
    const host = i + 1;
    nodes.push({
      name: `fake-${String(i).padStart(6, '0')}`,
      addr: Uint8Array.of(127, 60, (host >> 8) & 0xff, host & 0xff),
      port: 7946,
      meta,
      incarnation: 1,
      state: 'alive',
      vsn: [1, 5, 2, 2, 5, 4],
    });
  }
  return encodeStream(encodeMessage({ type: 'pushPull', join: true, nodes, userState: new Uint8Array(0) }), {
    compress: false,
    keyring: null,
    randomBytes: () => new Uint8Array(0),
  });
}

/** Send `bytes` to the agent's memberlist port and read its whole push/pull reply. */
function pushPull(port: number, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no complete push/pull reply from 127.0.0.1:${port} within 30 s`));
    }, 30_000);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const len = streamFrameLength(got);
      if (len !== undefined && got.length >= len) {
        clearTimeout(timer);
        s.end();
        resolve();
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function measure(kind: Kind, n: number, settleMs: number): Promise<Row> {
  const bin = kind === 'kodama' ? process.env['KODAMA_BENCH_KODAMA_BIN'] : undefined;
  const a: AgentProcess = await startAgent(kind, `members-${kind}`, bin === undefined ? {} : { bin });
  try {
    await sleep(2000);
    const before = memory(a.pid);
    const state = joinState(n);
    const t0 = performance.now();
    await pushPull(a.port, state);
    const rpc = await RpcClient.connect(a.rpcAddr);
    try {
      for (let i = 0; ; i++) {
        const count = (await rpc.members()).length;
        if (count >= n + 1) break;
        if (i > 600) throw new Error(`${kind}: lists ${count} of ${n + 1} members after 60 s`);
        await sleep(100);
      }
    } finally {
      rpc.close();
    }
    const mergeMs = performance.now() - t0;
    await sleep(settleMs);
    return { kind, n, before, after: memory(a.pid), mergeMs };
  } finally {
    await stopAll(2000);
  }
}

export default async function run(): Promise<void> {
  installExitHooks();
  const sizes = (process.env['KODAMA_BENCH_MEMBERS'] ?? '100,1000,10000').split(',').map(Number);
  const kinds = (process.env['KODAMA_BENCH_KINDS'] ?? 'serf,kodama').split(',') as Kind[];
  const settleMs = Number(process.env['KODAMA_BENCH_SETTLE_MS'] ?? 20_000);
  const rows: Row[] = [];
  for (const n of sizes) {
    for (const kind of kinds) {
      const r = await measure(kind, n, settleMs);
      rows.push(r);
      console.error(`${kind} N=${n}: ${(r.before.rssKiB / 1024).toFixed(1)} → ${(r.after.rssKiB / 1024).toFixed(1)} MiB RSS`);
    }
  }
  const mib = (kib: number): string => (kib / 1024).toFixed(1);
  const per = (r: Row, f: (m: Memory) => number): number => ((f(r.after) - f(r.before)) * 1024) / r.n;
  console.log(`one agent given N members by a push/pull join; memory ${settleMs / 1000} s after it lists them all`);
  console.log(['members', 'agent', 'RSS before MiB', 'anon before', 'RSS after MiB', 'anon after', 'RSS B/member', 'anon B/member', 'join → listed ms'].join('\t'));
  for (const r of rows) {
    console.log([r.n, r.kind, mib(r.before.rssKiB), mib(r.before.anonKiB), mib(r.after.rssKiB), mib(r.after.anonKiB), per(r, (m) => m.rssKiB).toFixed(0), per(r, (m) => m.anonKiB).toFixed(0), r.mergeMs.toFixed(0)].join('\t'));
  }
  for (const n of sizes) {
    const s = rows.find((r) => r.n === n && r.kind === 'serf');
    const k = rows.find((r) => r.n === n && r.kind === 'kodama');
    if (s === undefined || k === undefined) continue;
    console.log(`N=${n}: kodama/serf RSS after ${(k.after.rssKiB / s.after.rssKiB).toFixed(2)}×, anon per member ${(per(k, (m) => m.anonKiB) / per(s, (m) => m.anonKiB)).toFixed(2)}×`);
  }
}
