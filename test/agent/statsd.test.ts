// statsd_addr / statsite_addr side by side with the real serf: a UDP listener (statsd) and a TCP
// listener (statsite) of the test's own receive what a `serf agent` and a `kodama agent` with
// those config keys send. Both speak the statsd line format; kodama's lines carry the /metrics
// figures and move with the cluster (a second node joins → members.alive goes from 1 to 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, stopAll } from '../lib/agents.ts';
import { waitFor } from '../interop/harness.ts';
import { packDatagrams, statsdLines } from '../../src/agent/statsd.ts';

const LINE = /^[^:\s|]+:-?\d+(\.\d+)?(e[-+]?\d+)?\|(c|g|ms|h|s)(\|@[\d.]+)?$/;

test('statsd lines: gauges as values, counters as increases, the histogram as count and mean; datagrams ≤ 1432 bytes', () => {
  const last = new Map<string, number>();
  const fam = (v: number, c: number) => [
    { name: 'kodama_members', help: '', type: 'gauge' as const, samples: [{ labels: { status: 'alive' }, value: v }] },
    { name: 'kodama_probes_total', help: '', type: 'counter' as const, samples: [{ value: c }] },
    { name: 'kodama_probe_rtt_seconds', help: '', type: 'histogram' as const, samples: [], histogram: { bounds: [0.001], counts: [c], sum: c * 0.0005, count: c } },
  ];
  assert.deepEqual(statsdLines(fam(3, 10), 'kodama.n1', last), ['kodama.n1.members.alive:3|g', 'kodama.n1.probes_total:10|c', 'kodama.n1.probe_rtt_seconds.count:10|c', 'kodama.n1.probe_rtt_seconds:0.500000|ms']);
  assert.deepEqual(statsdLines(fam(2, 14), 'kodama.n1', last), ['kodama.n1.members.alive:2|g', 'kodama.n1.probes_total:4|c', 'kodama.n1.probe_rtt_seconds.count:4|c', 'kodama.n1.probe_rtt_seconds:0.500000|ms']);
  const packed = packDatagrams(Array.from({ length: 200 }, (_, i) => `kodama.n1.some_metric_name.${i}:${i}|g`));
  assert.ok(packed.length > 1 && packed.every((d) => Buffer.byteLength(d) <= 1432));
  assert.equal(packed.join('\n').split('\n').length, 200);
});

test('statsd_addr and statsite_addr: serf and kodama agents send statsd lines to our listeners; kodama\'s follow the cluster', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-statsd-'));
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const got: string[] = [];
  udp.on('message', (m) => got.push(...m.toString().split('\n').filter((l) => l !== '')));
  const tcpLines: string[] = [];
  const site = createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      tcpLines.push(...parts.filter((l) => l !== ''));
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  t.after(async () => {
    await stopAll();
    udp.close();
    site.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const conf = join(dir, 'stats.json');
  writeFileSync(conf, JSON.stringify({ statsd_addr: `127.0.0.1:${(udp.address() as AddressInfo).port}`, statsite_addr: `127.0.0.1:${(site.address() as AddressInfo).port}` }));

  const serf = await startAgent('serf', 'st-serf', { args: ['-config-file', conf] });
  const serfLines = await waitFor('serf to send statsd lines', 30_000, () => (got.some((l) => l.startsWith('serf-agent.')) ? got.filter((l) => l.startsWith('serf-agent.')) : undefined));
  for (const l of serfLines) assert.match(l, LINE, `serf's own line: ${l}`);

  const k1 = await startAgent('kodama', 'st-k1', { args: ['-config-file', conf], join: [serf.addr] });
  // The first flush comes 10 s after the start.
  await waitFor('kodama to send members.alive 2', 30_000, () => (got.includes('kodama.st-k1.members.alive:2|g') ? true : undefined), () => got.filter((l) => l.includes('members')).join('\n'));
  const kodamaLines = got.filter((l) => l.startsWith('kodama.st-k1.'));
  for (const l of kodamaLines) assert.match(l, LINE, `kodama's line: ${l}`);
  for (const name of ['gossip_packets_received_total', 'probes_total', 'handler_runs_total', 'queue_depth.event']) {
    assert.ok(kodamaLines.some((l) => l.startsWith(`kodama.st-k1.${name}:`)), `a ${name} line`);
  }
  await waitFor('the same figures on the statsite connection, from both', 30_000, () =>
    tcpLines.some((l) => l.startsWith('kodama.st-k1.members.alive:')) && tcpLines.some((l) => l.startsWith('serf-agent.')) ? true : undefined,
  );
  for (const l of tcpLines) assert.match(l, LINE, `statsite line: ${l}`);

  // A third node: kodama's gauge follows.
  await startAgent('kodama', 'st-k2', { join: [serf.addr] });
  await waitFor('kodama to send members.alive 3', 30_000, () => (got.includes('kodama.st-k1.members.alive:3|g') ? true : undefined));
  t.diagnostic(`serf sent ${serfLines.length}+ lines (e.g. ${serfLines[0]}); kodama ${kodamaLines.length} per flush (e.g. ${kodamaLines.find((l) => l.includes('members.alive'))})`);
  void k1;
});
