// `kodama info`: the agent's stats (serf's `info`): text sections or `-format json`.

import { goJson } from './gojson.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama info [options]

  Provides debugging information for operators.

Options:

  -format=text              Output format: text (default) or json.
${RPC_HELP}
`;

/** serf's StatsContainer text: sorted sections, each `\tkey = value` sorted; trimmed. */
export function formatStats(stats: Record<string, Record<string, string>>, format: 'text' | 'json'): string {
  if (format === 'json') return goJson(stats);
  let out = '';
  for (const section of Object.keys(stats).sort()) {
    out += `${section}:\n`;
    const kv = stats[section]!;
    for (const k of Object.keys(kv).sort()) out += `\t${k} = ${kv[k]}\n`;
  }
  return out.trim();
}

export const infoCommand = rpcCommand({
  name: 'info',
  synopsis: 'Provides debugging information for operators',
  help,
  flags: [{ name: 'format', kind: 'string' }],
  failure: 'Error querying agent',
  parse: (f) => {
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`Encoding error: Invalid output format "${format}"`);
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    return { format } as { format: 'text' | 'json' };
  },
  exec: async (client, o, io) => {
    io.stdout(`${formatStats(await client.stats(), o.format)}\n`);
    return 0;
  },
});
