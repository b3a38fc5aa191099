// kill -9 at random moments while the agent's state files are being written (issue 13): a real
// process (test/agent/crash-writer.ts) writes the snapshot — member churn, user events, the member
// clock, compacting every few hundred bytes — or the deploy state file as fast as it can, and is
// killed with SIGKILL 20 times at random (seeded) moments. After every kill the file must be whole
// (the snapshot replays with no bad line and no unknown member; the deploy state loads), nothing
// it had written must be lost (clocks and steps never go back), and the next process carries on
// from it. How many kills caught a compaction or a state write in flight is printed.

import { test } from 'node:test';
import { mulberry32 } from '../lib/random.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaySnapshot } from '../../src/agent/snapshot.ts';
import { loadDeploys } from '../../src/deploy/state-file.ts';

const KILLS = 20;
const WRITER = new URL('./crash-writer.ts', import.meta.url).pathname;
const NAMES = new Set(['a', 'b', 'c', 'd', 'e', 'f']);


/** Start the writer, wait for its `ready` line (what it found), let it write for `ms`, SIGKILL it. */
async function runAndKill(kind: string, path: string, ms: number): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, kind, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const deadline = Date.now() + 20_000;
  while (!out.includes('\n') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const line = out.split('\n')[0] ?? '';
  if (!line.startsWith('ready ')) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`the ${kind} writer did not start (exit ${child.exitCode}): ${out}${err}`);
  }
  await new Promise((r) => setTimeout(r, ms));
  child.kill('SIGKILL');
  await exited;
  assert.equal(child.signalCode, 'SIGKILL', `the writer died of the kill, not of an error: ${err}`);
  return JSON.parse(line.slice('ready '.length)) as Record<string, number>;
}

test(`kill -9 of a process writing the snapshot, ${KILLS} times at random moments: the file replays whole every time and no clock goes back`, { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env['KODAMA_CRASH_SEED'] ?? Date.now() % 1_000_000);
  const random = mulberry32(seed);
  const dir = mkdtempSync(join(tmpdir(), 'kodama-crash-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'serf.snapshot');
  let last = { clock: 0, eventClock: 0 };
  let midCompaction = 0;
  let sizes = 0;
  for (let k = 0; k < KILLS; k++) {
    const ready = await runAndKill('snapshot', path, 20 + Math.floor(random() * 300));
    assert.equal(ready['torn'], 0, `seed ${seed}, kill ${k}: the file ended in half a line`);
    if (existsSync(`${path}.compact`)) midCompaction++;
    const text = readFileSync(path, 'utf8');
    sizes += text.length;
    const r = replaySnapshot(text);
    assert.equal(r.badLines, 0, `seed ${seed}, kill ${k}: bad lines in\n${text}`);
    for (const n of r.aliveNodes) assert.ok(NAMES.has(n.name) && n.addr.startsWith('10.0.0.1:'), `seed ${seed}, kill ${k}: unknown member ${JSON.stringify(n)}`);
    assert.ok(r.lastClock >= last.clock && r.lastEventClock >= last.eventClock, `seed ${seed}, kill ${k}: a clock went back (${JSON.stringify(last)} → ${r.lastClock}/${r.lastEventClock})`);
    assert.ok(r.lastEventClock > last.eventClock, `seed ${seed}, kill ${k}: the writer wrote nothing before the kill (else this tests nothing)`);
    last = { clock: r.lastClock, eventClock: r.lastEventClock };
  }
  t.diagnostic(`seed ${seed}: ${KILLS} kills, ${midCompaction} in the middle of a compaction (a .compact file left), final event clock ${last.eventClock}, mean file ${Math.round(sizes / KILLS)} bytes`);
});

test(`kill -9 of a process writing the deploy state, ${KILLS} times at random moments: the file always loads, no step is lost, no temporary file piles up`, { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env['KODAMA_CRASH_SEED'] ?? Date.now() % 1_000_000);
  const random = mulberry32(seed + 1);
  const dir = mkdtempSync(join(tmpdir(), 'kodama-crash-deploys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let step = 0;
  let inFlight = 0;
  for (let k = 0; k < KILLS; k++) {
    const ready = await runAndKill('deploys', dir, 20 + Math.floor(random() * 300));
    assert.ok((ready['removed'] ?? 0) <= 1, `seed ${seed}, kill ${k}: at most the one write the last kill interrupted`);
    const temps = readdirSync(join(dir, 'deploys')).filter((n) => n.endsWith('.tmp'));
    if (temps.length > 0) inFlight++;
    const s = await loadDeploys(dir); // throws on a torn or corrupt file
    const now = s.current?.step ?? 0;
    assert.ok(now > step, `seed ${seed}, kill ${k}: steps move on (${step} → ${now})`);
    step = now;
  }
  const final = await runAndKill('deploys', dir, 0);
  t.diagnostic(`seed ${seed}: ${KILLS} kills, ${inFlight} with a write in flight (its temporary file left, removed by the next start: ${final['removed'] ?? 0} at the last), last step ${step}`);
  assert.equal(readdirSync(join(dir, 'deploys')).filter((n) => n.endsWith('.tmp')).length <= 1, true);
});
