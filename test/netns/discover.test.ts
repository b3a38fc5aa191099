// -discover (issue 14): agents in separate network namespaces on one link find each other by
// mDNS and join without any -join, as serf's agents do; serf and kodama find each other either
// way (kodama answering serf's query, serf answering kodama's), and two discover names on the
// same link stay two clusters. -iface picks the bind address from the interface.
// Needs root (network namespaces): otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNet, requireNetns } from './net.ts';
import { GOSSIP_PORT, members, startAgent, statuses, waitViews } from './agents.ts';
import type { Agent } from './agents.ts';

test('-discover: kodama and serf agents in separate namespaces find and join each other with no -join', { timeout: 120_000 }, async (t) => {
  if (!requireNetns(t)) return;
  const net = await createNet({ nodes: 5, names: ['k0', 'k1', 's2', 'k3', 's4'] });
  const agents: Agent[] = [];
  try {
    const [k0, k1, s2, k3, s4] = net.nodes as [typeof net.nodes[0], typeof net.nodes[0], typeof net.nodes[0], typeof net.nodes[0], typeof net.nodes[0]];
    // The test network's namespaces have no default route; a LAN host has one, and with it the
    // route multicast takes. serf needs it: its mDNS client with -iface dereferences a socket it
    // could not open (IPv6 here) and panics, so the serf agents go without -iface.
    for (const n of net.nodes) await net.exec(n.ns, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    // serf's mDNS query goes out over IPv4 and IPv6 and fails whole when IPv6 cannot send: wait
    // until eth0's IPv6 link-local address has passed duplicate address detection (~1-2 s).
    for (const n of net.nodes) {
      const deadline = Date.now() + 15_000;
      for (let i = 0; i < 300 && (await net.exec(n.ns, 'ip', ['-6', 'addr', 'show', 'dev', 'eth0', 'tentative'])).trim() !== ''; i++) {
        if (Date.now() > deadline) throw new Error(`${n.name}: eth0's IPv6 address still tentative after 15 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Cluster "alpha", kodama only. k0 binds the wildcard: -iface gives it eth0's address.
    const a0 = await startAgent(net, k0, 'kodama', { args: ['-bind', `0.0.0.0:${GOSSIP_PORT}`, '-iface', 'eth0', '-discover', 'alpha'] });
    assert.match(a0.proc.output(), new RegExp(`Using interface 'eth0' address '${k0.ip.replace(/\./g, '\\.')}'`));
    assert.match(a0.proc.output(), /mDNS cluster: alpha/);
    const a1 = await startAgent(net, k1, 'kodama', { args: ['-iface', 'eth0', '-discover', 'alpha'] });
    agents.push(a0, a1);
    await waitViews([a0, a1], (v) => v.get('k0') === 'alive' && v.get('k1') === 'alive', 20_000, 'k0 and k1 to find each other');

    // Cluster "beta": serf first, then kodama (kodama's query, serf's answer; kodama's
    // announcement), then serf again (serf's query answered by both).
    const b2 = await startAgent(net, s2, 'serf', { args: ['-discover', 'beta'] });
    // k3 without -iface too: the kernel's route picks the interface.
    const b3 = await startAgent(net, k3, 'kodama', { args: ['-discover', 'beta'] });
    agents.push(b2, b3);
    await waitViews([b2, b3], (v) => v.get('s2') === 'alive' && v.get('k3') === 'alive', 20_000, 's2 and k3 to find each other');
    const b4 = await startAgent(net, s4, 'serf', { args: ['-discover', 'beta'] });
    agents.push(b4);
    const beta = ['s2', 'k3', 's4'];
    await waitViews([b2, b3, b4], (v) => beta.every((n) => v.get(n) === 'alive'), 20_000, 'all of beta to see each other');

    // Two names on one link stay two clusters.
    for (const a of agents) {
      const view = statuses((await members(a)) ?? []);
      const want = a.name === 'k0' || a.name === 'k1' ? ['k0', 'k1'] : beta;
      assert.deepEqual([...view.keys()].sort(), [...want].sort(), `${a.name} sees ${[...view.keys()].join(', ')}`);
    }
    assert.ok(b3.proc.saw('agent.mdns: Joined') || b3.proc.output().includes('agent.mdns: Joined'), b3.proc.output().slice(-3000));
  } catch (e) {
    for (const a of agents) console.error(`--- ${a.name}\n${a.proc.output().split('\n').filter((l) => /mdns|ERR|WARN|join/i.test(l)).slice(-30).join("\n")}`);
    throw e;
  } finally {
    await net.destroy();
  }
});
