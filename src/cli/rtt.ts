// `kodama rtt`: estimated round trip time between two nodes from the agent's network
// coordinates (serf's Vivaldi model). Works against agents that keep coordinates (serf does).

import type { RpcCoordinate } from '../rpc/index.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama rtt [options] node1 [node2]

  Estimates the round trip time between two nodes using the cluster's network
  coordinate model.

  At least one node name is required. If the second node name isn't given, it
  is set to the agent's node name. Note that these are node names as known to
  the cluster as "kodama members" would show, not IP addresses.

Options:

${RPC_HELP}
`;

/** Vivaldi distance in ms, as serf computes it (whole nanoseconds, adjustments when positive). */
export function distanceMs(a: RpcCoordinate, b: RpcCoordinate): number {
  let sum = 0;
  for (let i = 0; i < a.vec.length; i++) {
    const d = (a.vec[i] ?? 0) - (b.vec[i] ?? 0);
    sum += d * d;
  }
  let dist = Math.sqrt(sum) + a.height + b.height;
  const adjusted = dist + a.adjustment + b.adjustment;
  if (adjusted > 0) dist = adjusted;
  return Math.trunc(dist * 1e9) / 1e6;
}

export const rttCommand = rpcCommand({
  name: 'rtt',
  synopsis: 'Estimates network round trip time between nodes',
  help,
  flags: [],
  failure: 'Error getting coordinates',
  parse: (f) => {
    if (f.positional.length < 1 || f.positional.length > 2) throw usage('One or two node names must be specified');
    return { nodes: f.positional };
  },
  exec: async (client, { nodes }, io) => {
    const [first, given] = nodes as [string, string | undefined];
    const second = given ?? (await client.stats())['agent']?.['name'] ?? '';
    const coords: RpcCoordinate[] = [];
    for (const n of [first, second]) {
      const c = await client.getCoordinate(n);
      if (c === null) {
        io.stderr(`Could not find a coordinate for node "${n}"\n`);
        return 1;
      }
      coords.push(c);
    }
    if (coords[0]!.vec.length !== coords[1]!.vec.length) {
      io.stderr('Error getting coordinates: coordinate dimensionality does not match\n');
      return 1;
    }
    io.stdout(`Estimated ${first} <-> ${second} rtt: ${distanceMs(coords[0]!, coords[1]!).toFixed(3)} ms\n`);
    return 0;
  },
});
