// `kodama rtt`: estimated round trip time between two nodes from the agent's network
// coordinates (serf's Vivaldi model, src/serf/coordinate.ts): kodama and serf agents alike.

import type { RpcCoordinate } from '../rpc/index.ts';
import { distanceMs } from '../serf/coordinate.ts';
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
