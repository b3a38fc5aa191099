// The demo's traffic lines: every second at a terminal; off one (a log file, a pipe) only when the
// answering nodes change, failures start or stop, or every 10 s. A virtual clock and records made
// up per second; the view's own timers are off (trafficEveryMs 0, traffic() called per second).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent.ts';
import { LiveView, Printer, TRAFFIC_QUIET_MAX_MS } from '../../src/demo/live-view.ts';
import type { RequestRecord } from '../../src/demo/loadgen.ts';

const fakeAgent = { nodeName: 'balancer', on: () => () => undefined } as unknown as Agent;

interface Run {
  /** One simulated second: `answers` per node, `failed` failures; returns the lines it printed. */
  second(answers: Record<string, number>, failed?: number): string[];
  stop(): void;
}

function run(terminal: boolean | undefined): Run {
  let now = 1_000_000;
  const records: RequestRecord[] = [];
  const out: string[] = [];
  const view = new LiveView({
    agent: fakeAgent,
    role: () => undefined,
    service: 'web',
    records: () => records,
    printer: new Printer((t) => out.push(t)),
    pollMs: 3_600_000,
    trafficEveryMs: 0,
    ...(terminal !== undefined ? { terminal } : {}),
    now: () => now,
  });
  const rec = (node: string | undefined, ok: boolean): RequestRecord => ({ startMs: now + 100, endMs: now + 500, latencyMs: 400, ok, status: ok ? 200 : 0, node, error: ok ? undefined : 'ECONNREFUSED' });
  return {
    second(answers, failed = 0) {
      for (const [node, n] of Object.entries(answers)) for (let i = 0; i < n; i++) records.push(rec(node, true));
      for (let i = 0; i < failed; i++) records.push(rec(undefined, false));
      now += 1000;
      const before = out.length;
      view.traffic();
      return out.slice(before).map((l) => l.replace(/^\[[ \d.]+s\] /, '').trimEnd());
    },
    stop: () => view.stop(),
  };
}

test('at a terminal (and by default): a traffic line every second, steady or not', () => {
  for (const terminal of [true, undefined]) {
    const r = run(terminal);
    for (let i = 0; i < 5; i++) assert.deepEqual(r.second({ 'web-1': 40, 'web-2': 40 }), ['traffic: 80 req/s  [web-1 40 | web-2 40]  failed 0']);
    r.stop();
  }
});

test('off a terminal: a line when the answering nodes change or failures start or stop, otherwise every 10 s', () => {
  const r = run(false);
  const steady = { 'web-1': 40, 'web-2': 40 };
  assert.deepEqual(r.second(steady), ['traffic: 80 req/s  [web-1 40 | web-2 40]  failed 0'], 'the first measure');
  for (let i = 0; i < 5; i++) assert.deepEqual(r.second(steady), [], 'nothing new');
  assert.deepEqual(r.second({ ...steady, 'web-3': 20 }), ['traffic: 100 req/s  [web-1 40 | web-2 40 | web-3 20]  failed 0'], 'a node joins');
  assert.deepEqual(r.second({ ...steady, 'web-3': 40 }), [], 'only its rate moved');
  assert.deepEqual(r.second({ 'web-1': 40, 'web-2': 40, 'web-3': 30 }, 3), ['traffic: 110 req/s  [web-1 40 | web-2 40 | web-3 30]  failed 3'], 'failures start');
  assert.deepEqual(r.second({ 'web-1': 40, 'web-2': 40, 'web-3': 30 }, 5), [], 'still failing');
  assert.deepEqual(r.second({ 'web-1': 60, 'web-2': 60 }), ['traffic: 120 req/s  [web-1 60 | web-2 60]  failed 0'], 'web-3 gone, failures over');

  // Steady from here: one line per TRAFFIC_QUIET_MAX_MS, however long it runs.
  const printed: number[] = [];
  for (let s = 1; s <= 35; s++) if (r.second({ 'web-1': 60, 'web-2': 60 }).length > 0) printed.push(s);
  const every = TRAFFIC_QUIET_MAX_MS / 1000;
  assert.deepEqual(printed, [every, 2 * every, 3 * every]);
  assert.deepEqual(r.second({}), ['traffic: 0 req/s  [no answers]  failed 0'], 'every node silent is a change too');
  r.stop();
});
