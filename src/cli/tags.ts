// `kodama tags`: set and delete tags on a running agent (gossiped to the cluster as an update).

import { parseTag } from '../serf/tags.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama tags [options] ...

  Modifies tags on a running agent.

Options:

  -set key=value            Creates or modifies the value of a tag (repeatable).
  -delete key               Removes a tag, if present (repeatable).
${RPC_HELP}
`;

export const tagsCommand = rpcCommand({
  name: 'tags',
  synopsis: 'Modify tags of a running agent',
  help,
  flags: [
    { name: 'set', kind: 'list' },
    { name: 'delete', kind: 'list' },
  ],
  failure: 'Error setting tags',
  parse: (f) => {
    const set = f.lists.get('set') ?? [];
    const del = f.lists.get('delete') ?? [];
    if (set.length === 0 && del.length === 0) throw usage('Nothing to do: give at least one -set key=value or -delete key.');
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const tags: Record<string, string> = {};
    for (const kv of set) {
      const [k, v] = parseTag(kv);
      tags[k] = v;
    }
    return { tags, del };
  },
  exec: async (client, o, io) => {
    await client.updateTags(o.tags, o.del);
    io.stdout('Successfully updated agent tags\n');
    return 0;
  },
});
