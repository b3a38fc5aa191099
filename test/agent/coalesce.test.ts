import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coalescer } from '../../src/agent/coalesce.ts';
import type { HandlerEvent } from '../../src/agent/handlers.ts';

const m = (name: string, tags: Record<string, string> = {}) => ({ name, addr: { ip: '10.0.0.1', port: 7946 }, tags });
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function drain(c: Coalescer<HandlerEvent>): HandlerEvent[] {
  const out: HandlerEvent[] = [];
  for (let e = c.pollEvent(), i = 0; e !== undefined && i < 10_000; e = c.pollEvent(), i++) out.push(e);
  return out;
}

/** Jump virtual time to each wake-up until `untilMs`; bounded. */
function run(c: Coalescer<HandlerEvent>, untilMs: number): number {
  let now = 0;
  for (let i = 0; i < 1000; i++) {
    const t = c.pollTimeout();
    if (t === undefined || t > untilMs) break;
    now = t;
    c.handleTimeout(now);
  }
  return now;
}

const names = (e: HandlerEvent): string[] => ('members' in e ? e.members.map((x) => x.name) : []);

test('member events: quiescent flush 1 s after the last event, latest per member, one event per type', () => {
  const c = new Coalescer<HandlerEvent>();
  c.handle({ type: 'member-join', members: [m('a'), m('b')] }, 0);
  c.handle({ type: 'member-failed', members: [m('a')] }, 300);
  c.handle({ type: 'member-join', members: [m('c')] }, 600);
  assert.equal(c.pollEvent(), undefined, 'nothing before the window closes');
  assert.equal(c.pollTimeout(), 1600);
  c.handleTimeout(1599);
  assert.equal(c.pollEvent(), undefined, 'not early');
  c.handleTimeout(1600);
  const out = drain(c);
  assert.deepEqual(
    out.map((e) => [e.type, names(e)]),
    [
      ['member-join', ['b', 'c']],
      ['member-failed', ['a']],
    ],
  );
  assert.equal(c.pollTimeout(), undefined, 'window closed');
});

test('member events: a steady stream flushes at the 3 s coalesce period', () => {
  const c = new Coalescer<HandlerEvent>();
  for (let t = 0; t <= 5000; t += 500) {
    const due = c.pollTimeout();
    if (due !== undefined && due <= t) c.handleTimeout(due);
    c.handle({ type: 'member-update', members: [m(`n${t}`)] }, t);
  }
  const first = drain(c);
  assert.equal(first.length, 1, 'one flush at 3000 while events kept coming every 500 ms');
  assert.deepEqual(names(first[0]!), ['n0', 'n500', 'n1000', 'n1500', 'n2000', 'n2500']);
});

test('member events: repeats of the last flushed event are dropped, updates always pass; reap forgets', () => {
  const c = new Coalescer<HandlerEvent>();
  c.handle({ type: 'member-join', members: [m('a')] }, 0);
  run(c, 10_000);
  assert.equal(drain(c).length, 1);
  c.handle({ type: 'member-join', members: [m('a')] }, 20_000);
  c.handle({ type: 'member-update', members: [m('b', { v: '1' })] }, 20_000);
  c.handleTimeout(21_000);
  assert.deepEqual(
    drain(c).map((e) => e.type),
    ['member-update'],
    'second join of a dropped; update kept',
  );
  c.handle({ type: 'member-update', members: [m('b', { v: '2' })] }, 30_000);
  c.handleTimeout(31_000);
  const upd = drain(c);
  assert.equal(upd.length, 1, 'a repeated update is still delivered');
  assert.deepEqual(upd[0]!.type === 'member-update' && upd[0]!.members[0]!.tags, { v: '2' });
  // a flush must not re-emit old updates (serf keeps its map and does)
  c.handle({ type: 'member-leave', members: [m('a')] }, 40_000);
  c.handleTimeout(41_000);
  assert.deepEqual(drain(c).map((e) => [e.type, names(e)]), [['member-leave', ['a']]]);
  c.handle({ type: 'member-reap', members: [m('a')] }, 50_000);
  c.handleTimeout(51_000);
  assert.equal(drain(c).length, 1);
  c.handle({ type: 'member-join', members: [m('a')] }, 60_000);
  c.handleTimeout(61_000);
  assert.deepEqual(drain(c).map((e) => e.type), ['member-join'], 'after reap a rejoin is news');
});

test('user events: only coalesce=true are held; per name the highest LTime wins (ties all kept)', () => {
  const c = new Coalescer<HandlerEvent>();
  const u = (name: string, ltime: number, cc: boolean, p = ''): HandlerEvent => ({ type: 'user', name, payload: enc(p), ltime, coalesce: cc });
  c.handle(u('deploy', 5, true, 'v1'), 0);
  c.handle(u('deploy', 7, true, 'v3'), 100);
  c.handle(u('deploy', 6, true, 'v2'), 200);
  c.handle(u('deploy', 7, true, 'v3b'), 300);
  c.handle(u('restart', 2, true), 300);
  c.handle(u('now', 1, false), 300);
  const q: HandlerEvent = { type: 'query', id: 1, name: 'load', payload: enc(''), ltime: 1 };
  c.handle(q, 300);
  assert.deepEqual(
    drain(c).map((e) => e.type + ':' + ('name' in e ? e.name : '')),
    ['user:now', 'query:load'],
    'uncoalesced user events and queries pass at once',
  );
  assert.equal(c.held(), 3);
  c.handleTimeout(1300);
  const out = drain(c);
  assert.deepEqual(
    out.map((e) => (e.type === 'user' ? `${e.name}@${e.ltime}:${new TextDecoder().decode(e.payload)}` : '')),
    ['deploy@7:v3', 'deploy@7:v3b', 'restart@2:'],
  );
});

test('member and user windows are independent; flush() empties both; disabled periods pass through', () => {
  const c = new Coalescer<HandlerEvent>();
  c.handle({ type: 'member-join', members: [m('a')] }, 0);
  c.handle({ type: 'user', name: 'x', payload: enc(''), ltime: 1, coalesce: true }, 500);
  assert.equal(c.pollTimeout(), 1000);
  c.handleTimeout(1000);
  assert.deepEqual(drain(c).map((e) => e.type), ['member-join']);
  assert.equal(c.pollTimeout(), 1500);
  c.flush();
  assert.deepEqual(drain(c).map((e) => e.type), ['user']);
  assert.equal(c.pollTimeout(), undefined);

  const off = new Coalescer<HandlerEvent>({ coalescePeriodMs: 0, userCoalescePeriodMs: 0 });
  off.handle({ type: 'member-join', members: [m('a')] }, 0);
  off.handle({ type: 'user', name: 'x', payload: enc(''), ltime: 1, coalesce: true }, 0);
  assert.equal(drain(off).length, 2);
  assert.equal(off.pollTimeout(), undefined);
});

test('a flood of 100k member events holds one entry per member and flushes on time', () => {
  const c = new Coalescer<HandlerEvent>();
  let now = 0;
  for (let i = 0; i < 100_000; i++) {
    now = i * 0.01; // 1 s of input
    c.handle({ type: i % 2 ? 'member-join' : 'member-failed', members: [m(`n${i % 50}`)] }, now);
  }
  assert.equal(c.held(), 50);
  c.handleTimeout(3000);
  const out = drain(c);
  assert.equal(out.reduce((n, e) => n + names(e).length, 0), 50);
});
