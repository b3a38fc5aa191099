// Name conflict against real serf agents: a Serf-layer node that joins under a name a real
// agent already has runs `_serf_conflict`, finds itself in the minority and asks to shut down;
// the real agent keeps its name and stays alive.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Memberlist, localConfig } from '../../src/memberlist/index.ts';
import { Driver } from '../../src/transport/driver.ts';
import { systemRandom, systemClock } from '../../src/transport/clock.ts';
import { listenNodeTransport } from '../../src/transport/node-transport.ts';
import type { TimerHandle } from '../../src/transport/transport.ts';
import { Serf } from '../../src/serf/serf.ts';
import type { SerfOutput } from '../../src/serf/serf.ts';
import { waitFor } from '../interop/harness.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

after(() => stopAll());

function serfCli(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('serf', args, { timeout: 20_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
  });
}

test('duplicate name: the newcomer loses _serf_conflict and shuts down; serf keeps the name', { timeout: 90_000 }, async (t) => {
  const dup = await startSerf('dup');
  const witness = await startSerf('witness', { join: [`127.0.0.1:${dup.port}`] });
  await waitFor('serf pair formed', 15_000, async () => (/dup\s+\S+\s+alive/.test(await serfCli(['members', `-rpc-addr=${witness.rpcAddr}`])) ? true : undefined));

  const transport = await listenNodeTransport({ ip: '127.0.0.1', port: 0 });
  const ml = localConfig('dup', transport.localAddress);
  ml.delegateVersions = { min: 2, max: 5, cur: 5 };
  const shutdowns: SerfOutput[] = [];
  const logs: string[] = [];
  const rt: { driver?: Driver; timer?: TimerHandle; scheduled: boolean } = { scheduled: false };
  const serf = new Serf({
    nodeName: 'dup',
    tags: {},
    protocolVersion: 5,
    retransmitMult: ml.retransmitMult,
    prefixBroadcasts: false,
    random: systemRandom,
    advertise: transport.localAddress,
    gossipIntervalMs: ml.gossipIntervalMs,
    log: (l, m) => logs.push(`${l} ${m}`),
    wake: () => {
      if (rt.scheduled) return;
      rt.scheduled = true;
      setImmediate(pump);
    },
  });
  function pump(): void {
    rt.scheduled = false;
    const driver = rt.driver;
    if (driver === undefined) return;
    for (let o = serf.pollOutput(), i = 0; o !== undefined && i < 10_000; o = serf.pollOutput(), i++) {
      if (o.kind === 'user-packet') driver.sendUserPacket(o.to, o.payload);
      else if (o.kind === 'shutdown') shutdowns.push(o);
    }
    for (let e = serf.pollTypedEvent(), i = 0; e !== undefined && i < 10_000; e = serf.pollTypedEvent(), i++) {
      // events are not under test here
    }
    rt.timer?.cancel();
    const at = serf.pollTimeout();
    rt.timer = at === undefined ? undefined : systemClock.setTimer(at, () => {
      serf.handleTimeout(systemClock.now());
      pump();
    });
  }
  const driver = new Driver(new Memberlist(ml, serf, systemRandom), transport, systemClock, (e) => {
    serf.handleMemberEvent(e, systemClock.now());
    pump();
  });
  rt.driver = driver;
  try {
    driver.start();
    driver.join([{ ip: '127.0.0.1', port: witness.port }]);
    const out = await waitFor('our node asks to shut down', 30_000, () => shutdowns[0], () => logs.join('\n'));
    assert.ok(out.kind === 'shutdown');
    assert.match(out.reason, /lost the name conflict for 'dup' \[0 \/ 1\]/);
    assert.ok(logs.some((l) => l.includes('serf: minority in name conflict resolution')), logs.join('\n'));
    t.diagnostic(out.reason);
    // The real dup is still the one the cluster knows.
    const members = await serfCli(['members', `-rpc-addr=${witness.rpcAddr}`]);
    assert.match(members, new RegExp(`dup\\s+127\\.0\\.0\\.1:${dup.port}\\s+alive`));
    assert.ok(dup.child.exitCode === null, 'the real agent keeps running');
  } finally {
    rt.timer?.cancel();
    serf.shutdown();
    await new Promise<void>((r) => driver.stop(() => r()));
    await stopAll();
  }
});
