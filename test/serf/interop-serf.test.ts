// The Serf layer (in-process: Serf + real core + Driver + Node transport) in a cluster with a
// real `serf agent`, encrypted: user events and queries both ways, node filters, and a key
// rotation started from the serf CLI that rotates our keyring too (no partition after).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memberlist, localConfig } from '../../src/memberlist/index.ts';
import { Driver } from '../../src/transport/driver.ts';
import { systemRandom, systemClock } from '../../src/transport/clock.ts';
import { listenNodeTransport } from '../../src/transport/node-transport.ts';
import type { TimerHandle } from '../../src/transport/transport.ts';
import { Serf } from '../../src/serf/serf.ts';
import type { KeyResultEvent, QueryResponseEvent, SerfAnyEvent, UserEvent } from '../../src/serf/serf.ts';
import { Keyring } from '../../src/wire/index.ts';
import { waitFor } from '../interop/harness.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

after(() => stopAll());

const K1 = Buffer.alloc(16, 11).toString('base64');
const K2 = Buffer.alloc(32, 22).toString('base64');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function serfCli(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('serf', args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr });
    });
  });
}

test('Serf layer ⇄ real serf agent: events, queries with filters, key rotation', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-serf-interop-'));
  const log = join(dir, 'events.log');
  const handler = join(dir, 'handler.sh');
  writeFileSync(
    handler,
    `#!/bin/sh\nif [ "$SERF_EVENT" = "query" ]; then echo "serf-answer-$SERF_QUERY_NAME"; exit 0; fi\n` +
      `echo "$SERF_EVENT $SERF_USER_EVENT $(cat)" >> ${log}\n`,
  );
  chmodSync(handler, 0o755);
  const real = await startSerf('real-serf', { encrypt: K1, args: [`-event-handler=${handler}`] });

  const ring = Keyring.fromBase64([K1]);
  const transport = await listenNodeTransport({ ip: '127.0.0.1', port: 0 });
  const ml = localConfig('ts-serf', transport.localAddress);
  ml.keyring = ring;
  ml.delegateVersions = { min: 2, max: 5, cur: 5 };
  const events: SerfAnyEvent[] = [];
  // Set once the core exists (the Serf must be built first: it is the core's delegate).
  const rt: { driver?: Driver } = {};
  let timer: TimerHandle | undefined;
  let scheduled = false;
  const serf = new Serf({
    nodeName: 'ts-serf',
    tags: { role: 'kodama-web' },
    protocolVersion: 5,
    retransmitMult: ml.retransmitMult,
    prefixBroadcasts: false,
    keyring: ring,
    random: systemRandom,
    advertise: transport.localAddress,
    gossipIntervalMs: ml.gossipIntervalMs,
    // Drain outside the core's callbacks.
    wake: () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(pump);
    },
  });
  function pump(): void {
    scheduled = false;
    const driver = rt.driver;
    if (driver === undefined) return;
    for (let o = serf.pollOutput(), i = 0; o !== undefined && i < 10_000; o = serf.pollOutput(), i++) {
      if (o.kind === 'user-packet') driver.sendUserPacket(o.to, o.payload);
      else if (o.kind === 'join') driver.join(o.seeds);
      else if (o.kind === 'update-meta') driver.updateMeta();
    }
    for (let e = serf.pollTypedEvent(), i = 0; e !== undefined && i < 10_000; e = serf.pollTypedEvent(), i++) {
      events.push(e);
      if (e.type === 'query' && e.name === 'ts-load') serf.respond(e.id, enc(`kodama-answer:${dec(e.payload)}`), systemClock.now());
    }
    timer?.cancel();
    const at = serf.pollTimeout();
    timer = at === undefined ? undefined : systemClock.setTimer(at, () => {
      serf.handleTimeout(systemClock.now());
      pump();
    });
  }
  const core = new Memberlist(ml, serf, systemRandom);
  const driver = new Driver(core, transport, systemClock, (e) => {
    serf.handleMemberEvent(e, systemClock.now());
    pump();
  });
  rt.driver = driver;
  try {
    driver.start();
    serf.prepareJoin(false);
    driver.join([{ ip: '127.0.0.1', port: real.port }]);
    await waitFor('both alive in serf members', 20_000, async () => {
      const r = await serfCli(['members', `-rpc-addr=${real.rpcAddr}`]);
      return /ts-serf\s+\S+\s+alive/.test(r.out) && serf.members().filter((m) => m.status === 'alive').length === 2 ? true : undefined;
    });

    // serf event → our user event.
    assert.equal((await serfCli(['event', `-rpc-addr=${real.rpcAddr}`, 'deploy', 'from-serf'])).code, 0);
    const ue = await waitFor('user event from serf', 15_000, () => events.find((e): e is UserEvent => e.type === 'user' && e.name === 'deploy'));
    assert.equal(dec(ue.payload), 'from-serf');
    // our user event → serf's handler.
    serf.userEvent('kodama-ev', enc('from-kodama'), false, systemClock.now());
    pump();
    await waitFor('serf handler ran for our event', 15_000, () =>
      existsSync(log) && readFileSync(log, 'utf8').includes('user kodama-ev from-kodama') ? true : undefined,
    );

    // serf query → our answer; a node filter naming only serf excludes us.
    const q = await serfCli(['query', `-rpc-addr=${real.rpcAddr}`, '-timeout=3s', 'ts-load', 'x']);
    assert.match(q.out, /Ack from 'ts-serf'/);
    assert.match(q.out, /Response from 'ts-serf': kodama-answer:x/);
    const filtered = await serfCli(['query', `-rpc-addr=${real.rpcAddr}`, '-timeout=2s', '-node=real-serf', 'ts-load', 'y']);
    assert.doesNotMatch(filtered.out, /ts-serf/);
    const tagged = await serfCli(['query', `-rpc-addr=${real.rpcAddr}`, '-timeout=2s', '-tag=role=kodama', 'ts-load', 'z']);
    assert.match(tagged.out, /Response from 'ts-serf': kodama-answer:z/);

    // our query → serf's query handler answers; acks from both.
    const id = serf.query({ name: 'who', payload: enc(''), requestAck: true, timeoutMs: 3000 }, systemClock.now());
    pump();
    await waitFor('query done', 10_000, () => (events.some((e) => e.type === 'query-done' && e.queryId === id) ? true : undefined));
    const resps = events.filter((e): e is QueryResponseEvent => e.type === 'query-response' && e.queryId === id);
    assert.deepEqual(resps.map((r) => `${r.from}=${dec(r.payload).trim()}`), ['real-serf=serf-answer-who']);
    assert.deepEqual(events.filter((e) => e.type === 'query-ack' && e.queryId === id).map((e) => (e as { from: string }).from).sort(), ['real-serf', 'ts-serf']);

    // serf keys -install/-use/-remove rotates our keyring; our own list agrees; still connected.
    for (const args of [['-install', K2], ['-use', K2], ['-remove', K1]]) {
      const r = await serfCli(['keys', `-rpc-addr=${real.rpcAddr}`, ...args]);
      assert.equal(r.code, 0, r.out);
    }
    assert.deepEqual(ring.keys().map((k) => Buffer.from(k).toString('base64')), [K2]);
    const op = serf.listKeys(systemClock.now());
    pump();
    const res = await waitFor('key list', 10_000, () => events.find((e): e is KeyResultEvent => e.type === 'key-result' && e.opId === op));
    assert.equal(res.error, '');
    assert.deepEqual(res.keys, { [K2]: 2 });
    const listed = await serfCli(['keys', `-rpc-addr=${real.rpcAddr}`, '-list']);
    assert.match(listed.out, new RegExp(`${K2.replace(/[+/=]/g, '.')}\\s+\\[2/2\\]`));
    serf.userEvent('after-rotation', enc('ok'), false, systemClock.now());
    pump();
    await waitFor('event after rotation reaches serf', 15_000, () =>
      readFileSync(log, 'utf8').includes('user after-rotation ok') ? true : undefined,
    );
    t.diagnostic('events, queries (filters), key rotation interoperate with serf');
  } finally {
    timer?.cancel();
    await new Promise<void>((r) => driver.stop(() => r()));
    await stopAll();
  }
});
