// `kodama event`: broadcast a user event (name and optional payload) through the cluster.

import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama event [options] name payload

  Dispatches a custom event across the cluster.

Options:

  -coalesce=true/false      Whether this event can be coalesced. This means
                            that repeated events of the same name within a
                            short period of time are ignored, except the last
                            one received. Default is true.
${RPC_HELP}
`;

export const eventCommand = rpcCommand({
  name: 'event',
  synopsis: 'Send a custom event through the cluster',
  help,
  flags: [{ name: 'coalesce', kind: 'bool' }],
  failure: 'Error sending event',
  parse: (f) => {
    const [name, payload, ...more] = f.positional;
    if (name === undefined) throw usage('An event name must be specified.');
    if (more.length > 0) throw usage('Too many command line arguments. Only a name and payload must be specified.');
    return {
      name,
      payload: payload === undefined ? new Uint8Array(0) : new TextEncoder().encode(payload),
      coalesce: f.boolValues.get('coalesce') ?? true,
    };
  },
  exec: async (client, o, io) => {
    await client.userEvent(o.name, o.payload, o.coalesce);
    io.stdout(`Event '${o.name}' dispatched! Coalescing enabled: ${o.coalesce}\n`);
    return 0;
  },
});
