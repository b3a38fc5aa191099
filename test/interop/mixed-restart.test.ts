// Acceptance with real serf agents: a kodama agent whose member-join handler sleeps forever
// still tracks membership and runs its other handler promptly for later joins; killed with -9
// and restarted with the same -snapshot (and address) but no -join, it rejoins the cluster.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, rpcMembers, waitFor, waitStatuses } from './harness.ts';
import { startKodama, startSerf, stopAll } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-mixed-restart-'));
const hungPids = join(dir, 'hung.pids');
after(async () => {
  await stopAll();
  // kill -9 of kodama orphans its running handler (its own process group): kill those by pid
  const pids = existsSync(hungPids) ? readFileSync(hungPids, 'utf8').split('\n').filter((l) => /^\d+$/.test(l)) : [];
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test('hung handler blocks nothing; -snapshot restart rejoins a serf cluster without -join', { timeout: 120_000 }, async (t) => {
  const events = join(dir, 'events.log');
  const script = join(dir, 'record.sh');
  writeFileSync(script, `#!/bin/sh\nwhile read -r line; do echo "$SERF_EVENT $line" >> '${events}'; done\n`);
  chmodSync(script, 0o755);
  const read = (): string => (existsSync(events) ? readFileSync(events, 'utf8') : '');
  const snapshot = join(dir, 'kodama.snapshot');
  const kodamaArgs = [
    `-snapshot=${snapshot}`,
    `-event-handler=member-join=echo $$ >> '${hungPids}'; exec sleep 1000`,
    `-event-handler=member-join,member-failed=${script}`,
  ];

  const t0 = Date.now();
  const s1 = await startSerf('rs-serf-1');
  const k = await startKodama('rs-kodama', { args: kodamaArgs, join: [`127.0.0.1:${s1.port}`] });
  await waitStatuses(k.rpcAddr, { 'rs-serf-1': 'alive', 'rs-kodama': 'alive' }, 20_000, () => k.output());
  await waitFor('the hung handler started', 15_000, () => (existsSync(hungPids) ? true : undefined), () => k.output());

  // a later join: membership and the other handler are not held up by the sleeping one
  const joinAt = Date.now();
  await startSerf('rs-serf-2', { join: [`127.0.0.1:${s1.port}`] });
  await waitStatuses(k.rpcAddr, { 'rs-serf-2': 'alive' }, 15_000, () => k.output());
  const seenMs = Date.now() - joinAt;
  await waitFor('record handler ran for rs-serf-2', 15_000, () => (/^member-join rs-serf-2\s+127\.0\.0\.1/m.test(read()) ? true : undefined), () => read() + k.output());
  const handledMs = Date.now() - joinAt;
  t.diagnostic(`with a hung handler: rs-serf-2 alive in kodama's view after ${seenMs} ms, other handler ran after ${handledMs} ms`);
  assert.ok(handledMs < 12_000, `handler ran ${handledMs} ms after the join`);

  // kill -9, then restart from the snapshot without -join, on the same address
  await new Promise((r) => setTimeout(r, 1000)); // the snapshot flushes every 500 ms
  k.signal('SIGKILL');
  await exitWithin(k, 5_000);
  await waitStatuses(s1.rpcAddr, { 'rs-kodama': 'failed' }, 30_000, () => s1.output());
  assert.match(readFileSync(snapshot, 'utf8'), /^alive: rs-serf-2 127\.0\.0\.1:\d+$/m);
  const k2 = await startKodama('rs-kodama', { args: kodamaArgs, port: k.port });
  await waitStatuses(s1.rpcAddr, { 'rs-kodama': 'alive' }, 20_000, () => k2.output() + s1.output());
  const view = await rpcMembers(k2.rpcAddr);
  assert.deepEqual(view?.filter((m) => m.status === 'alive').map((m) => m.name).sort(), ['rs-kodama', 'rs-serf-1', 'rs-serf-2']);
  assert.match(k2.output(), /Attempting re-join to previously known node/);
  t.diagnostic(`snapshot restart rejoined after ${Date.now() - t0} ms total`);
});
