// `kodama reachability`: ping every member through the cluster (serf's `_serf_ping` query with
// acks) and compare who acknowledged with who is alive.

import type { RpcMember } from '../rpc/index.ts';
import { runQuery } from './query-run.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama reachability [options]

  Tests the network reachability of this node: every live member should
  acknowledge a ping query sent through the cluster.

Options:

  -verbose                  Verbose mode: every ack and the timings.
${RPC_HELP}
`;

const TOO_MANY_ACKS = 'This could mean the cluster is detecting false-failures due to a misconfiguration or network issue.';
const TOO_FEW_ACKS = 'This could mean gossip packets are being lost due to a misconfiguration or network issue.';
const DUPLICATES = 'Duplicate responses means there is a misconfiguration. Verify that node names are unique.';
const TROUBLESHOOTING = `
Troubleshooting tips:
* Ensure that the bind addr:port is accessible by all other nodes
* If an advertise address is set, ensure it routes to the bind address
* Check that no nodes are behind a NAT
* If nodes are behind firewalls or iptables, check that gossip traffic is permitted (UDP and TCP)
* Verify networking equipment is functional`;

export const reachabilityCommand = rpcCommand({
  name: 'reachability',
  synopsis: 'Test network reachability',
  help,
  flags: [{ name: 'verbose', kind: 'bool' }],
  failure: 'Error',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    return { verbose: f.bools.has('verbose') };
  },
  exec: async (client, { verbose }, io) => {
    const out = (line: string): void => io.stdout(`${line}\n`);
    const members: RpcMember[] = await client.members();
    const live = new Set(members.filter((m) => m.status === 'alive').map((m) => m.name));
    out(`Total members: ${members.length}, live members: ${live.size}`);
    const start = performance.now();
    let last = start;
    let numAcks = 0;
    let dups = false;
    const acksFrom = new Set<string>();
    const how = await runQuery(
      client,
      { name: '_serf_ping', payload: null, filterNodes: [], filterTags: {}, requestAck: true, relayFactor: 0, timeoutMs: 0 },
      {
        started: () => out('Starting reachability test...'),
        result: (r) => {
          if (r.type !== 'ack') return;
          if (verbose) out(`\tAck from '${r.from}'`);
          numAcks++;
          if (acksFrom.has(r.from)) {
            dups = true;
            out(`Duplicate response from '${r.from}'`);
          }
          acksFrom.add(r.from);
          last = performance.now();
        },
      },
      io.interrupt?.(),
    );
    if (how === 'interrupted') {
      io.stderr('Test interrupted\n');
      return 1;
    }
    if (verbose) {
      const secs = (ms: number): string => (ms / 1000).toFixed(2);
      out(`Query time: ${secs(performance.now() - start)} sec, time to last response: ${secs(last - start)} sec`);
    }
    let exit = 0;
    if (dups) {
      out(DUPLICATES);
      exit = 1;
    }
    if (numAcks === live.size) {
      out('Successfully contacted all live nodes');
    } else if (numAcks > live.size) {
      out('Received more acks than live nodes! Acks from non-live nodes:');
      for (const m of [...acksFrom].sort()) if (!live.has(m)) out(`\t${m}`);
      out(TOO_MANY_ACKS);
      out(TROUBLESHOOTING);
      return 1;
    } else {
      out('Received less acks than live nodes! Missing acks from:');
      for (const m of [...live].sort()) if (!acksFrom.has(m)) out(`\t${m}`);
      out(TOO_FEW_ACKS);
      out(TROUBLESHOOTING);
      return 1;
    }
    return exit;
  },
});
