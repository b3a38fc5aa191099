// `kodama leave`: the agent leaves the cluster gracefully and shuts down.

import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama leave [options]

  Causes the agent to gracefully leave the cluster and shut down.

Options:

${RPC_HELP}
`;

export const leaveCommand = rpcCommand({
  name: 'leave',
  synopsis: 'Gracefully leaves the cluster and shuts down',
  help,
  flags: [],
  timeoutMs: 60_000,
  failure: 'Error leaving',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    return null;
  },
  exec: async (client, _o, io) => {
    await client.leave();
    io.stdout('Graceful leave complete\n');
    return 0;
  },
});
