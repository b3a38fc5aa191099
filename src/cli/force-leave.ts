// `kodama force-leave`: mark a (failed) member as left; with -prune, forget it at once.

import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama force-leave [options] name

  Forces a member of the cluster to enter the "left" state. Note that if
  the member is still actually alive, it will eventually rejoin the
  cluster. This command is most useful for cleaning out "failed" nodes
  that are never coming back. If you do not force leave a failed node,
  the agents will attempt to reconnect to it for some period of time
  before eventually reaping it.

Options:

  -prune                    Remove the member from the list of members at once.
${RPC_HELP}
`;

export const forceLeaveCommand = rpcCommand({
  name: 'force-leave',
  synopsis: 'Forces a member of the cluster to enter the "left" state',
  help,
  flags: [{ name: 'prune', kind: 'bool' }],
  failure: 'Error force leaving',
  parse: (f) => {
    const [node, ...more] = f.positional;
    if (node === undefined || more.length > 0) throw usage('A node name must be specified to force leave.');
    return { node, prune: f.bools.has('prune') };
  },
  exec: async (client, o) => {
    // serf prints nothing on success; the exit code says it worked.
    await client.forceLeave(o.node, o.prune);
    return 0;
  },
});
