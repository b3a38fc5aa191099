import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MonitorCore } from '../../src/checks/monitor.ts';
import type { MonitorEventType, MonitorMember } from '../../src/checks/monitor.ts';
import type { HandlerFilters, HandlerSpec, MonitoringSpec } from '../../src/checks/types.ts';

const T0 = 1_700_000_000_000;
const DEFAULT_FILTERS: HandlerFilters = { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true };

function spec(filters: Partial<HandlerFilters> = {}, extra: HandlerSpec[] = []): MonitoringSpec {
  return {
    handlers: [{ name: 'ops', type: 'log', filters: { ...DEFAULT_FILTERS, ...filters } }, ...extra],
    defaultHandlers: ['ops'],
    memberHandlers: ['ops'],
  };
}

function mem(name: string, status: MonitorMember['status'], chk?: string, tags: Record<string, string> = {}): MonitorMember {
  return { name, addr: '10.0.0.1', status, tags: { role: name.replace(/-\d+$/, ''), ...(chk !== undefined ? { chk } : {}), ...tags } };
}
const MON = (name: string, status: MonitorMember['status'] = 'alive'): MonitorMember => mem(name, status, undefined, { mon: '1' });

/** Drained alerts as "handler action node/check state" lines. */
function drain(core: MonitorCore): string[] {
  return core.pollAlerts().map((a) => `${a.handler} ${a.event.action} ${a.event.entity.name}/${a.event.check.name} ${a.event.check.state}`);
}

function ev(core: MonitorCore, type: MonitorEventType, m: MonitorMember, now = T0): string[] {
  core.handleMemberEvent(type, [m], now);
  return drain(core);
}

test('2 of 5 web nodes failing with occurrences 3: exactly one create per failing node at 3, one resolve each on recovery', () => {
  const core = new MonitorCore('mon-1', spec({ occurrences: 3 }));
  const webs = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
  core.handleMembers([MON('mon-1'), ...webs.map((w) => mem(w, 'alive', '2'))], T0);
  assert.deepEqual(drain(core), []);
  const all: string[] = [];
  for (let occ = 1; occ <= 20; occ++) {
    for (const w of webs) {
      const failing = w === 'web-2' || w === 'web-4';
      all.push(...ev(core, 'member-update', mem(w, 'alive', failing ? `2;disk=c${occ}` : '2'), T0 + occ));
    }
    if (occ === 2) assert.deepEqual(all, [], 'nothing before occurrences reach 3');
  }
  assert.deepEqual(all, ['ops create web-2/disk critical', 'ops create web-4/disk critical']);
  // The tag stops changing at 20; repeated identical updates alert nothing.
  assert.deepEqual(ev(core, 'member-update', mem('web-2', 'alive', '2;disk=c20')), []);
  const rec = [...webs.flatMap((w) => ev(core, 'member-update', mem(w, 'alive', '2'))), ...webs.flatMap((w) => ev(core, 'member-update', mem(w, 'alive', '2')))];
  assert.deepEqual(rec, ['ops resolve web-2/disk passing', 'ops resolve web-4/disk passing']);
  assert.equal(core.counters()['alerts_create'], 2);
  assert.equal(core.counters()['alerts_resolve'], 2);
  assert.equal(core.counters()['incidents_open'], 0);
});

test('an incident that recovers before reaching occurrences alerts nothing, not even a resolve', () => {
  const core = new MonitorCore('mon-1', spec({ occurrences: 3 }));
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1;disk=c1')), []);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1;disk=c2')), []);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1')), []);
});

test('filters, table-driven: severities, severity changes, state_changes_only=false', () => {
  const rows: { name: string; filters: Partial<HandlerFilters>; tags: string[]; want: string[] }[] = [
    { name: 'severity change alerts again', filters: {}, tags: ['1;d=w1', '1;d=w2', '1;d=c1', '1;d=c2', '1'], want: ['create warning', 'create critical', 'resolve passing'] },
    { name: 'severities [critical]: warning is not alerted', filters: { severities: ['critical'] }, tags: ['1;d=w1', '1;d=w5', '1'], want: [] },
    { name: 'severities [critical]: warning→critical→warning→passing', filters: { severities: ['critical'] }, tags: ['1;d=w1', '1;d=c1', '1;d=w1', '1'], want: ['create critical', 'resolve passing'] },
    { name: 'unknown is a severity', filters: {}, tags: ['1;d=u1', '1'], want: ['create unknown', 'resolve passing'] },
    { name: 'state_changes_only=false: every tag update', filters: { stateChangesOnly: false }, tags: ['1;d=c1', '1;d=c2', '1;d=c3', '1;d=c3', '1'], want: ['create critical', 'create critical', 'create critical', 'resolve passing'] },
    { name: 'occurrences count per status', filters: { occurrences: 2 }, tags: ['1;d=w1', '1;d=c1', '1;d=w1', '1;d=c1', '1;d=c2', '1'], want: ['create critical', 'resolve passing'] },
    { name: 'occurrences above the tag cap read as the cap', filters: { occurrences: 50 }, tags: ['1;d=c19', '1;d=c20', '1'], want: ['create critical', 'resolve passing'] },
  ];
  for (const r of rows) {
    const core = new MonitorCore('mon-1', spec(r.filters));
    core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
    const got = r.tags.flatMap((t, i) => ev(core, 'member-update', mem('web-1', 'alive', t), T0 + i)).map((l) => l.replace(/^ops (\w+) web-1\/d /, '$1 '));
    assert.deepEqual(got, r.want, r.name);
  }
});

test('flapping: one flapping event per episode, no create/resolve while flapping', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
  const got = ['1;d=c1f', '1;d=p1f', '1;d=c1f', '1;d=w1f', '1;d=c2', '1', '1;d=c1f', '1'].flatMap((t) => ev(core, 'member-update', mem('web-1', 'alive', t)));
  assert.deepEqual(got, [
    'ops flapping web-1/d critical',
    'ops create web-1/d critical', // stopped flapping while critical
    'ops resolve web-1/d passing',
    'ops flapping web-1/d critical', // a new episode
  ]);
});

test('silence: held while in force, alerts when it expires (pollTimeout says when); nothing if it recovered meanwhile', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1'), mem('web-2', 'alive', '1')], T0);
  core.handleSilenceOp({ op: 'add', silence: { id: 's1', role: 'web', check: 'disk', expiresAt: T0 + 60_000, createdAt: T0 } }, T0);
  assert.equal(core.pollTimeout(), T0 + 60_000);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1;disk=c1')), []);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1;disk=c2')), []);
  assert.deepEqual(ev(core, 'member-update', mem('web-2', 'alive', '1;disk=c1')), []);
  assert.deepEqual(ev(core, 'member-update', mem('web-2', 'alive', '1')), [], 'recovered while silenced: no resolve either');
  core.handleTimeout(T0 + 59_999);
  assert.deepEqual(drain(core), []);
  assert.equal(core.counters()['alerts_held_silenced'], 2, 'one hold per incident, however often re-evaluated');
  core.handleTimeout(T0 + 60_000);
  assert.deepEqual(drain(core), ['ops create web-1/disk critical']);
  assert.equal(core.pollTimeout(), undefined);
  assert.equal(core.silences().length, 0);
});

test('silence removal releases held incidents; a silence not matching does not hold; not_silenced=false ignores silences', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1'), mem('db-1', 'alive', '1')], T0);
  core.handleSilenceOp({ op: 'add', silence: { id: 's1', node: 'web-1', createdAt: T0 } }, T0);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '1;disk=c1')), []);
  assert.deepEqual(ev(core, 'member-update', mem('db-1', 'alive', '1;disk=c1')), ['ops create db-1/disk critical']);
  core.handleSilenceOp({ op: 'remove', id: 's1' }, T0 + 5);
  assert.deepEqual(drain(core), ['ops create web-1/disk critical']);
  core.handleSilenceOp({ op: 'remove', id: 's1' }, T0 + 6);
  assert.equal(core.counters()['silence_ops_refused'], 1);

  const loud = new MonitorCore('mon-1', spec({ notSilenced: false }));
  loud.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
  loud.handleSilenceOp({ op: 'add', silence: { id: 's1', node: 'web-1', createdAt: T0 } }, T0);
  const got = loud.handleMemberEvent('member-update', [mem('web-1', 'alive', '1;disk=c1')], T0);
  assert.equal(got, undefined);
  const alerts = loud.pollAlerts();
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]?.event.check.silenced, true, 'the event says it was silenced');
});

test('member failed: one member create, no check alerts while failed; rejoin resolves and re-evaluates checks', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
  assert.deepEqual(ev(core, 'member-failed', mem('web-1', 'failed', '1')), ['ops create web-1/member critical']);
  assert.deepEqual(ev(core, 'member-failed', mem('web-1', 'failed', '1')), [], 'a repeated failure is not a second alert');
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'failed', '1;disk=c5')), [], 'dependency: no check alerts while failed');
  assert.deepEqual(ev(core, 'member-join', mem('web-1', 'alive', '1;disk=c5')), ['ops resolve web-1/member passing', 'ops create web-1/disk critical']);
  const a = new MonitorCore('mon-1', spec());
  a.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1')], T0);
  a.handleMemberEvent('member-failed', [mem('web-1', 'failed', '1')], T0);
  const [alert] = a.pollAlerts();
  assert.equal(alert?.event.kind, 'member');
  assert.equal(alert?.event.check.status, 2);
  assert.equal(alert?.event.entity.address, '10.0.0.1');
  assert.equal(alert?.event.monitor, 'mon-1');
});

test('a serf agent (no chk tag) that fails alerts too', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), { name: 'serf-1', addr: '10.0.0.9', status: 'alive', tags: {} }], T0);
  assert.deepEqual(ev(core, 'member-failed', { name: 'serf-1', addr: '10.0.0.9', status: 'failed', tags: {} }), ['ops create serf-1/member critical']);
});

test('leave / left: no alert, no resolve; incidents dropped; failed then left is dropped silently too', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1;disk=c3'), mem('web-2', 'alive', '1')], T0);
  assert.deepEqual(drain(core), ['ops create web-1/disk critical']);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'leaving', '1;disk=c3')), []);
  assert.deepEqual(ev(core, 'member-leave', mem('web-1', 'left', '1;disk=c3')), []);
  assert.equal(core.counters()['incidents_open'], 0);
  assert.deepEqual(ev(core, 'member-failed', mem('web-2', 'failed', '1')), ['ops create web-2/member critical']);
  assert.deepEqual(ev(core, 'member-leave', mem('web-2', 'left', '1')), []);
  assert.equal(core.counters()['incidents_open'], 0);
  // Back after a leave: a fresh start, its failing check alerts anew.
  assert.deepEqual(ev(core, 'member-join', mem('web-1', 'alive', '1;disk=c1')), ['ops create web-1/disk critical']);
});

test('reap clears all state: a later join with the same failing tag is a new incident', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1;disk=c3')], T0);
  drain(core);
  assert.deepEqual(ev(core, 'member-failed', mem('web-1', 'failed', '1;disk=c3')), ['ops create web-1/member critical']);
  assert.deepEqual(ev(core, 'member-reap', mem('web-1', 'failed', '1;disk=c3')), []);
  assert.equal(core.counters()['incidents_open'], 0);
  assert.deepEqual(ev(core, 'member-join', mem('web-1', 'alive', '1;disk=c3')), ['ops create web-1/disk critical']);
  // handleMembers with a view lacking a member forgets it as a reap does.
  core.handleMembers([MON('mon-1')], T0);
  assert.equal(core.counters()['incidents_open'], 0);
});

test('a malformed chk tag is counted and changes nothing; entries left out for size (+K) are not resolved', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '3;disk=c1,load=w1')], T0);
  assert.deepEqual(drain(core).sort(), ['ops create web-1/disk critical', 'ops create web-1/load warning']);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '3;disk=zz')), []);
  assert.equal(core.counters()['summaries_malformed'], 1);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '3;disk=c2,+1')), [], 'load may be among the omitted');
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '3;disk=c2')), ['ops resolve web-1/load passing']);
});

test('handlers: per check (checkHandlers), defaults otherwise, member_handlers for member alerts; unknown names counted', () => {
  const s: MonitoringSpec = {
    handlers: [
      { name: 'ops', type: 'log', filters: DEFAULT_FILTERS },
      { name: 'audit', type: 'log', filters: DEFAULT_FILTERS },
      { name: 'pager', type: 'log', filters: { ...DEFAULT_FILTERS, occurrences: 2 } },
    ],
    defaultHandlers: ['ops', 'audit'],
    memberHandlers: ['pager'],
  };
  const core = new MonitorCore('mon-1', s, (check) => (check === 'disk' ? ['pager', 'nope'] : []));
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '2;disk=c1,load=c1')], T0);
  assert.deepEqual(drain(core).sort(), ['audit create web-1/load critical', 'ops create web-1/load critical']);
  assert.ok((core.counters()['unknown_handlers'] ?? 0) > 0);
  assert.deepEqual(ev(core, 'member-update', mem('web-1', 'alive', '2;disk=c2,load=c2')), ['pager create web-1/disk critical']);
  assert.deepEqual(ev(core, 'member-failed', mem('web-1', 'failed', '2;disk=c2,load=c2')), ['pager create web-1/member critical'], 'occurrences does not apply to member alerts');
});

test('two monitors: only the leader alerts; when it dies the other alerts its failure and does not re-alert open incidents', () => {
  const a = new MonitorCore('mon-a', spec());
  const b = new MonitorCore('mon-b', spec());
  const both = (type: MonitorEventType, m: MonitorMember): [string[], string[]] => [ev(a, type, m), ev(b, type, m)];
  const view = [MON('mon-a'), MON('mon-b'), mem('web-1', 'alive', '1'), mem('web-2', 'alive', '1')];
  a.handleMembers(view, T0);
  b.handleMembers(view, T0);
  assert.equal(a.isLeader(), true);
  assert.equal(b.isLeader(), false);
  assert.deepEqual(both('member-update', mem('web-1', 'alive', '1;disk=c1')), [['ops create web-1/disk critical'], []]);
  // mon-a died (a dead process hears nothing): mon-b takes over and reports it.
  assert.deepEqual(ev(b, 'member-failed', MON('mon-a', 'failed')), ['ops create mon-a/member critical']);
  assert.equal(b.isLeader(), true);
  assert.deepEqual(ev(b, 'member-update', mem('web-1', 'alive', '1;disk=c2')), [], 'already alerted by mon-a');
  assert.deepEqual(ev(b, 'member-update', mem('web-2', 'alive', '1;disk=w1')), ['ops create web-2/disk warning']);
  assert.deepEqual(ev(b, 'member-update', mem('web-1', 'alive', '1')), ['ops resolve web-1/disk passing'], 'resolves what mon-a created');
  assert.ok((b.counters()['alerts_shadowed'] ?? 0) >= 1);
  // mon-a is back: it leads again (lowest name) and mon-b goes quiet.
  b.handleMemberEvent('member-join', [MON('mon-a')], T0);
  assert.deepEqual(drain(b), ['ops resolve mon-a/member passing']);
  assert.equal(b.isLeader(), false);
  assert.deepEqual(ev(b, 'member-update', mem('web-2', 'alive', '1;disk=c1')), []);
});

test('a monitor not yet in its own member list counts itself; a non-monitor member never leads', () => {
  const core = new MonitorCore('mon-b', spec());
  core.handleMembers([mem('aaa-1', 'alive', '1')], T0);
  assert.equal(core.isLeader(), true);
  core.handleMembers([mem('aaa-1', 'alive', '1'), MON('mon-a'), MON('mon-b')], T0);
  assert.equal(core.leaderName(), 'mon-a');
  core.handleMemberEvent('member-leave', [MON('mon-a', 'left')], T0);
  assert.equal(core.isLeader(), true);
});

test('settle window: a monitor that just joined holds alerts until it knows who leads', () => {
  const opts = { settleMs: 2000, settleMaxMs: 5000 };
  // Alone: alerts wait out the window, then go out.
  const alone = new MonitorCore('mon-b', spec(), undefined, opts);
  alone.handleMembers([MON('mon-b')], T0);
  alone.handleMemberEvent('member-join', [mem('web-1', 'alive', '1;disk=c4')], T0 + 10);
  assert.deepEqual(drain(alone), []);
  assert.equal(alone.pollTimeout(), T0 + 2010);
  alone.handleTimeout(T0 + 2009);
  assert.deepEqual(drain(alone), []);
  alone.handleTimeout(T0 + 2010);
  assert.deepEqual(drain(alone), ['ops create web-1/disk critical']);
  assert.equal(alone.pollTimeout(), undefined);
  // Joining a cluster led by mon-a: the failing node is seen before mon-a; nothing goes out.
  const late = new MonitorCore('mon-b', spec(), undefined, opts);
  late.handleMembers([MON('mon-b')], T0);
  late.handleMemberEvent('member-join', [mem('web-1', 'alive', '1;disk=c4')], T0 + 10);
  late.handleMemberEvent('member-join', [MON('mon-a')], T0 + 20);
  late.handleTimeout(T0 + 10_000);
  assert.deepEqual(drain(late), []);
  assert.equal(late.openIncidents()[0]?.alerted, true, 'but it knows the incident was alerted');
  // A join storm extends the window only up to settleMaxMs.
  const storm = new MonitorCore('mon-b', spec(), undefined, opts);
  storm.handleMembers([MON('mon-b'), mem('web-1', 'alive', '1')], T0);
  storm.handleMemberEvent('member-update', [mem('web-1', 'alive', '1;disk=c1')], T0 + 100);
  for (let t = 1000; t <= 4000; t += 1000) storm.handleMemberEvent('member-join', [mem(`x-${t}`, 'alive', '0')], T0 + t);
  assert.equal(storm.pollTimeout(), T0 + 5000, 'capped at settleMaxMs from the window start');
  assert.deepEqual(drain(storm), []);
  // A join after the cap flushes the old window before opening a new one.
  storm.handleMemberEvent('member-join', [mem('x-5', 'alive', '0')], T0 + 5000);
  assert.deepEqual(drain(storm), ['ops create web-1/disk critical']);
});

test('settle window: the resolve for a returning leader still goes out from the monitor that reported it', () => {
  const b = new MonitorCore('mon-b', spec(), undefined, { settleMs: 1000 });
  b.handleMembers([MON('mon-a'), MON('mon-b')], T0);
  b.handleTimeout(T0 + 1000);
  b.handleMemberEvent('member-failed', [MON('mon-a', 'failed')], T0 + 2000);
  assert.deepEqual(drain(b), ['ops create mon-a/member critical']);
  b.handleMemberEvent('member-join', [MON('mon-a')], T0 + 3000);
  b.handleTimeout(T0 + 4000);
  assert.deepEqual(drain(b), ['ops resolve mon-a/member passing']);
  assert.equal(b.isLeader(), false);
});

test('a silenced member failure is held and alerts when the silence expires, if still failed', () => {
  const core = new MonitorCore('mon-1', spec());
  core.handleMembers([MON('mon-1'), mem('web-1', 'alive', '1'), mem('web-2', 'alive', '1')], T0);
  core.handleSilenceOp({ op: 'add', silence: { id: 'm', role: 'web', expiresAt: T0 + 1000, createdAt: T0 } }, T0);
  assert.deepEqual(ev(core, 'member-failed', mem('web-1', 'failed', '1')), []);
  assert.deepEqual(ev(core, 'member-failed', mem('web-2', 'failed', '1')), []);
  assert.deepEqual(ev(core, 'member-join', mem('web-2', 'alive', '1')), [], 'back before the silence ended: nothing at all');
  core.handleTimeout(T0 + 1000);
  assert.deepEqual(drain(core), ['ops create web-1/member critical']);
});
