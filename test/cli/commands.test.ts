// Every RPC command of the kodama CLI against a scripted agent (kodama's RPC server with a
// recording backend), side by side with the real `serf` CLI given the *same arguments* against
// the same agent: what the agent receives and what the user sees must match serf's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startRpcServer,
  type RpcBackend,
  type RpcEvent,
  type RpcKeyResponse,
  type RpcQueryParams,
  type RpcServer,
} from '../../src/rpc/index.ts';
import { runCli } from '../../src/cli/main.ts';
import { MEMBERS, runSerf } from '../rpc/helpers.ts';
import { recordIo } from './helpers.ts';

const KEY_A = 'AAAAAAAAAAAAAAAAAAAAAA==';
const KEY_B = 'BBBBBBBBBBBBBBBBBBBBBB==';
const AUTH = 'tok3n';

interface Recorded {
  joins: { addrs: string[]; replay: boolean }[];
  events: { name: string; payload: string; coalesce: boolean }[];
  forceLeaves: { node: string; prune: boolean }[];
  tags: { tags: Record<string, string>; del: string[] }[];
  queries: (Omit<RpcQueryParams, 'payload'> & { payload: string })[];
  leaves: number;
}

const rec: Recorded = { joins: [], events: [], forceLeaves: [], tags: [], queries: [], leaves: 0 };
const logSinks = new Set<(line: string) => void>();
const eventSinks = new Set<(e: RpcEvent) => void>();

const ok = (extra: Partial<RpcKeyResponse> = {}): RpcKeyResponse => ({ error: '', numNodes: 3, numResp: 3, numErr: 0, messages: {}, ...extra });

const backend: RpcBackend = {
  members: () => MEMBERS,
  join: async (addrs, replay) => {
    rec.joins.push({ addrs, replay });
    const bad = addrs.filter((a) => a.startsWith('0.'));
    return { num: addrs.length - bad.length, error: bad.map((a) => `Failed to join ${a}: refused`).join('\n') };
  },
  leave: async () => {
    rec.leaves++;
  },
  stats: () => ({
    agent: { name: 'web-1' },
    runtime: { os: 'linux', goroutines: '7' },
    serf: { members: '4', encrypted: 'true', 'event_queue': '0' },
    tags: { role: 'web', note: '<a&b>' },
  }),
  userEvent: async (name, payload, coalesce) => {
    if (name === 'toolarge') throw new Error('user event exceeds limit of 512 bytes');
    rec.events.push({ name, payload: Buffer.from(payload).toString(), coalesce });
  },
  forceLeave: async (node, prune) => {
    if (node === 'nobody') throw new Error('node not found: nobody');
    rec.forceLeaves.push({ node, prune });
  },
  setTags: async (tags, del) => {
    rec.tags.push({ tags, del });
  },
  query: async (p, sink) => {
    if (p.name.startsWith('_serf_') && (p.name !== '_serf_ping' || p.payload.length > 0)) {
      throw new Error("Queries cannot contain the '_serf_' prefix");
    }
    rec.queries.push({ ...p, payload: Buffer.from(p.payload).toString() });
    const timers: NodeJS.Timeout[] = [];
    if (p.name === '_serf_ping') {
      // the two alive members answer, the others are down
      sink.ack('web-1');
      timers.push(setTimeout(() => sink.ack('db-1'), 20), setTimeout(() => sink.done(), 200));
    } else {
      if (p.requestAck) sink.ack('web-1');
      // responses strictly after the acks: the order the user sees is then fixed
      timers.push(
        setTimeout(() => {
          if (p.requestAck) sink.ack('db-1');
        }, 20),
        setTimeout(() => sink.response('web-1', Buffer.from(`load=${Buffer.from(p.payload).toString()}\n`)), 120),
        setTimeout(() => sink.response('db-1', Buffer.from('<ok> & fine')), 160),
        setTimeout(() => sink.done(), 300),
      );
    }
    return () => timers.forEach(clearTimeout);
  },
  installKey: async (k) =>
    k === KEY_B ? ok({ error: '2/3 nodes reported failure', numErr: 2, messages: { 'web-2': 'bad key', 'db-1': 'no keyring' } }) : ok(),
  useKey: async () => ok(),
  removeKey: async () => {
    throw new Error('Removing the primary key is not allowed');
  },
  listKeys: async () => ok({ keys: { [KEY_B]: 1, [KEY_A]: 3 } }),
  getCoordinate: (node) =>
    node === 'web-1' || node === 'db-1'
      ? { vec: node === 'web-1' ? [0.0123, 0, 0, 0, 0, 0, 0, 0] : [-0.0031, 0.004, 0, 0, 0, 0, 0, 0], error: 0.5, adjustment: node === 'web-1' ? -0.0002 : 0.0001, height: 0.0001 }
      : null,
  subscribeLogs: (sink) => {
    sink('2026/11/24 22:00:00 [INFO] agent: recent line');
    sink('2026/11/24 22:00:01 [DEBUG] memberlist: chatter');
    logSinks.add(sink);
    return () => logSinks.delete(sink);
  },
  subscribeEvents: (sink) => {
    eventSinks.add(sink);
    return () => eventSinks.delete(sink);
  },
};

let server: RpcServer;
let addr: string;

before(async () => {
  server = await startRpcServer({ host: '127.0.0.1', port: 0 }, backend, { authKey: AUTH });
  addr = `127.0.0.1:${server.address.port}`;
});
after(() => server.close());

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function kodama(args: string[], env: Record<string, string> = {}): Promise<Out> {
  const io = recordIo(env);
  const code = await runCli(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

/** The same command line through both CLIs, with the agent's address and token. */
async function both(cmd: string, args: string[]): Promise<{ k: Out; s: Out }> {
  const full = [cmd, `-rpc-addr=${addr}`, `-rpc-auth=${AUTH}`, ...args];
  const s = await runSerf(full);
  const k = await kodama(full);
  return { k, s };
}

function sameResult(r: { k: Out; s: Out }): void {
  assert.equal(r.k.code, r.s.code, `exit code; kodama stderr: ${r.k.stderr} serf stderr: ${r.s.stderr}`);
  assert.equal(r.k.stdout, r.s.stdout);
}

test('join: addresses and -replay reach the agent; output and partial failure as serf', async () => {
  const r = await both('join', ['-replay', '10.0.0.1:7946', '10.0.0.2']);
  sameResult(r);
  assert.equal(r.k.stdout, 'Successfully joined cluster by contacting 2 nodes.\n');
  assert.deepEqual(rec.joins.slice(-2), [
    { addrs: ['10.0.0.1:7946', '10.0.0.2'], replay: true },
    { addrs: ['10.0.0.1:7946', '10.0.0.2'], replay: true },
  ]);
  const bad = await both('join', ['0.0.0.1:1']);
  assert.equal(bad.k.code, 1);
  assert.equal(bad.s.code, 1);
  assert.match(bad.k.stderr, /^Error joining the cluster: Failed to join 0\.0\.0\.1:1: refused/);
  const none = await kodama(['join', `-rpc-addr=${addr}`]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /At least one address to join must be specified\.\n\nUsage: kodama join/);
});

test('event: name, payload and coalescing (default true, -coalesce=false) as serf sends them', async () => {
  rec.events.length = 0;
  sameResult(await both('event', ['deploy', 'v1.2']));
  const off = await both('event', ['-coalesce=false', 'restart']);
  sameResult(off);
  assert.equal(off.k.stdout, "Event 'restart' dispatched! Coalescing enabled: false\n");
  assert.deepEqual(rec.events, [
    { name: 'deploy', payload: 'v1.2', coalesce: true },
    { name: 'deploy', payload: 'v1.2', coalesce: true },
    { name: 'restart', payload: '', coalesce: false },
    { name: 'restart', payload: '', coalesce: false },
  ]);
  const refused = await both('event', ['toolarge', 'x']);
  assert.equal(refused.k.code, 1);
  assert.equal(refused.k.stderr, 'Error sending event: user event exceeds limit of 512 bytes\n');
  const many = await kodama(['event', `-rpc-addr=${addr}`, 'a', 'b', 'c']);
  assert.equal(many.code, 1);
  assert.match(many.stderr, /^Too many command line arguments/);
});

test('force-leave (-prune) and tags (-set, -delete) reach the agent as serf sends them', async () => {
  rec.forceLeaves.length = 0;
  rec.tags.length = 0;
  sameResult(await both('force-leave', ['web-2']));
  sameResult(await both('force-leave', ['-prune', 'web-2']));
  assert.deepEqual(rec.forceLeaves, [
    { node: 'web-2', prune: false },
    { node: 'web-2', prune: false },
    { node: 'web-2', prune: true },
    { node: 'web-2', prune: true },
  ]);
  const missing = await kodama(['force-leave', `-rpc-addr=${addr}`, `-rpc-auth=${AUTH}`, 'nobody']);
  assert.deepEqual([missing.code, missing.stderr], [1, 'Error force leaving: node not found: nobody\n']);

  const t = await both('tags', ['-set', 'role=db', '-set', 'dc=x=1', '-delete', 'old']);
  sameResult(t);
  assert.equal(t.k.stdout, 'Successfully updated agent tags\n');
  assert.deepEqual(rec.tags, [
    { tags: { role: 'db', dc: 'x=1' }, del: ['old'] },
    { tags: { role: 'db', dc: 'x=1' }, del: ['old'] },
  ]);
  const nothing = await kodama(['tags', `-rpc-addr=${addr}`]);
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /Usage: kodama tags/);
  const badTag = await kodama(['tags', `-rpc-addr=${addr}`, '-set', 'novalue']);
  assert.equal(badTag.code, 1);
  assert.match(badTag.stderr, /invalid tag 'novalue'/);
});

test('info: text and -format json byte-for-byte as serf prints the agent stats', async () => {
  const text = await both('info', []);
  sameResult(text);
  assert.match(text.k.stdout, /^agent:\n\tname = web-1\nruntime:\n\tgoroutines = 7\n\tos = linux\n/);
  const json = await both('info', ['-format', 'json']);
  sameResult(json);
  // Go's HTML-safe escaping in JSON strings
  assert.match(json.k.stdout, /"note": "\\u003ca\\u0026b\\u003e"/);
  const bad = await kodama(['info', `-rpc-addr=${addr}`, '-format=yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Invalid output format "yaml"/);
});

test('keys: -list, -install with per-node failures, -use, -remove error: output as serf', async () => {
  const list = await both('keys', ['-list']);
  // serf lists keys in Go map order, kodama sorted
  assert.equal(list.k.code, list.s.code);
  assert.deepEqual(list.k.stdout.split('\n').sort(), list.s.stdout.split('\n').sort());
  assert.equal(
    list.k.stdout,
    `==> Asking all members for installed keys...\n==> Keys gathered, listing cluster keys...\n\n${KEY_A}  [3/3]\n${KEY_B}  [1/3]\n`,
  );
  const inst = await both('keys', ['-install', KEY_B]);
  assert.deepEqual([inst.k.code, inst.s.code], [1, 1]);
  // serf writes errors to stdout (its Ui has no error writer) and the failure table in Go map
  // order; kodama writes them to stderr, sorted. Same lines otherwise.
  assert.equal(inst.k.stdout, '==> Installing key on all members...\n');
  assert.deepEqual((inst.k.stdout + inst.k.stderr).split('\n').sort(), (inst.s.stdout + inst.s.stderr).split('\n').sort());
  assert.match(inst.k.stderr, /^failed: {2}db-1 {3}no keyring\nfailed: {2}web-2 {2}bad key\n\nError installing key: 2\/3 nodes reported failure\n$/);
  const use = await both('keys', ['-use', KEY_A]);
  sameResult(use);
  assert.equal(use.k.stdout, '==> Changing primary key on all members...\n==> Successfully changed primary key!\n');
  const rm = await both('keys', ['-remove', KEY_A]);
  assert.equal(rm.k.stdout + rm.k.stderr, rm.s.stdout + rm.s.stderr);
  assert.match(rm.k.stderr, /Error removing key: Removing the primary key is not allowed/);
  const two = await kodama(['keys', `-rpc-addr=${addr}`, '-list', '-use', KEY_A]);
  assert.equal(two.code, 1);
  assert.match(two.stderr, /^Only one of -install, -use, -remove, or -list allowed/);
});

test('query: parameters reach the agent; acks, responses and totals streamed as serf shows them', async () => {
  rec.queries.length = 0;
  const r = await both('query', ['-node', 'web-1', '-node', 'db-1', '-tag', 'role=w.*', '-timeout', '2s', '-relay-factor', '2', 'load', 'now']);
  assert.equal(r.k.code, 0, r.k.stderr);
  assert.equal(r.s.code, 0, r.s.stderr);
  assert.equal(
    r.k.stdout,
    [
      "Query 'load' dispatched",
      "Ack from 'web-1'",
      "Ack from 'db-1'",
      "Response from 'web-1': load=now",
      "Response from 'db-1': <ok> & fine",
      'Total Acks: 2',
      'Total Responses: 2',
      '',
    ].join('\n'),
  );
  // serf's CLI reads acks and responses from two Go channels (select picks either when both are
  // ready): same lines, order not guaranteed on its side
  assert.deepEqual(r.k.stdout.split('\n').sort(), r.s.stdout.split('\n').sort());
  const sent = { filterNodes: ['web-1', 'db-1'], filterTags: { role: 'w.*' }, requestAck: true, relayFactor: 2, timeoutMs: 2000, name: 'load', payload: 'now' };
  assert.deepEqual(rec.queries, [sent, sent]);

  const j = await both('query', ['-no-ack', '-format', 'json', 'load']);
  sameResult(j);
  assert.deepEqual(JSON.parse(j.k.stdout), { Acks: null, Responses: { 'web-1': 'load=\n', 'db-1': '<ok> & fine' } });
  assert.match(j.k.stdout, /\\u003cok\\u003e \\u0026 fine/);

  const txt = await both('query', ['-no-ack', 'load']);
  sameResult(txt);
  assert.doesNotMatch(txt.k.stdout, /Total Acks/);

  const internal = await both('query', ['_serf_ping', 'x']);
  assert.equal(internal.k.code, 1);
  assert.equal(internal.k.stderr, "Error sending query: Queries cannot contain the '_serf_' prefix\n");
  const relay = await kodama(['query', `-rpc-addr=${addr}`, '-relay-factor', '256', 'x']);
  assert.deepEqual([relay.code, relay.stderr.split('\n')[0]], [1, 'Relay factor must be between 0 and 255']);
  const timeout = await kodama(['query', `-rpc-addr=${addr}`, '-timeout', 'soon', 'x']);
  assert.equal(timeout.code, 1);
  assert.match(timeout.stderr, /invalid duration "soon"/);
});

test('reachability: _serf_ping acks against live members, as serf reports it', async () => {
  const r = await both('reachability', []);
  sameResult(r);
  // MEMBERS: web-1 and db-1 alive, web-2 failed, v6-node left
  assert.equal(r.k.stdout, 'Total members: 4, live members: 2\nStarting reachability test...\nSuccessfully contacted all live nodes\n');
  const v = await kodama(['reachability', '-verbose', `-rpc-addr=${addr}`, `-rpc-auth=${AUTH}`]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /\tAck from 'web-1'\n\tAck from 'db-1'\nQuery time: \d+\.\d\d sec, time to last response: \d+\.\d\d sec\n/);
});

test('monitor: recent and live log lines at the level, events, ends on interrupt (0) or agent gone (1)', async () => {
  const ctl = new AbortController();
  const io = { ...recordIo(), interrupt: () => ctl.signal };
  const done = runCli(['monitor', `-rpc-addr=${addr}`, `-rpc-auth=${AUTH}`, '-log-level=info'], io);
  // bounded wait until both subscriptions are in place
  for (let i = 0; i < 200 && (logSinks.size === 0 || eventSinks.size === 0); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(logSinks.size, 1);
  for (const s of logSinks) s('2026/11/24 22:00:02 [WARN] agent: live line');
  for (const s of eventSinks) s({ type: 'user', name: 'deploy', payload: Buffer.from('v2'), ltime: 7, coalesce: true });
  for (let i = 0; i < 200 && !io.out.join('').includes('Event Info'); i++) await new Promise((r) => setTimeout(r, 25));
  ctl.abort();
  assert.equal(await done, 0);
  const out = io.out.join('');
  assert.match(out, /\[INFO\] agent: recent line\n/);
  assert.doesNotMatch(out, /chatter/);
  assert.match(out, /\[WARN\] agent: live line\n/);
  assert.match(out, /Event Info:\n\tCoalesce: true\n\tEvent: "user"\n\tLTime: 7\n\tName: "deploy"\n\tPayload: \[\]byte\{0x76, 0x32\}\n/);

  // the agent going away ends the monitor with serf's message and exit 1
  const lone = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => [], subscribeLogs: () => () => {}, subscribeEvents: () => () => {} });
  const io2 = { ...recordIo(), interrupt: () => new AbortController().signal };
  const done2 = runCli(['monitor', `-rpc-addr=127.0.0.1:${lone.address.port}`], io2);
  await new Promise((r) => setTimeout(r, 300));
  await lone.close();
  assert.equal(await done2, 1);
  assert.match(io2.out.join(''), /Remote side ended the monitor!/);
});

test('leave: the agent is told to leave; serf and kodama say the same', async () => {
  const before = rec.leaves;
  sameResult(await both('leave', []));
  assert.equal(rec.leaves, before + 2);
});

test('errors say what to do: no agent, missing or wrong token, unsupported command', async () => {
  const gone = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => [] });
  const goneAddr = `127.0.0.1:${gone.address.port}`;
  await gone.close();
  for (const cmd of [['event', 'x'], ['query', 'x'], ['info'], ['keys', '-list'], ['join', 'a'], ['leave'], ['tags', '-set', 'a=b']]) {
    const r = await kodama([cmd[0]!, `-rpc-addr=${goneAddr}`, ...cmd.slice(1)]);
    assert.equal(r.code, 1, cmd.join(' '));
    assert.match(r.stderr, /^Error connecting to agent: no kodama or serf agent is listening on 127\.0\.0\.1:\d+ — start one with `kodama agent`/);
  }
  const noTok = await kodama(['info', `-rpc-addr=${addr}`]);
  assert.equal(noTok.code, 1);
  assert.match(noTok.stderr, /Authentication required.*-rpc-auth/);
  const badTok = await kodama(['event', 'x'], { KODAMA_RPC_ADDR: addr, KODAMA_RPC_AUTH: 'wrong' });
  assert.equal(badTok.code, 1);
  assert.match(badTok.stderr, /auth.*-rpc-auth/i);
  const envOk = await kodama(['event', 'fromenv'], { SERF_RPC_ADDR: addr, SERF_RPC_AUTH: AUTH });
  assert.equal(envOk.code, 0, envOk.stderr);

  // an agent without the feature (e.g. an older kodama): serf's error text, exit 1
  const bare = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => [] });
  try {
    const r = await kodama(['event', `-rpc-addr=127.0.0.1:${bare.address.port}`, 'x']);
    assert.deepEqual([r.code, r.stderr], [1, 'Error sending event: Feature not supported\n']);
  } finally {
    await bare.close();
  }
});

test('rtt: Vivaldi distance from the agent coordinates, as serf computes and prints it', async () => {
  const two = await both('rtt', ['web-1', 'db-1']);
  sameResult(two);
  assert.match(two.k.stdout, /^Estimated web-1 <-> db-1 rtt: \d+\.\d{3} ms\n$/);
  // one name: the other end is the agent itself (stats agent.name = web-1)
  const one = await both('rtt', ['db-1']);
  sameResult(one);
  assert.match(one.k.stdout, /^Estimated db-1 <-> web-1 rtt: /);
  const unknown = await both('rtt', ['nobody', 'web-1']);
  assert.deepEqual([unknown.k.code, unknown.k.stderr], [1, 'Could not find a coordinate for node "nobody"\n']);
  assert.equal(unknown.s.code, 1);
});

test('version and keygen', async () => {
  const v = await kodama(['version']);
  assert.deepEqual([v.code, v.stdout], [0, 'kodama v0.1.0\nAgent Protocol: 5 (Understands back to: 2)\n']);
  const a = await kodama(['keygen']);
  const b = await kodama(['keygen']);
  assert.equal(a.code, 0);
  assert.equal(Buffer.from(a.stdout.trim(), 'base64').length, 32);
  assert.notEqual(a.stdout, b.stdout);
});
