// The dashboard's pure helpers (src/ui/model.js): what the page shows is computed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  groupByRole, countByStatus, diffMembers, upsertMember, mergeEvents, formatClock, formatDuration, formatAgo, formatRtt,
  formatCount, formatErrorRate, sparklineBars, silenceMatches, silenceScope, checkRows, routeSegments, valueColor,
  deploySteps, deployPercent, collectDeploys, backoffMs, withToken, eventTone, historySeries, niceMax, plotPoints,
  roleBands,
  formatFigure, agoText, isCurrent, statusAge, lastKnown, checksText, checkRanAge, streamLabel,
} from '../../src/ui/model.js';
import type { ApiMember, ApiEvent, DeploysResponse, HistoryPoint } from '../../src/http/types.ts';
import type { DeployState } from '../../src/deploy/types.ts';
import type { ChecksReport } from '../../src/checks/types.ts';

function member(name: string, role: string | null, status: ApiMember['status'] = 'alive'): ApiMember {
  return { name, addr: '127.0.0.1', port: 7946, status, tags: role === null ? {} : { role }, role, services: [], checks: null, statusSince: null, rttMs: null };
}

function event(seq: number, kind: ApiEvent['kind'] = 'user'): ApiEvent {
  return { seq, at: 1000 * seq, kind, node: null, text: `event ${seq}` };
}

function deploy(over: Partial<DeployState>): DeployState {
  return {
    id: 'd-lb-1', coordinator: 'lb-1', phase: 'shift', step: 1, startedAt: 100, phaseSince: 100, updatedAt: 200, routeLTime: 5,
    figures: {}, events: [],
    spec: {
      service: 'web', tag: 'color', from: 'blue', to: 'green', expected: 2, checkBakeMs: 1, checkTimeoutMs: 1, steps: [10, 50, 100],
      stepBakeMs: 1, drainTimeoutMs: 1, bakeMs: 1, maxErrorRate: 0.01, minRequests: 20, applyTimeoutMs: 1,
    },
    ...over,
  };
}

test('members are grouped by role, roles sorted with the no-role group last, members by name', () => {
  const groups = groupByRole([member('web-2', 'web'), member('x', null), member('lb', 'balancer'), member('web-1', 'web')]);
  assert.deepEqual(groups.map((g) => [g.role, g.members.map((m) => m.name)]), [
    ['balancer', ['lb']],
    ['web', ['web-1', 'web-2']],
    ['', ['x']],
  ]);
  const natural = groupByRole(['web-10', 'web-2', 'web-1', 'Web-3'].map((n) => member(n, 'web')));
  assert.deepEqual(natural[0]?.members.map((m) => m.name), ['web-1', 'web-2', 'Web-3', 'web-10'], 'numbers in names sort as numbers');
});

test('counts by status name every status, zero included', () => {
  const c = countByStatus([member('a', null), member('b', null, 'failed'), member('c', null, 'failed'), member('d', null, 'left')]);
  assert.deepEqual(c, { alive: 1, leaving: 0, left: 1, failed: 2, none: 0 });
});

test('diffMembers finds added, removed and changed members; upsert replaces by name', () => {
  const before = [member('a', 'web'), member('b', 'web'), member('c', 'web')];
  const after = [member('a', 'web'), member('b', 'web', 'failed'), member('d', 'web')];
  const d = diffMembers(before, after);
  assert.deepEqual(d.added.map((m) => m.name), ['d']);
  assert.deepEqual(d.removed.map((m) => m.name), ['c']);
  assert.deepEqual(d.changed.map((m) => [m.name, m.status]), [['b', 'failed']]);

  // An estimated round trip that moves within its two shown figures is no change; one that moves more is.
  const rtt = (m: ApiMember, rttMs: number): ApiMember => ({ ...m, rttMs });
  assert.deepEqual(diffMembers([rtt(member('a', 'web'), 0.421)], [rtt(member('a', 'web'), 0.418)]).changed, []);
  assert.deepEqual(diffMembers([rtt(member('a', 'web'), 0.42)], [rtt(member('a', 'web'), 0.61)]).changed.map((m) => m.name), ['a']);
  assert.deepEqual([formatRtt(null), formatRtt(0.004), formatRtt(0.4213), formatRtt(3.14), formatRtt(123.4)], ['', '<0.01 ms', '0.42 ms', '3.1 ms', '120 ms']);

  const up = upsertMember(before, member('b', 'web', 'failed'));
  assert.deepEqual(up.map((m) => `${m.name}:${m.status}`), ['a:alive', 'b:failed', 'c:alive']);
  assert.equal(before[1]?.status, 'alive', 'the original list is left alone');
  assert.deepEqual(upsertMember(before, member('z', null)).map((m) => m.name), ['a', 'b', 'c', 'z']);
});

test('events merge newest first, without duplicates, bounded', () => {
  const merged = mergeEvents([event(3), event(1)], [event(2), event(3), event(5)], 3);
  assert.deepEqual(merged.map((e) => e.seq), [5, 3, 2]);
  assert.equal(eventTone('member-failed'), 'bad');
  assert.equal(eventTone('member-join'), 'good');
  assert.equal(eventTone('check', 'web-3: check http is critical'), 'bad');
  assert.equal(eventTone('check', 'web-3: check disk is warning'), 'warn');
  assert.equal(eventTone('check', 'web-3: check http is passing'), 'good');
  assert.equal(eventTone('deploy', 'd-lb-1 rolled back: error rate'), 'bad');
  assert.equal(eventTone('user', 'user event deploy (12 bytes)'), 'info');
  assert.equal(eventTone('deploy', 'deploy d-1 (web blue → green): drain'), 'info', 'a deploy drains as a matter of course');
  assert.equal(eventTone('service', 'web-2: web draining'), 'warn');
});

test('formatting: clock, durations, ago, counts, error rates', () => {
  assert.equal(formatClock(new Date(2026, 0, 2, 3, 4, 5).getTime()), '03:04:05');
  assert.equal(formatDuration(4_900), '4s');
  assert.equal(formatDuration(192_000), '3m 12s');
  assert.equal(formatDuration(2 * 3600_000 + 5 * 60_000), '2h 5m');
  assert.equal(formatDuration(3 * 86400_000 + 4 * 3600_000), '3d 4h');
  assert.equal(formatDuration(-50), '0s');
  assert.equal(formatAgo(null, 10), '');
  assert.equal(formatAgo(1_000, 61_000), '1m 0s ago');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(1_200_000), '1.2M');
  assert.equal(formatErrorRate(0, 0), '–');
  assert.equal(formatErrorRate(0, 10), '0 %');
  assert.equal(formatErrorRate(1, 2000), '<0.1 %');
  assert.equal(formatErrorRate(41, 1000), '4.1 %');
});

test('every age says what it measures: a status, a check run, an update', () => {
  const now = 1_000_000;
  const at = (m: ApiMember, agentStartedAt: number | null = null): string | null => {
    const a = statusAge(m, agentStartedAt);
    return a === null ? null : agoText(a.template, a.since, now);
  };
  const since = (status: ApiMember['status'], ms: number | null): ApiMember => ({ ...member('web-2', 'web', status), statusSince: ms });
  assert.equal(at(since('failed', now - 97_000)), 'failed 1m 37s ago');
  assert.equal(at(since('left', now - 5_000)), 'left 5s ago');
  assert.equal(at(since('alive', now - 192_000)), 'alive for 3m 12s');
  assert.equal(at(since('leaving', now - 2_000)), 'leaving for 2s');
  // Changed before this agent started: at least as old as the agent, and it says so.
  assert.equal(at(since('alive', null), now - 302_000), 'alive for over 5m 2s');
  assert.equal(at(since('failed', null), now - 60_000), 'failed over 1m 0s ago');
  assert.equal(at(since('alive', null), null), null, 'nothing to say without either time');
  const ran = checkRanAge(now - 4_000);
  assert.equal(ran === null ? null : agoText(ran.template, ran.since, now), 'ran 4s ago');
  assert.equal(checkRanAge(0), null, 'a check that has not run yet has no age');
  assert.equal(agoText('updated {} ago', now - 2_000, now), 'updated 2s ago');
  assert.equal(agoText('updated {} ago', now + 800, now), 'updated 0s ago', 'a clock a little ahead is not a negative age');
});

test('a failed or left member\'s services and checks are last known, with their age; an alive one\'s are current', () => {
  const now = 1_000_000;
  const web2: ApiMember = {
    ...member('web-2', 'web', 'failed'), statusSince: now - 97_000,
    services: [{ name: 'web', port: 35689, protocol: 'http', weight: 100, draining: false }], checks: { total: 1, failing: [] },
  };
  const lk = lastKnown(web2, now - 600_000);
  assert.ok(lk !== null);
  assert.equal(`${agoText(lk.template, lk.since, now)}: ${checksText(web2.checks)}`, 'last known 1m 37s ago: checks: 1 passing');
  assert.equal(isCurrent(web2), false);
  const left = { ...web2, status: 'left' as const, statusSince: null };
  const lkLeft = lastKnown(left, now - 600_000);
  assert.equal(lkLeft === null ? null : agoText(lkLeft.template, lkLeft.since, now), 'last known over 10m 0s ago', 'left before this agent started');
  assert.equal(agoText(lastKnown(left, null)!.template, 0, now), 'last known', 'no age when neither time is known');
  for (const status of ['alive', 'leaving', 'none'] as const) {
    assert.equal(lastKnown({ ...web2, status }, now), null, `${status}: current`);
    assert.equal(isCurrent({ status }), true);
  }
  assert.equal(checksText({ total: 3, failing: [{ name: 'disk', state: 'critical', occurrences: 2, flapping: false }] }), 'checks: 1 of 3 failing');
  assert.equal(checksText(null), null);
});

test('the header names the live stream\'s state', () => {
  assert.deepEqual(
    (['loading', 'connecting', 'live', 'reconnecting', 'token'] as const).map((s) => streamLabel(s)),
    ['loading…', 'live updates: connecting…', 'live', 'live updates: reconnecting…', 'token needed'],
  );
  assert.equal(streamLabel('offline', 3), 'live updates: offline, retry in 3s');
  assert.equal(streamLabel('offline', 0), 'live updates: offline');
});

test('sparkline: one bar per result, newest at the right edge, height by severity', () => {
  const bars = sparklineBars('0213', 84, 20, 21);
  assert.equal(bars.length, 4);
  assert.deepEqual(bars.map((b) => b.state), ['passing', 'critical', 'warning', 'unknown']);
  const last = bars[3];
  assert.ok(last !== undefined && Math.abs(last.x + 84 / 21 - 84) < 0.01, 'the newest bar ends at the right edge');
  const [pass, crit, warn] = bars;
  assert.ok(pass && crit && warn && crit.h === 20 && warn.h < crit.h && pass.h < warn.h, 'critical tallest, passing lowest');
  for (const b of bars) assert.equal(b.y + b.h, 20, 'bars stand on the baseline');
  assert.equal(sparklineBars('0'.repeat(30), 84, 20).length, 21, 'at most 21 results');
  assert.deepEqual(sparklineBars(undefined, 84, 20), []);
});

test('silences match by every field they name, and expire', () => {
  const s = { id: 's1', node: 'web-1', check: 'disk', createdAt: 0, expiresAt: 100 };
  assert.equal(silenceMatches(s, 'web-1', 'web', 'disk', 50), true);
  assert.equal(silenceMatches(s, 'web-1', 'web', 'http', 50), false);
  assert.equal(silenceMatches(s, 'web-2', 'web', 'disk', 50), false);
  assert.equal(silenceMatches(s, 'web-1', 'web', 'disk', 100), false, 'expired');
  assert.equal(silenceMatches({ id: 's2', role: 'web', createdAt: 0 }, 'web-9', 'web', 'any', 1e12), true);
  assert.equal(silenceMatches({ id: 's2', role: 'web', createdAt: 0 }, 'db-1', 'db', 'any', 0), false);
  assert.equal(silenceScope(s), 'node web-1 · check disk');
  assert.equal(silenceScope({ id: 'x', createdAt: 0 }), 'everything');
});

test('check rows: worst first, then node and name', () => {
  const metrics = { load1: 0, load5: 0, load15: 0, memUsedBytes: 0, memTotalBytes: 0, cpuPercent: 0 };
  const c = (name: string, status: 0 | 1 | 2 | 3) => ({ name, status, output: '', occurrences: 1, flapping: false, lastRunAt: 0 });
  const nodes: ChecksReport[] = [
    { node: 'b', tags: { role: 'web' }, checks: [c('http', 0), c('disk', 1)], metrics },
    { node: 'a', checks: [c('load', 3), c('http', 2), c('disk', 0)], metrics },
  ];
  assert.deepEqual(checkRows(nodes).map((r) => `${r.node}/${r.name}:${r.state}`), [
    'a/http:critical', 'b/disk:warning', 'a/load:unknown', 'a/disk:passing', 'b/http:passing',
  ]);
  assert.equal(checkRows(nodes).find((r) => r.node === 'b')?.role, 'web');
});

test('route segments largest first, drained values kept; colours by name or a stable hue', () => {
  assert.deepEqual(routeSegments({ service: 'web', tag: 'color', weights: { blue: 10, green: 90, red: 0 }, by: 'manual', ltime: 3 }), [
    { value: 'green', percent: 90 }, { value: 'blue', percent: 10 }, { value: 'red', percent: 0 },
  ]);
  assert.deepEqual(routeSegments(null), []);
  assert.equal(valueColor('Blue'), 'var(--c-blue)');
  assert.equal(valueColor('v2'), valueColor('v2'));
  assert.notEqual(valueColor('v1'), valueColor('v2'));
  assert.match(valueColor('v2'), /^hsl\(\d+ /);
});

test('deploy steps: done before the phase, current at it; an ended deploy marks where it stopped', () => {
  const at = (phase: Parameters<typeof deploySteps>[0], last?: Parameters<typeof deploySteps>[1]) =>
    deploySteps(phase, last).map((x) => `${x.step}:${x.state}`).join(' ');
  assert.equal(at('shift'), 'prepare:done check:done shift:current drain:todo bake:todo done:todo');
  assert.equal(at('done'), 'prepare:done check:done shift:done drain:done bake:done done:done');
  assert.equal(at('rolled-back', 'bake'), 'prepare:done check:done shift:done drain:done bake:stopped done:todo');
  assert.equal(at('aborted'), 'prepare:stopped check:todo shift:todo drain:todo bake:todo done:todo');
  // 10 → 50 → 100: baking between steps is still the shift; nothing drains before the last step.
  const labels = (phase: Parameters<typeof deploySteps>[0], step: number) =>
    deploySteps(phase, undefined, step, 3).map((x) => `${x.label}:${x.state}`).join(' ');
  assert.equal(labels('bake', 1), 'prepare:done check:done shift 2/3 · baking:current drain:todo bake:todo done:todo');
  assert.equal(labels('shift', 0), 'prepare:done check:done shift 1/3:current drain:todo bake:todo done:todo');
  assert.equal(labels('bake', 2), 'prepare:done check:done shift:done drain:done bake:current done:todo');
});

test('deploy percent follows the published step; a rollback is 0 %', () => {
  assert.equal(deployPercent(deploy({ step: -1 })), 0);
  assert.equal(deployPercent(deploy({ step: 1 })), 50);
  assert.equal(deployPercent(deploy({ step: 2, phase: 'done' })), 100);
  assert.equal(deployPercent(deploy({ step: 1, phase: 'rolled-back' })), 0);
});

test('collectDeploys: own states, others summaries and streamed updates once each, newer wins, newest first', () => {
  const response: DeploysResponse = {
    current: deploy({ id: 'd-new', startedAt: 500, updatedAt: 600, step: 0 }),
    history: [deploy({ id: 'd-old', startedAt: 100, phase: 'done', step: 2 })],
    routes: [],
    elsewhere: [{ id: 'd-other', coordinator: 'api-1', service: 'api', from: 'v1', to: 'v2', phase: 'bake', percent: 100, steps: [100],
      startedAt: 300, updatedAt: 350, figures: {} }],
  };
  const streamed = [deploy({ id: 'd-new', startedAt: 500, updatedAt: 700, step: 1, phase: 'bake' }), deploy({ id: 'd-new', startedAt: 500, updatedAt: 10 })];
  const all = collectDeploys(response, streamed);
  assert.deepEqual(all.map((d) => `${d.id}:${d.phase}:${d.percent}`), ['d-new:bake:50', 'd-other:bake:100', 'd-old:done:100']);
  assert.equal(all[1]?.coordinator, 'api-1');
  assert.equal(all[0]?.stepIndex, 1);
  assert.equal(all[1]?.stepIndex, 0, 'a summary: the step whose percent was published');
  assert.deepEqual(collectDeploys(null), []);
});

test('reconnect backoff doubles from 1 s to a 30 s cap, jitter at most 20 %', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((a) => backoffMs(a)), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(backoffMs(0, 0.999), 1200);
});

test('the stream URL carries the token (EventSource cannot set headers)', () => {
  assert.equal(withToken('/v1/stream', null), '/v1/stream');
  assert.equal(withToken('/v1/stream', 'a b&c'), '/v1/stream?token=a%20b%26c');
  assert.equal(withToken('/v1/events?since=3', 't'), '/v1/events?since=3&token=t');
});

test('plots: the history as series per chart, rates left out where there are none yet', () => {
  const p = (t: number, over: Partial<HistoryPoint>): HistoryPoint => ({
    t, members: { alive: 3, leaving: 0, left: 0, failed: 0 }, gossip: null, checks: {}, backends: null, ...over,
  });
  const sr = historySeries({
    stepMs: 10_000,
    windowMs: 900_000,
    points: [
      p(0, { checks: { web: { passing: 2, warning: 0, critical: 0, unknown: 0 } } }),
      p(10_000, {
        members: { alive: 2, leaving: 0, left: 0, failed: 1 },
        gossip: { probe_failures: 0.4, suspicions: 0.1, refutations: 0 },
        checks: { web: { passing: 1, warning: 0, critical: 1, unknown: 0 }, '': { passing: 1, warning: 0, critical: 0, unknown: 0 } },
        backends: { lb: { 'web/web-1': { requests: 12.5, errors: 0 }, 'web/web-2': { requests: 3, errors: 1 } } },
      }),
    ],
  });
  assert.deepEqual(sr.members.map((x) => [x.name, x.points]), [['alive', [[0, 3], [10_000, 2]]], ['failed', [[0, 0], [10_000, 1]]], ['left', [[0, 0], [10_000, 0]]], ['leaving', [[0, 0], [10_000, 0]]]]);
  assert.deepEqual(sr.gossip[0], { name: 'probe failures/s', points: [[10_000, 0.4]], tone: 'failed' }, 'the first point has no rate');
  assert.deepEqual(sr.checks.map((x) => [x.name, x.points]), [['web', [[0, 0], [10_000, 1]]], ['(no role)', [[0, 0], [10_000, 0]]]]);
  assert.equal(sr.balancers.length, 1);
  assert.equal(sr.balancers[0]!.node, 'lb');
  assert.deepEqual(sr.balancers[0]!.series.map((x) => [x.name, x.points, x.dashed ?? false]), [
    ['web/web-1 req/s', [[10_000, 12.5]], false],
    ['web/web-1 err/s', [[10_000, 0]], true],
    ['web/web-2 req/s', [[10_000, 3]], false],
    ['web/web-2 err/s', [[10_000, 1]], true],
  ]);
  assert.deepEqual(historySeries(null), { members: ['alive', 'failed', 'left', 'leaving'].map((n) => ({ name: n, points: [], tone: n })), gossip: historySeries(null).gossip, checks: [], balancers: [] });
});

test('plots: nice axis maxima and points in the box', () => {
  assert.deepEqual([0, 0.3, 1, 1.2, 3, 7, 10, 11, 480].map(niceMax), [1, 0.5, 1, 2, 5, 10, 10, 20, 500]);
  assert.equal(plotPoints([[0, 0], [50, 5], [100, 10]], 0, 100, 10, 200, 50), '0,50 100,25 200,0');
  assert.equal(plotPoints([[100, 20]], 0, 100, 10, 200, 50), '200,0', 'clipped at the top');
});

test('roleBands: per role the min-max band and median at each step\'s middle, outliers with their own points; empty steps left out', () => {
  const report = {
    endS: 130, stepS: 10, n: 3, silent: [],
    roles: [{
      role: 'web', nodes: ['w1', 'w2', 'w3'], endS: 130, stepS: 10, n: 3,
      fields: [{
        field: 'cpu', unit: '%', label: 'host CPU busy',
        steps: [
          { t: 100, count: 0, min: null, p50: null, p95: null, max: null },
          { t: 110, count: 3, min: 1, p50: 2, p95: 90, max: 90 },
          { t: 120, count: 3, min: 1, p50: 3, p95: 95, max: 95 },
        ],
        window: { count: 6, min: 1, p50: 2, p95: 95, max: 95 },
        nodes: { w1: 1, w2: 2.5, w3: 92.5 },
        outliers: [{ node: 'w3', value: 92.5, median: 2.5, steps: [null, 90, 95] }],
      }],
    }],
  };
  const [b] = roleBands(report as never, 'cpu');
  assert.deepEqual(b!.band, [[115_000, 1, 90], [125_000, 1, 95]]);
  assert.deepEqual(b!.median, [[115_000, 2], [125_000, 3]]);
  assert.deepEqual(b!.outliers, [{ node: 'w3', value: 92.5, median: 2.5, points: [[115_000, 90], [125_000, 95]] }]);
  assert.deepEqual(roleBands(report as never, 'load')[0]!.band, []);
  assert.equal(formatFigure(3 * 1024 * 1024, 'B/s'), '3.0 MiB/s');
  assert.equal(formatFigure(12.345, '%'), '12.3 %');
  assert.equal(formatFigure(null, '%'), '–');
});
