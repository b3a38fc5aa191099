// The monitor role on real in-process agents (gossip on 127.0.0.1): a monitor with a script
// handler appending one line per alert to a file, and a web node whose `chk` tag is set by hand.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/index.ts';
import type { AgentOptions } from '../../src/index.ts';
import { encodeSilencesAnswer, startMonitorRole } from '../../src/checks/monitor-role.ts';
import type { MonitorRole, SilencesAnswer } from '../../src/checks/monitor-role.ts';
import { encodeSilenceOp } from '../../src/checks/silences.ts';
import { SILENCES_QUERY, SILENCE_EVENT } from '../../src/checks/types.ts';
import type { HandlerFilters, MonitoringSpec } from '../../src/checks/types.ts';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
});

const FILTERS: HandlerFilters = { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true };

function agent(name: string, lines: string[], extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'INFO',
    logSink: (l) => lines.push(l),
    leavePropagateDelayMs: 200,
    broadcastTimeoutMs: 2000,
    ...extra,
  });
  cleanup.push(() => a.stop());
  return a;
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Pushable = Agent & { pushCheckResult?: (check: string, status: 0 | 1 | 2 | 3, output: string) => string | undefined };
const LETTER = ['p', 'w', 'c', 'u'] as const;

/**
 * Put web-1's checks into the given states (name → status). The agent owns the `chk` tag when it
 * runs checks: results are pushed to its TTL checks; an agent without that API takes the tag by hand.
 */
function setChecks(web: Pushable, states: Record<string, 0 | 1 | 2 | 3>, occ = 1): void {
  if (typeof web.pushCheckResult === 'function') {
    for (const [name, st] of Object.entries(states)) {
      for (let i = 0; i < occ; i++) assert.equal(web.pushCheckResult(name, st, `${name} ${st}`), undefined);
    }
    return;
  }
  const bad = Object.entries(states).filter(([, st]) => st !== 0);
  const total = Object.keys(states).length;
  web.setTags({ role: 'web', chk: bad.length === 0 ? String(total) : `${total};${bad.map(([n, st]) => `${n}=${LETTER[st]}${occ}`).join(',')}` });
}

/** A monitor agent with a script handler writing "<action> <node> <check> <state>" lines. */
async function cluster(checks: string[]): Promise<{
  mon: Agent;
  web: Pushable;
  role: MonitorRole;
  out: string;
  logs: string[];
  alerts: () => string[];
  monitor: (name: string) => Promise<{ agent: Agent; role: MonitorRole }>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-monrole-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'alerts');
  const spec: MonitoringSpec = {
    handlers: [{ name: 'ops', type: 'script', command: `cat > /dev/null; echo "$KODAMA_ALERT_ACTION $KODAMA_ALERT_NODE $KODAMA_ALERT_CHECK $KODAMA_ALERT_STATE" >> ${out}`, timeoutMs: 5000, filters: FILTERS }],
    defaultHandlers: ['ops'],
    memberHandlers: ['ops'],
  };
  const logs: string[] = [];
  // `monitoring` makes an agent tag itself mon=1 (an older agent takes the tag as given).
  const monitor = async (name: string, lines: string[] = []): Promise<{ agent: Agent; role: MonitorRole }> => {
    const a = agent(name, lines, { tags: { mon: '1' }, monitoring: spec } as Partial<AgentOptions>);
    await a.start();
    // An agent that starts the role itself (AgentOptions.monitoring) has it already; else start it here.
    const own = (a as Agent & { monitorRole?: MonitorRole }).monitorRole;
    const r = own ?? (await startMonitorRole(a, spec));
    if (own === undefined) cleanup.push(() => r.stop());
    return { agent: a, role: r };
  };
  const { agent: mon, role } = await monitor('mon-1', logs);
  const web = agent('web-1', [], {
    tags: { role: 'web' },
    checks: checks.map((name) => ({ name, intervalMs: 3_600_000, subscriptions: [], ttlMs: 3_600_000, ttlStatus: 2, lowFlapThreshold: 0, highFlapThreshold: 0 })),
  } as Partial<AgentOptions>);
  await web.start();
  const r = await web.join([`127.0.0.1:${mon.bindAddress.port}`]);
  assert.equal(r.num, 1);
  await until('mon-1 sees web-1 alive', 10_000, () => mon.members().some((m) => m.name === 'web-1' && m.status === 'alive'));
  const alerts = (): string[] => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((l) => l !== '') : []);
  return { mon, web, role, out, logs, alerts, monitor };
}

test('chk tag c1 → one create; back to passing → one resolve; killed without leave → one member alert', async () => {
  const { mon, web, role, logs, alerts } = await cluster(['disk', 'load']);
  assert.equal(role.core.isLeader(), true);
  setChecks(web, { disk: 2, load: 0 });
  await until('a create', 10_000, () => alerts().length >= 1);
  setChecks(web, { disk: 2 }); // same state, one more occurrence: no new alert
  await until('mon-1 sees c2', 10_000, () => /disk=c2/.test(mon.members().find((m) => m.name === 'web-1')?.tags['chk'] ?? ''));
  setChecks(web, { disk: 0, load: 0 });
  await until('a resolve', 10_000, () => alerts().length >= 2);
  await sleep(300);
  assert.deepEqual(alerts(), ['create web-1 disk critical', 'resolve web-1 disk passing']);
  assert.ok(logs.some((l) => l.includes('monitor: alert create web-1/disk critical → ops')), logs.join('\n'));

  await web.stop(); // no leave: a crash as the cluster sees it
  // The last two nodes: nobody can confirm the suspicion, Lifeguard waits its maximum (~18 s).
  await until('a member alert', 40_000, () => alerts().length >= 3);
  await sleep(500);
  assert.deepEqual(alerts().slice(2), ['create web-1 member critical']);
  const c = role.counters();
  assert.equal(c['handler_runs'], 3);
  assert.equal(c['handler_failures'], 0);
});

test('graceful leave: no alert, even with an open incident; silences arrive by user event and are listed by query', async () => {
  const { mon, web, role, alerts, monitor } = await cluster(['disk', 'load']);
  // Silence web-1's disk from the other node; the monitor applies it and answers the list query.
  web.userEvent(SILENCE_EVENT, encodeSilenceOp({ op: 'add', silence: { id: 'maint-1', node: 'web-1', check: 'disk', reason: 'disk swap', createdAt: Date.now(), expiresAt: Date.now() + 3_600_000 } }), false);
  web.userEvent(SILENCE_EVENT, '{"op":"add"', false); // garbage: logged, counted, ignored
  await until('the silence applied', 10_000, () => role.silences().length === 1 && (role.counters()['silence_events_rejected'] ?? 0) === 1);
  const q = await web.query({ name: SILENCES_QUERY, payload: new Uint8Array(0), timeoutMs: 2000 });
  const answer = JSON.parse(new TextDecoder().decode(q.responses.get('mon-1'))) as SilencesAnswer;
  assert.deepEqual(answer.silences.map((s) => s.id), ['maint-1']);
  assert.equal(answer.truncated, undefined);

  setChecks(web, { disk: 2, load: 1 });
  await until('the load warning', 10_000, () => alerts().length >= 1);
  await sleep(300);
  assert.deepEqual(alerts(), ['create web-1 load warning'], 'disk is silenced');
  // A second monitor (same handler, same file) joins late: it learns the silence from mon-1 and
  // shadows, so nothing below is alerted twice.
  const mon2 = await monitor('mon-2');
  assert.equal((await mon2.agent.join([`127.0.0.1:${mon.bindAddress.port}`])).num, 1);
  await until('mon-2 synced the silence', 15_000, () => mon2.role.silences().some((x) => x.id === 'maint-1'));
  await until('mon-2 sees web-1', 10_000, () => mon2.agent.members().some((m) => m.name === 'web-1' && m.status === 'alive'));
  assert.equal(mon2.role.core.isLeader(), false);
  web.userEvent(SILENCE_EVENT, encodeSilenceOp({ op: 'remove', id: 'maint-1' }), false);
  await until('the held disk alert', 10_000, () => alerts().length >= 2);
  await until('mon-2 applied the removal', 10_000, () => mon2.role.silences().length === 0);
  await sleep(2500); // past mon-2's settle window: anything it wrongly held would be out by now
  assert.deepEqual(alerts().slice(1), ['create web-1 disk critical']);
  assert.ok((mon2.role.counters()['core_alerts_shadowed'] ?? 0) >= 1, 'mon-2 decided the same alerts and kept them to itself');

  await web.leave();
  await until('mon-1 records web-1 left', 15_000, () => mon.members().find((m) => m.name === 'web-1')?.status === 'left');
  await web.stop();
  await sleep(1500);
  assert.equal(alerts().length, 2, `no alert after a leave: ${alerts().join(' | ')}`);
  assert.equal(role.core.counters()['incidents_open'], 0);
});

test('kodama-silences answer: newest first, within 1024 bytes, says when truncated', () => {
  const now = Date.now();
  const many = Array.from({ length: 40 }, (_, i) => ({ id: `s-${String(i).padStart(2, '0')}`, node: `web-${i}`, reason: 'kernel upgrade window', createdAt: now - i, expiresAt: now + 3_600_000 }));
  const bytes = encodeSilencesAnswer('mon-1', many);
  assert.ok(bytes.byteLength <= 1024, `${bytes.byteLength} bytes`);
  const a = JSON.parse(new TextDecoder().decode(bytes)) as SilencesAnswer;
  assert.equal(a.truncated, true);
  assert.equal(a.total, 40);
  assert.ok(a.silences.length > 3 && a.silences.length < 40);
  assert.deepEqual(a.silences.map((x) => x.id), many.slice(0, a.silences.length).map((x) => x.id), 'the newest kept, in order');
  const few = JSON.parse(new TextDecoder().decode(encodeSilencesAnswer('mon-1', many.slice(0, 2)))) as SilencesAnswer;
  assert.equal(few.truncated, undefined);
  assert.equal(few.silences.length, 2);
});
