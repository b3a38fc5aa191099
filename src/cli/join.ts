// `kodama join`: tell a running agent to join a cluster through one or more existing members.

import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama join [options] address ...

  Tells a running agent (kodama or serf) to join the cluster by specifying
  at least one existing member.

Options:

  -replay                   Replay past user events.
${RPC_HELP}
`;

export const joinCommand = rpcCommand({
  name: 'join',
  synopsis: 'Tell the agent to join a cluster',
  help,
  flags: [{ name: 'replay', kind: 'bool' }],
  timeoutMs: 60_000,
  failure: 'Error joining the cluster',
  parse: (f) => {
    if (f.positional.length === 0) throw usage('At least one address to join must be specified.');
    return { addrs: f.positional, replay: f.bools.has('replay') };
  },
  exec: async (client, o, io) => {
    const n = await client.join(o.addrs, o.replay);
    io.stdout(`Successfully joined cluster by contacting ${n} nodes.\n`);
    return 0;
  },
});
