// planService with prefer_near: backends weighed by the balancer's estimated round trip to them
// (network coordinates), in steps of 2×, a LAN's sub-millisecond noise ignored, route shares kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEAR_FLOOR_MS, decodeMembers, nearDivisor, planService } from '../../src/discovery/backends.ts';
import type { MemberView, ServicePlan } from '../../src/discovery/backends.ts';
import type { RouteEntry } from '../../src/deploy/types.ts';

const NEAR = { service: 'web', minBackends: 0, drainTimeoutMs: 10_000, preferNear: true };

function node(name: string, color?: string, weight?: number): MemberView {
  const tags: Record<string, string> = { 's:web': `8080${weight !== undefined ? `,w${weight}` : ''}` };
  if (color !== undefined) tags['color'] = color;
  return { name, addr: { ip: '10.0.0.' + name.replace(/\D/g, '') }, tags, status: 'alive' };
}

function plan(members: MemberView[], rtt: Record<string, number>, spec: { service: string; minBackends: number; drainTimeoutMs: number; preferNear?: boolean } = NEAR, route?: RouteEntry): ServicePlan {
  return planService(spec, decodeMembers(members, (n) => rtt[n]), new Map(), 1000, undefined, route);
}

const weights = (p: ServicePlan): string[] => p.backends.map((b) => `${b.id}:w${b.weight}`);

test('prefer_near: 2×, 4×, 8× and farther get ½, ¼, ⅛ of their weight; sub-floor differences and missing estimates change nothing', () => {
  const ms = [node('w1'), node('w2'), node('w3'), node('w4'), node('w5'), node('w6')];
  const rtt = { w1: 0.3, w2: 1.5, w3: 5, w4: 9, w5: 17, w6: 400 };
  assert.deepEqual(weights(plan(ms, rtt)), ['w1:w100', 'w2:w100', 'w3:w50', 'w4:w25', 'w5:w13', 'w6:w13']);
  // Off (the default): the advertised weights.
  assert.deepEqual(weights(plan(ms, rtt, { ...NEAR, preferNear: false })), ms.map((m) => `${m.name}:w100`));
  // No estimate for w3 yet: it counts as near; none for anyone: nothing changes.
  const { w3: _, ...noW3 } = rtt;
  assert.equal(weights(plan(ms, noW3))[2], 'w3:w100');
  assert.deepEqual(weights(plan(ms, {})), ms.map((m) => `${m.name}:w100`));
  assert.equal(nearDivisor(NEAR_FLOOR_MS * 1.9, 0.1), 1);
  assert.equal(nearDivisor(NEAR_FLOOR_MS * 2, 0.1), 2);
});

test('prefer_near: an advertised weight of 0 stays 0; a small one stays at least 1', () => {
  const ms = [node('w1'), node('w2', undefined, 0), node('w3', undefined, 3)];
  assert.deepEqual(weights(plan(ms, { w1: 1, w2: 100, w3: 100 })), ['w1:w100', 'w2:w0', 'w3:w1']);
});

test('prefer_near under a route split: each colour keeps its share, nearness moves traffic within a colour only', () => {
  const ms = [node('w1', 'blue'), node('w2', 'blue'), node('w3', 'green'), node('w4', 'green')];
  const rtt = { w1: 0.5, w2: 40, w3: 0.5, w4: 40 };
  const p = plan(ms, rtt, NEAR, { service: 'web', tag: 'color', weights: { blue: 90, green: 10 }, by: 'test', ltime: 3 });
  const w = Object.fromEntries(p.backends.map((b) => [b.id, b.weight]));
  const total = Object.values(w).reduce((a, b) => a + b, 0);
  const green = (w['w3']! + w['w4']!) / total;
  assert.ok(Math.abs(green - 0.1) < 0.01, `green share ${(green * 100).toFixed(1)} % (weights ${JSON.stringify(w)})`);
  // 100 / round(100 / 8) = 7.7: the rounding of the weighed-down base.
  assert.ok(Math.abs(w['w1']! / w['w2']! - 8) < 0.5, `blue: near ~8× the far one (${JSON.stringify(w)})`);
});
