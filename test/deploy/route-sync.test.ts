// RouteSync against scripted peers: it stops at the first usable answer, re-asks other peers
// while the asked ones stay silent (real serf agents never answer kodama-routes), gives up after
// a bounded number of rounds, skips unreadable answers, and a later trigger may try again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteSync } from '../../src/deploy/route-sync.ts';
import type { RouteSyncHost } from '../../src/deploy/route-sync.ts';
import { RouteTable } from '../../src/deploy/route.ts';
import type { RouteEntry } from '../../src/deploy/types.ts';

interface Script {
  peers: string[];
  /** peer → answer (absent = silent) */
  answers: Map<string, Uint8Array>;
}

function host(s: Script): { host: RouteSyncHost; asked: string[][]; applied: { from: string; entries: RouteEntry[] }[]; logs: string[]; sleeps: number[] } {
  const asked: string[][] = [];
  const applied: { from: string; entries: RouteEntry[] }[] = [];
  const logs: string[] = [];
  const sleeps: number[] = [];
  let seed = 7;
  return {
    asked,
    applied,
    logs,
    sleeps,
    host: {
      alivePeers: () => [...s.peers],
      ask: async (peers) => {
        asked.push([...peers].sort());
        const out = new Map<string, Uint8Array>();
        for (const p of peers) {
          const a = s.answers.get(p);
          if (a !== undefined) out.set(p, a);
        }
        return out;
      },
      apply: (entries, from) => applied.push({ from, entries }),
      log: (level, msg) => logs.push(`${level} ${msg}`),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      // deterministic pseudo-random picks
      random: () => {
        seed = (seed * 48271) % 2147483647;
        return seed / 2147483647;
      },
    },
  };
}

async function settle(sync: RouteSync): Promise<void> {
  await sync.settled();
}

const table = (...es: RouteEntry[]): Uint8Array => {
  const t = new RouteTable();
  for (const e of es) t.apply(e);
  return t.encodeSync(1024);
};
const web: RouteEntry = { service: 'web', tag: 'color', weights: { blue: 0, green: 100 }, by: 'd-1', ltime: 42 };

test('the first usable answer ends the sync; its entries are applied', async () => {
  const s: Script = { peers: ['a', 'b', 'c', 'd', 'e'], answers: new Map([['a', table(web)], ['b', table(web)], ['c', table(web)], ['d', table(web)], ['e', table(web)]]) };
  const h = host(s);
  const sync = new RouteSync(h.host);
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'synced');
  assert.equal(h.asked.length, 1);
  assert.equal(h.asked[0]?.length, 3, 'three peers per round by default');
  assert.equal(h.applied.length, 3);
  for (const a of h.applied) assert.deepEqual(a.entries, [web]);
  // once synced, later triggers do nothing
  sync.trigger('a peer joined');
  await settle(sync);
  assert.equal(h.asked.length, 1);
  assert.equal(sync.counters()['route_syncs'], 1);
});

test('silent peers: every round asks peers not asked yet; an answer from the fourth peer ends it', async () => {
  const s: Script = { peers: ['serf-1', 'serf-2', 'serf-3', 'kodama-1', 'serf-4'], answers: new Map([['kodama-1', table()]]) };
  const h = host(s);
  const sync = new RouteSync(h.host, { peersPerRound: 2, retryDelayMs: 50 });
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'synced', 'an empty table is an answer');
  const all = h.asked.flat();
  assert.equal(new Set(all).size, all.length, `nobody asked twice before everyone was asked: ${JSON.stringify(h.asked)}`);
  assert.ok(all.includes('kodama-1'));
  assert.deepEqual(h.sleeps, Array(h.asked.length - 1).fill(50), 'a pause after each silent round');
  assert.deepEqual(h.applied, [{ from: 'kodama-1', entries: [] }]);
});

test('an all-serf cluster: bounded rounds, then it gives up with a warning; a later trigger tries again', async () => {
  const s: Script = { peers: ['serf-1', 'serf-2'], answers: new Map() };
  const h = host(s);
  const sync = new RouteSync(h.host, { maxRounds: 4, retryDelayMs: 10 });
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'gave-up');
  assert.equal(h.asked.length, 4, 'exactly maxRounds queries');
  assert.equal(h.sleeps.length, 3, 'no pause after the last round');
  assert.ok(h.logs.some((l) => l.startsWith('WARN') && l.includes('no peer answered the route sync after 4 rounds')), h.logs.join('\n'));
  // a kodama node appears: the next trigger starts over and succeeds
  s.peers.push('kodama-9');
  s.answers.set('kodama-9', table(web));
  for (let i = 0; i < 10 && (sync.status as string) !== 'synced'; i++) {
    sync.trigger('a peer joined');
    await settle(sync);
  }
  assert.equal(sync.status, 'synced');
  assert.deepEqual(h.applied.at(-1), { from: 'kodama-9', entries: [web] });
});

test('no peers at all: rounds pass without queries; unreadable answers are skipped and counted', async () => {
  const lonely = host({ peers: [], answers: new Map() });
  const s1 = new RouteSync(lonely.host, { maxRounds: 3, retryDelayMs: 1 });
  s1.trigger('start');
  await settle(s1);
  assert.equal(s1.status, 'gave-up');
  assert.equal(lonely.asked.length, 0);

  const s: Script = { peers: ['bad'], answers: new Map([['bad', new TextEncoder().encode('{"v":1,"routes":[{"service":"web"}]}')]]) };
  const h = host(s);
  const sync = new RouteSync(h.host, { maxRounds: 2, retryDelayMs: 1 });
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'gave-up');
  assert.equal(sync.counters()['route_sync_bad_answers'], 2);
  assert.equal(h.applied.length, 0);
});

test('a truncated answer is applied and its truncation logged', async () => {
  const t = new RouteTable();
  for (let i = 0; i < 12; i++) t.apply({ service: `svc-${i}`, tag: 'color', weights: { blue: i }, by: 'm', ltime: i + 1 });
  const s: Script = { peers: ['a'], answers: new Map([['a', t.encodeSync(400)]]) };
  const h = host(s);
  const sync = new RouteSync(h.host);
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'synced');
  const n = h.applied[0]?.entries.length ?? 0;
  assert.ok(n > 0 && n < 12, `${n} entries`);
  assert.ok(h.logs.some((l) => l.startsWith('WARN') && l.includes(`left ${12 - n} older route(s) out`)), h.logs.join('\n'));
});

test('stop() during a query: nothing is applied afterwards', async () => {
  let release: () => void = () => {};
  const applied: RouteEntry[][] = [];
  const sync = new RouteSync({
    alivePeers: () => ['a'],
    ask: () =>
      new Promise((resolve) => {
        release = () => resolve(new Map([['a', table(web)]]));
      }),
    apply: (e) => applied.push(e),
    log: () => {},
    sleep: async () => {},
    random: () => 0,
  });
  sync.trigger('joined');
  await new Promise((r) => setImmediate(r));
  sync.stop();
  release();
  await settle(sync);
  assert.equal(sync.status, 'stopped');
  assert.deepEqual(applied, []);
});

test('members back from failed (a healed partition) are asked once, their burst gathered into one ask of at most three, even after the sync is done', async () => {
  const s: Script = { peers: ['a', 'b', 'c', 'd', 'e', 'f'], answers: new Map([['a', table()], ['d', table(web)], ['e', table(web)], ['f', table(web)]]) };
  const h = host(s);
  const sync = new RouteSync(h.host);
  sync.trigger('joined');
  await settle(sync);
  assert.equal(sync.status, 'synced');
  const before = h.asked.length;
  // A heal: d, e, f come back one after the other.
  sync.catchUp(['d']);
  sync.catchUp(['e']);
  sync.catchUp(['f', 'gone']);
  for (let i = 0; i < 20 && sync.counters()['route_catch_ups'] === 0; i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.asked.slice(before), [['d', 'e', 'f']], 'one ask, alive members only');
  assert.deepEqual(h.applied.slice(-3).map((a) => a.from).sort(), ['d', 'e', 'f']);
  assert.ok(h.sleeps.includes(300), 'the burst is gathered for 300 ms first');
  assert.equal(sync.counters()['route_catch_ups'], 1);
  assert.ok(h.logs.some((l) => /back from failed/.test(l)));
  sync.stop();
  sync.catchUp(['d']);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(h.asked.length, before + 1, 'nothing after stop');
});
