// Wire codec throughput: encode and decode packets/second for the message shapes a cluster sends
// most (ping, alive, a gossip compound of 8 alives) and the big one (a 100-node push/pull), each
// plain, compressed and encrypted. Figures are per CPU-second, for reading and comparing, not asserted.

import { randomBytes } from 'node:crypto';
import {
  Keyring,
  decodePacket,
  decodeStream,
  encodeMessage,
  encodePacket,
  encodeStream,
  type AliveMsg,
  type Message,
  type PushPullMsg,
} from '../src/wire/index.ts';

const MEASURE_MS = 200;

const ring = new Keyring([new Uint8Array(32).fill(42)]);
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const meta = new Uint8Array([0xff, 0x82, 0xa4, 0x72, 0x6f, 0x6c, 0x65, 0xa3, 0x77, 0x65, 0x62, 0xa2, 0x64, 0x63, 0xa2, 0x78, 0x31]);

function alive(i: number): AliveMsg {
  return {
    type: 'alive',
    incarnation: 1 + i,
    node: `node-${String(i).padStart(4, '0')}`,
    addr: new Uint8Array([10, 0, i >> 8, i & 0xff]),
    port: 7946,
    meta,
    vsn: [1, 5, 2, 2, 5, 5],
  };
}

const ping: Message = { type: 'ping', seqNo: 12345, node: 'node-0001', sourceAddr: new Uint8Array([10, 0, 0, 2]), sourcePort: 7946, sourceNode: 'node-0002' };
const pushPull: PushPullMsg = {
  type: 'pushPull',
  join: false,
  nodes: Array.from({ length: 100 }, (_, i) => ({
    name: `node-${String(i).padStart(4, '0')}`,
    addr: new Uint8Array([10, 0, i >> 8, i & 0xff]),
    port: 7946,
    meta,
    incarnation: 1 + i,
    state: 'alive' as const,
    vsn: [1, 5, 2, 2, 5, 5] as const,
  })),
  userState: new Uint8Array(600).fill(0xc0),
};

/** Runs `fn` in growing batches until MEASURE_MS of this process's CPU time elapsed; returns
 *  operations per CPU-second (CPU time, not wall time, so a busy machine skews figures less). */
function rate(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn(); // warm up the JIT
  let ops = 0;
  let batch = 16;
  const start = process.cpuUsage();
  let elapsedMs = 0;
  while (elapsedMs < MEASURE_MS) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    batch *= 2;
    const used = process.cpuUsage(start);
    elapsedMs = (used.user + used.system) / 1000;
  }
  return (ops * 1000) / elapsedMs;
}

interface Mode {
  name: string;
  compress: boolean;
  keyring: Keyring | null;
}
const MODES: Mode[] = [
  { name: 'plain', compress: false, keyring: null },
  { name: 'compressed', compress: true, keyring: null },
  { name: 'encrypted', compress: false, keyring: ring },
];

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(11);

export default async function run(): Promise<void> {
  const rows: string[] = [];
  const packetCases: Array<[string, Message[]]> = [
    ['ping', [ping]],
    ['alive', [alive(1)]],
    ['compound 8 alives', Array.from({ length: 8 }, (_, i) => alive(i))],
  ];
  rows.push(`${'case'.padEnd(34)}${'bytes'.padStart(7)}${'encode/s'.padStart(12)}${'decode/s'.padStart(12)}`);
  for (const [name, msgs] of packetCases) {
    for (const m of MODES) {
      const seal = { compress: m.compress, keyring: m.keyring, randomBytes: rnd, crc: true };
      const encodeOnce = (): Uint8Array => encodePacket(msgs.map(encodeMessage), seal);
      const bytes = encodeOnce();
      const open = { keyring: m.keyring, verifyIncoming: m.keyring !== null };
      const enc = rate(() => void encodeOnce());
      const dec = rate(() => void decodePacket(bytes, open));
      rows.push(`${`udp ${name} ${m.name}`.padEnd(34)}${String(bytes.length).padStart(7)}${fmt(enc)}${fmt(dec)}`);
    }
  }
  for (const m of MODES) {
    const seal = { compress: m.compress, keyring: m.keyring, randomBytes: rnd };
    const encodeOnce = (): Uint8Array => encodeStream(encodeMessage(pushPull), seal);
    const bytes = encodeOnce();
    const open = { keyring: m.keyring, verifyIncoming: m.keyring !== null };
    const enc = rate(() => void encodeOnce());
    const dec = rate(() => void decodeStream(bytes, open));
    rows.push(`${`tcp push/pull 100 nodes ${m.name}`.padEnd(34)}${String(bytes.length).padStart(7)}${fmt(enc)}${fmt(dec)}`);
  }
  console.log(rows.join('\n'));
}
