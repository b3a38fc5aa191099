// Unit tests of the Serf layer's user events, queries, internal queries and member pruning,
// driving one Serf directly with hand-made messages (what a peer would send).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo } from '../../src/memberlist/api.ts';
import { Serf } from '../../src/serf/serf.ts';
import type { SerfAnyEvent, SerfConfig, SerfOutput } from '../../src/serf/serf.ts';
import {
  decodeConflictResponse,
  decodeKeyResponse,
  encodeConflictResponse,
  decodeSerfMessage,
  encodeKeyRequest,
  encodeNodeFilter,
  encodeRelay,
  encodeSerfMessage,
  encodeTagFilter,
} from '../../src/serf/messages.ts';
import type { QueryMsg } from '../../src/serf/messages.ts';
import { encodeTags } from '../../src/serf/tags.ts';
import { answerKeyQuery } from '../../src/serf/keys.ts';
import { Keyring } from '../../src/wire/index.ts';
import { SeededRandom } from '../../src/sim/random.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function node(name: string, port: number, tags: Record<string, string> = {}): NodeInfo {
  return { name, addr: { ip: '127.0.0.1', port }, meta: encodeTags(tags, 5), incarnation: 1, state: 'alive', vsn: [1, 5, 2, 2, 5, 5], stateChangeMs: 0 };
}

function newSerf(extra: Partial<SerfConfig> = {}): Serf {
  const s = new Serf({ nodeName: 'self', tags: { role: 'web-1' }, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom(31), ...extra });
  s.handleMemberEvent({ type: 'join', node: node('self', 7946, { role: 'web-1' }) }, 0);
  return s;
}

function events(s: Serf): SerfAnyEvent[] {
  const out: SerfAnyEvent[] = [];
  for (let e = s.pollTypedEvent(), i = 0; e !== undefined && i < 100_000; e = s.pollTypedEvent(), i++) out.push(e);
  return out;
}

function outputs(s: Serf): SerfOutput[] {
  const out: SerfOutput[] = [];
  for (let o = s.pollOutput(), i = 0; o !== undefined && i < 1000; o = s.pollOutput(), i++) out.push(o);
  return out;
}

function query(over: Partial<QueryMsg> = {}): QueryMsg {
  return {
    type: 'query',
    ltime: 5,
    id: 77,
    addr: { ip: '127.0.0.9', port: 8000 },
    sourceNode: 'origin',
    filters: [],
    flags: 1,
    relayFactor: 0,
    timeoutMs: 2000,
    name: 'load',
    payload: enc('p'),
    ...over,
  };
}

test('user event limits use serf’s error texts; accepted events are delivered once and gossiped', () => {
  const s = newSerf();
  events(s);
  assert.throws(() => s.userEvent('n', new Uint8Array(512), false, 0), /^SerfError: user event exceeds configured limit of 512 bytes before encoding$/);
  // Fits before encoding, not after (type byte + map keys).
  assert.throws(() => s.userEvent('n', new Uint8Array(500), false, 0), /encoded user event exceeds configured limit of 512 bytes after encoding/);
  assert.throws(() => newSerf({ userEventSizeLimit: 10_000 }), /exceeds limit of 9216 bytes/);
  s.userEvent('deploy', enc('v1'), true, 0);
  assert.deepEqual(events(s), [{ type: 'user', name: 'deploy', payload: enc('v1'), ltime: 1, coalesce: true }]);
  const gossip = s.getBroadcasts(2, 1400);
  assert.equal(gossip.length, 1);
  assert.deepEqual(decodeSerfMessage(gossip[0]!.subarray(1)), { type: 'userEvent', ltime: 1, name: 'deploy', payload: enc('v1'), cc: true });
  assert.equal(s.eventClock.time(), 2);
});

test('received user events: dedup by (LTime, name, payload), old and pre-min-time events dropped', () => {
  const s = newSerf();
  events(s);
  const ev = (ltime: number, name: string, p: string): Uint8Array => encodeSerfMessage({ type: 'userEvent', ltime, name, payload: enc(p), cc: false });
  s.notifyMsg(ev(10, 'a', 'x'), 0);
  s.notifyMsg(ev(10, 'a', 'x'), 0); // duplicate
  s.notifyMsg(ev(10, 'a', 'y'), 0); // same time, other payload: distinct
  s.notifyMsg(ev(10, 'b', 'x'), 0); // other name: distinct
  assert.deepEqual(events(s).map((e) => e.type === 'user' && `${e.ltime} ${e.name} ${new TextDecoder().decode(e.payload)}`), ['10 a x', '10 a y', '10 b x']);
  assert.equal(s.eventClock.time(), 11);
  s.notifyMsg(ev(2000, 'new', ''), 0);
  s.notifyMsg(ev(1000, 'too-old', ''), 0); // older than clock − 512
  assert.deepEqual(events(s).map((e) => e.type === 'user' && e.name), ['new']);
  assert.equal(s.counters()['serf.dropped.event-too-old'], 1);
  // Snapshot restore: events at or before the saved clock are not run again.
  const r = newSerf();
  r.restoreClocks({ clock: 3, eventClock: 40, queryClock: 9 });
  r.notifyMsg(ev(40, 'seen-before-restart', ''), 0);
  r.notifyMsg(ev(41, 'fresh', ''), 0);
  assert.deepEqual(events(r).filter((e) => e.type === 'user').map((e) => e.type === 'user' && e.name), ['fresh']);
  assert.ok(r.clock.time() >= 4);
});

test('received query: ack to the originator, query event, one respond() before the deadline, size limit', () => {
  const s = newSerf();
  events(s);
  s.notifyMsg(encodeSerfMessage(query()), 1000);
  const out = outputs(s);
  assert.equal(out.length, 1);
  const ack = out[0]!;
  assert.ok(ack.kind === 'user-packet');
  assert.deepEqual(ack.to, { ip: '127.0.0.9', port: 8000 });
  assert.deepEqual(decodeSerfMessage(ack.payload), { type: 'queryResponse', ltime: 5, id: 77, from: 'self', flags: 1, payload: null });
  const [qe] = events(s);
  assert.ok(qe?.type === 'query');
  assert.equal(qe.deadlineMs, 3000);
  assert.equal(qe.sourceNode, 'origin');
  assert.throws(() => s.respond(qe.id, new Uint8Array(1024), 1500), /response exceeds limit of 1024 bytes/);
  s.respond(qe.id, enc('answer'), 1500);
  const [resp] = outputs(s);
  assert.ok(resp?.kind === 'user-packet');
  assert.deepEqual(decodeSerfMessage(resp.payload), { type: 'queryResponse', ltime: 5, id: 77, from: 'self', flags: 0, payload: enc('answer') });
  assert.throws(() => s.respond(qe.id, enc('again'), 1600), /unknown query id|already sent/);
  // Past the deadline.
  s.notifyMsg(encodeSerfMessage(query({ ltime: 6, id: 78 })), 1000);
  outputs(s);
  const [late] = events(s);
  assert.ok(late?.type === 'query');
  assert.throws(() => s.respond(late.id, enc('late'), 3001), /past the deadline/);
  // Duplicates (same LTime and ID) are dropped; re-broadcast only the first time.
  s.notifyMsg(encodeSerfMessage(query()), 1000);
  assert.deepEqual(events(s), []);
  assert.deepEqual(outputs(s), []);
});

test('query filters: node list, unanchored tag regex, unknown filter type, no-broadcast flag', () => {
  const cases: [Uint8Array[], boolean][] = [
    [[encodeNodeFilter(['self', 'x'])], true],
    [[encodeNodeFilter(['x'])], false],
    [[encodeTagFilter('role', 'web')], true], // unanchored: matches web-1
    [[encodeTagFilter('role', '^db')], false],
    [[encodeTagFilter('dc', '^$')], true], // missing tag counts as ""
    [[encodeTagFilter('role', '(')], false], // invalid regex fails
    [[Uint8Array.of(9, 0xc0)], false], // unknown filter type
    [[encodeNodeFilter(['self']), encodeTagFilter('role', 'db')], false], // all must match
  ];
  let ltime = 10;
  for (const [filters, match] of cases) {
    const s = newSerf();
    events(s);
    s.notifyMsg(encodeSerfMessage(query({ ltime: ltime++, filters, flags: 3 })), 0);
    assert.equal(events(s).length, match ? 1 : 0, JSON.stringify(filters.map((f) => [...f])));
    assert.equal(outputs(s).length, match ? 1 : 0, 'ack only when the filters match');
    assert.equal(s.getBroadcasts(2, 1400).length, 0, 'flag 2: never re-broadcast');
  }
  const s = newSerf();
  s.notifyMsg(encodeSerfMessage(query({ filters: [encodeNodeFilter(['x'])], flags: 0 })), 0);
  assert.equal(s.getBroadcasts(2, 1400).length, 1, 'not for us, still gossiped');
});

test('relay: responses go through relayFactor members too; a relay is forwarded to its destination', () => {
  const s = newSerf({ random: { float: () => 0, int: () => 0, bytes: (n) => new Uint8Array(n) } });
  for (let i = 1; i <= 4; i++) s.handleMemberEvent({ type: 'join', node: node(`m${i}`, 8000 + i) }, 0);
  events(s);
  s.notifyMsg(encodeSerfMessage(query({ relayFactor: 2, flags: 0 })), 0);
  const [qe] = events(s);
  assert.ok(qe?.type === 'query');
  s.respond(qe.id, enc('r'), 10);
  const out = outputs(s).filter((o) => o.kind === 'user-packet');
  assert.equal(out.length, 3, 'direct + 2 relays');
  const relays = out.slice(1).map((o) => (o.kind === 'user-packet' ? decodeSerfMessage(o.payload) : undefined));
  for (const r of relays) {
    assert.ok(r?.type === 'relay');
    assert.deepEqual(r.dest, { ip: '127.0.0.9', port: 8000 });
    assert.deepEqual(decodeSerfMessage(r.inner), { type: 'queryResponse', ltime: 5, id: 77, from: 'self', flags: 0, payload: enc('r') });
  }
  // As a relay member: forward the inner response unchanged.
  const inner = encodeSerfMessage({ type: 'queryResponse', ltime: 1, id: 2, from: 'z', flags: 0, payload: enc('q') });
  s.notifyMsg(encodeRelay({ ip: '10.1.2.3', port: 7946 }, 'origin', inner), 0);
  assert.deepEqual(outputs(s), [{ kind: 'user-packet', to: { ip: '10.1.2.3', port: 7946 }, payload: inner }]);
});

test('our own query: local processing answers itself; responses deduped per node; done at the timeout', () => {
  const s = newSerf({ advertise: { ip: '127.0.0.1', port: 7946 } });
  events(s);
  const id = s.query({ name: 'load', payload: enc('x'), requestAck: true, timeoutMs: 1000 }, 0);
  const ev = events(s);
  // The ack goes out before the query is delivered (as in serf).
  assert.deepEqual(ev.map((e) => e.type), ['query-ack', 'query']);
  const qe = ev[1]!;
  assert.ok(qe.type === 'query');
  s.respond(qe.id, enc('mine'), 5);
  const resp = (from: string, p: string): Uint8Array => {
    const gossip = s.getBroadcasts(2, 1400).map((b) => decodeSerfMessage(b.subarray(1)));
    const q = gossip.find((m) => m.type === 'query') ?? { ltime: 1, id: -1 };
    return encodeSerfMessage({ type: 'queryResponse', ltime: q.ltime, id: (q as { id: number }).id, from, flags: 0, payload: enc(p) });
  };
  const r = resp('peer', 'theirs');
  s.notifyMsg(r, 10);
  s.notifyMsg(r, 11);
  assert.deepEqual(events(s).map((e) => e.type === 'query-response' && `${e.queryId} ${e.from} ${new TextDecoder().decode(e.payload)}`), [`${id} self mine`, `${id} peer theirs`]);
  assert.equal(s.pollTimeout(), 1000);
  s.handleTimeout(1000);
  assert.deepEqual(events(s), [{ type: 'query-done', queryId: id, acks: 1, responses: 2 }]);
  assert.throws(() => s.query({ name: 'q', payload: new Uint8Array(1100) }, 0), /query exceeds limit of 1024 bytes/);
  const old = new Serf({ nodeName: 'o', tags: {}, protocolVersion: 3, retransmitMult: 2, random: new SeededRandom(205) });
  assert.throws(() => old.query({ name: 'q', payload: new Uint8Array(0) }, 0), /Feature not supported/);
});

test('internal queries: _serf_conflict answers for others only; key queries act on the keyring', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('dup', 9000) }, 0);
  events(s);
  s.notifyMsg(encodeSerfMessage(query({ name: '_serf_conflict', payload: enc('dup'), flags: 0 })), 0);
  const [ans] = outputs(s);
  assert.ok(ans?.kind === 'user-packet');
  const m = decodeSerfMessage(ans.payload);
  assert.ok(m.type === 'queryResponse' && m.payload !== null);
  assert.deepEqual(decodeConflictResponse(m.payload), { name: 'dup', addr: { ip: '127.0.0.1', port: 9000 } });
  s.notifyMsg(encodeSerfMessage(query({ ltime: 6, name: '_serf_conflict', payload: enc('self'), flags: 0 })), 0);
  assert.deepEqual(outputs(s), [], 'the node in question does not vote');
  assert.deepEqual(events(s), [], 'internal queries are never shown as events');

  // Key answers (pure function) with serf's messages.
  const k = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);
  const ring = new Keyring([k(16, 1)]);
  const ans1 = (op: 'install' | 'use' | 'remove' | 'list', key: Uint8Array, r: Keyring | null) => {
    const a = answerKeyQuery(op, encodeKeyRequest(key), r);
    return { ...decodeKeyResponse(a.response), changed: a.changed };
  };
  assert.equal(ans1('install', k(16, 2), null).message, 'No keyring to modify (encryption not enabled)');
  assert.equal(ans1('list', new Uint8Array(0), null).message, 'Keyring is empty (encryption not enabled)');
  assert.equal(ans1('install', k(10, 2), ring).message, 'key size must be 16, 24 or 32 bytes');
  assert.deepEqual(ans1('install', k(16, 2), ring), { result: true, message: '', keys: null, primaryKey: '', changed: true });
  assert.equal(ans1('use', k(16, 3), ring).message, 'Requested key is not in the keyring');
  assert.equal(ans1('remove', k(16, 1), ring).message, 'Removing the primary key is not allowed');
  assert.equal(ans1('use', k(16, 2), ring).result, true);
  const list = ans1('list', new Uint8Array(0), ring);
  assert.deepEqual(list.keys, [Buffer.from(k(16, 2)).toString('base64'), Buffer.from(k(16, 1)).toString('base64')]);
  // Many keys: truncated to fit 1024 bytes, saying so.
  const big = new Keyring(Array.from({ length: 40 }, (_, i) => k(32, i + 1)));
  const t = answerKeyQuery('list', encodeKeyRequest(new Uint8Array(0)), big);
  assert.ok(t.response.length <= 1024);
  assert.match(decodeKeyResponse(t.response).message, /^truncated key list response, showing first \d+ of 40 keys$/);
});

test('name conflict about us: a _serf_conflict query; the minority shuts down, the majority stays', () => {
  for (const [votes, expectShutdown] of [[['127.0.0.1:7946', '127.0.0.1:7946', '127.0.0.2:1'], false], [['127.0.0.2:1', '127.0.0.2:1', '127.0.0.1:7946'], true]] as const) {
    const s = newSerf({ advertise: { ip: '127.0.0.1', port: 7946 } });
    const other = { ...node('self', 1), addr: { ip: '127.0.0.2', port: 1 } };
    s.handleMemberEvent({ type: 'conflict', existing: node('self', 7946), other }, 0);
    const q = s.getBroadcasts(2, 1400).map((b) => decodeSerfMessage(b.subarray(1))).find((m) => m.type === 'query');
    assert.ok(q?.type === 'query' && q.name === '_serf_conflict');
    votes.forEach((v, i) => {
      const [ip, port] = v.split(':');
      const member = { name: 'self', addr: { ip: ip!, port: Number(port) }, tags: {}, status: 1, protocolMin: 1, protocolMax: 5, protocolCur: 2, delegateMin: 2, delegateMax: 5, delegateCur: 5 };
      s.notifyMsg(
        encodeSerfMessage({ type: 'queryResponse', ltime: q.ltime, id: q.id, from: `voter${i}`, flags: 0, payload: encodeConflictResponse(member) }),
        10,
      );
    });
    s.handleTimeout(60_000);
    const shut = outputs(s).filter((o) => o.kind === 'shutdown');
    assert.equal(shut.length, expectShutdown ? 1 : 0, votes.join(' '));
  }
});

test('force-leave: failed → left everywhere; prune erases (leaving members after the broadcast wait)', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('a', 9001) }, 0);
  s.handleMemberEvent({ type: 'join', node: node('b', 9002) }, 0);
  s.handleMemberEvent({ type: 'leave', node: { ...node('a', 9001), state: 'dead' } }, 0);
  events(s);
  s.forceLeave('a', false, 10);
  assert.deepEqual(events(s).map((e) => e.type), ['member-leave']);
  assert.equal(s.members().find((m) => m.name === 'a')?.status, 'left');
  s.forceLeave('a', true, 20);
  assert.deepEqual(events(s).map((e) => e.type), ['member-reap']);
  assert.equal(s.members().find((m) => m.name === 'a'), undefined);
  // b is alive: a prune makes it leaving, and it is erased only after 5 s + 1 s.
  s.forceLeave('b', true, 100);
  assert.equal(s.members().find((m) => m.name === 'b')?.status, 'leaving');
  assert.equal(s.pollTimeout() !== undefined && s.pollTimeout()! <= 6100, true);
  s.handleTimeout(6000);
  assert.ok(s.members().some((m) => m.name === 'b'));
  s.handleTimeout(6100);
  assert.equal(s.members().find((m) => m.name === 'b'), undefined);
  assert.deepEqual(events(s).map((e) => e.type), ['member-reap']);
});

test('reconnect: with failed members a random one is re-joined every interval', () => {
  const s = newSerf({ reconnectIntervalMs: 1000, random: { float: () => 0, int: () => 0, bytes: (n) => new Uint8Array(n) } });
  s.handleMemberEvent({ type: 'join', node: node('a', 9001) }, 0);
  s.handleMemberEvent({ type: 'leave', node: { ...node('a', 9001), state: 'dead' } }, 0);
  outputs(s);
  s.handleTimeout(1000);
  assert.deepEqual(outputs(s), [{ kind: 'join', seeds: [{ ip: '127.0.0.1', port: 9001 }], node: 'a' }]);
  // Probability failed/alive: with float() ≥ it, no attempt.
  const t = newSerf({ reconnectIntervalMs: 1000, random: { float: () => 0.99, int: () => 0, bytes: (n) => new Uint8Array(n) } });
  for (const n of ['a', 'b', 'c']) t.handleMemberEvent({ type: 'join', node: node(n, 9000 + n.charCodeAt(0)) }, 0);
  t.handleMemberEvent({ type: 'leave', node: { ...node('a', 9097), state: 'dead' } }, 0);
  outputs(t);
  t.handleTimeout(1000);
  assert.deepEqual(outputs(t), []);
});


test('hostile input: backtracking-prone tag regexes fail fast, floods of events/queries stay bounded', () => {
  const s = newSerf({ tags: { role: 'a'.repeat(400) } });
  s.handleMemberEvent({ type: 'join', node: node('self', 7946, { role: 'a'.repeat(400) }) }, 0);
  events(s);
  const started = Date.now();
  let ltime = 100;
  for (const expr of ['(a+)+$b', '(.*)*x', '(a|a)*\\1b']) {
    s.notifyMsg(encodeSerfMessage(query({ ltime: ltime++, filters: [encodeTagFilter('role', expr)] })), 0);
  }
  assert.ok(Date.now() - started < 2000, 'no catastrophic backtracking');
  assert.deepEqual(events(s), [], 'such filters do not match');
  s.notifyMsg(encodeSerfMessage(query({ ltime: ltime++, filters: [encodeTagFilter('role', '^a+$')] })), 0);
  assert.equal(events(s).length, 1, 'plain regexes still work');

  // 300 distinct events at one LTime: 256 kept, the rest dropped and counted.
  for (let i = 0; i < 300; i++) s.notifyMsg(encodeSerfMessage({ type: 'userEvent', ltime: 7, name: `e${i}`, payload: new Uint8Array(0), cc: false }), 0);
  assert.equal(events(s).length, 256);
  assert.equal(s.counters()['serf.dropped.event-slot-full'], 44);
  // 5000 queries nobody answers: the oldest pending ones are forgotten.
  for (let i = 0; i < 5000; i++) s.notifyMsg(encodeSerfMessage(query({ ltime: 200, id: i, flags: 0, timeoutMs: 3_600_000 })), 0);
  const qs = events(s).filter((e) => e.type === 'query');
  assert.equal(s.counters()['serf.dropped.query-slot-full'], 5000 - 1024);
  assert.equal(qs.length, 1024);
  const first = qs[0]!;
  assert.ok(first.type === 'query');
  s.respond(first.id, enc('still answerable'), 1); // 1024 < 4096 pending: the first is still there
});

test('default query timeout follows serf: GossipInterval × 16 × ceil(log10(N+1)); queue depth warnings', () => {
  const logs: string[] = [];
  const s = newSerf({ gossipIntervalMs: 200, log: (l, m) => logs.push(`${l} ${m}`) });
  s.handleMemberEvent({ type: 'join', node: node('b', 9001) }, 0);
  assert.equal(s.defaultQueryTimeoutMs(), 3200); // 2 nodes: 3.2 s, as observed with real agents
  for (let i = 0; i < 10; i++) s.handleMemberEvent({ type: 'join', node: node(`n${i}`, 9100 + i) }, 0);
  assert.equal(s.defaultQueryTimeoutMs(), 6400); // 12 nodes: ceil(log10(13)) = 2
  for (let i = 0; i < 200; i++) s.userEvent(`e${i}`, new Uint8Array(0), false, 0);
  s.handleTimeout(30_000);
  assert.ok(logs.includes('WARN serf: Event queue depth: 200'), logs.join('\n'));
});

test('the event buffer (sent in every push/pull) is capped at 2 MiB of events', () => {
  const s = newSerf();
  events(s);
  const big = new Uint8Array(60_000);
  for (let i = 0; i < 40; i++) s.notifyMsg(encodeSerfMessage({ type: 'userEvent', ltime: 10 + i, name: `big${i}`, payload: big, cc: false }), 0);
  const got = events(s).length;
  assert.equal(got, Math.floor((2 * 1024 * 1024) / (60_000 + 5)));
  assert.equal(s.counters()['serf.dropped.event-buffer-full'], 40 - got);
  assert.ok(s.localState(false).length < 2.2 * 1024 * 1024);
  // Slots are reused 512 clock ticks later, freeing their bytes.
  s.notifyMsg(encodeSerfMessage({ type: 'userEvent', ltime: 10 + 512, name: 'reuse', payload: big, cc: false }), 0);
  assert.equal(events(s).length, 1);
});

test('a query needs our own address (answers go there)', () => {
  const s = new Serf({ nodeName: 'lonely', tags: {}, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom(362) });
  assert.throws(() => s.query({ name: 'q', payload: new Uint8Array(0) }, 0), /cannot query before our own address is known/);
  const t = new Serf({ nodeName: 'lonely', tags: {}, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom(364), advertise: { ip: '10.0.0.1', port: 7946 } });
  t.query({ name: 'q', payload: new Uint8Array(0) }, 0);
  const [q] = t.getBroadcasts(2, 1400).map((b) => decodeSerfMessage(b.subarray(1)));
  assert.deepEqual(q?.type === 'query' && q.addr, { ip: '10.0.0.1', port: 7946 });
});

test('a query and a user event started in the same gossip interval both go straight to every member (each kind has its own eager budget)', () => {
  const s = newSerf({ localAddr: { ip: '127.0.0.1', port: 7946 } } as Partial<SerfConfig>);
  for (let i = 1; i <= 4; i++) s.handleMemberEvent({ type: 'join', node: node(`p${i}`, 7946 + i) }, 0);
  events(s);
  outputs(s);
  s.query({ name: 'kodama-backends', payload: enc('{}') }, 1000);
  const q = outputs(s).filter((o) => o.kind === 'user-packet');
  s.userEvent('kodama-route', enc('split'), false, 1050);
  const e = outputs(s).filter((o) => o.kind === 'user-packet');
  assert.equal(q.length, 4, 'the query went to all four peers');
  assert.equal(e.length, 4, 'the event 50 ms later too (before: left to gossip)');
  // Within one kind the budget still holds: a second event in the same interval waits for gossip.
  s.userEvent('kodama-route', enc('split-2'), false, 1100);
  assert.equal(outputs(s).filter((o) => o.kind === 'user-packet').length, 0);
});
