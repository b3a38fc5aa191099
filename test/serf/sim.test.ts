// Serf on top of the real membership core in the deterministic simulator (virtual time, seeded
// network): statuses, tags and graceful leave across a 12-node cluster. Set KODAMA_SEED to
// replay; the seed is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../../src/sim/cluster.ts';
import { localConfig } from '../../src/memberlist/index.ts';
import { Serf } from '../../src/serf/serf.ts';
import { SeededRandom } from '../../src/sim/random.ts';
import type { MemberEventType } from '../../src/serf/serf.ts';

const N = 12;

test(`serf over memberlist in the simulator: ${N} nodes join, retag, fail, leave`, { timeout: 60_000 }, (t) => {
  const serfs = new Map<string, Serf>();
  /** observer → every Serf event it emitted, as "type subject". */
  const seen = new Map<string, string[]>();
  const cluster = new Cluster({
    config: (name, addr) => ({ ...localConfig(name, addr), enableCompression: false }),
    delegate: (name) => {
      const s = new Serf({
        nodeName: name,
        tags: { role: 'sim', name },
        protocolVersion: 5,
        retransmitMult: localConfig(name, { ip: '127.0.0.1', port: 1 }).retransmitMult,
        prefixBroadcasts: false,
        random: new SeededRandom([...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261)),
      });
      serfs.set(name, s);
      seen.set(name, []);
      return s;
    },
    onEvent: (observer, e, now) => {
      const s = serfs.get(observer.name)!;
      s.handleMemberEvent(e, now);
      for (let ev = s.pollEvent(), i = 0; ev !== undefined && i < 1000; ev = s.pollEvent(), i++) {
        seen.get(observer.name)!.push(`${ev.type} ${ev.members[0]?.name}`);
      }
    },
  });
  t.diagnostic(`seed ${cluster.seed} (replay with KODAMA_SEED=${cluster.seed})`);
  try {
    const nodes = cluster.addNodes(N);
    const names = nodes.map((n) => n.name);
    const statusAt = (observer: string, subject: string): string | undefined =>
      serfs.get(observer)!.members().find((m) => m.name === subject)?.status;
    const everyone = (subject: string, status: string, except: string[] = []): boolean =>
      names.filter((o) => o !== subject && !except.includes(o)).every((o) => statusAt(o, subject) === status);

    cluster.joinAll(names[0]!, 2000);
    assert.ok(
      cluster.runUntil(() => names.every((o) => names.every((s) => statusAt(o, s) === 'alive')), 60_000),
      'every Serf sees every node alive',
    );
    const m = serfs.get(names[4]!)!.members().find((x) => x.name === names[9]);
    assert.deepEqual(m?.tags, { role: 'sim', name: names[9] });

    // Tags change on one node: everyone sees the update.
    const retag = cluster.node(names[3]!);
    serfs.get(retag.name)!.setTags({ role: 'sim', name: retag.name, v: '2' });
    retag.driver.updateMeta();
    assert.ok(
      cluster.runUntil(() => names.every((o) => serfs.get(o)!.members().find((x) => x.name === retag.name)?.tags['v'] === '2'), 30_000),
      'tag update reaches everyone',
    );
    assert.ok(seen.get(names[0]!)!.includes(`member-update ${retag.name}`));

    // A crash: everyone else reports failed.
    const victim = names[7]!;
    cluster.kill(victim);
    assert.ok(cluster.runUntil(() => everyone(victim, 'failed', [victim]), 60_000), 'crashed node reported failed');

    // A graceful leave, the agent's sequence: intent (gossip + direct), wait, memberlist leave.
    const leaver = names[5]!;
    const ls = serfs.get(leaver)!;
    const ln = cluster.node(leaver);
    ls.leave(cluster.clock.now());
    const direct = ls.leaveIntent();
    assert.ok(direct !== undefined && direct.to.length === N - 2, 'direct leave intent to every alive peer');
    for (const to of direct.to) ln.driver.sendUserPacket(to, direct.payload);
    assert.ok(cluster.runUntil(() => ls.leaveBroadcastDone(), 5000, 50), 'leave intent broadcast finished');
    cluster.leave(leaver, 5000);
    assert.ok(cluster.runUntil(() => everyone(leaver, 'left', [leaver, victim]), 30_000), 'leaver reported left');
    cluster.runFor(10_000);
    for (const o of names) {
      if (o === leaver || o === victim) continue;
      const evs = seen.get(o)!;
      assert.ok(!evs.includes(`member-failed ${leaver}`), `${o} never reported the leaver failed: ${evs.join(', ')}`);
      assert.equal(statusAt(o, leaver), 'left');
      assert.equal(statusAt(o, victim), 'failed');
      const kinds = new Set(evs.map((e) => e.split(' ')[0] as MemberEventType));
      assert.ok(kinds.has('member-join') && kinds.has('member-leave') && kinds.has('member-failed'));
    }
    assert.deepEqual(cluster.violations, []);
  } finally {
    cluster.shutdown();
  }
});
