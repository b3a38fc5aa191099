// `kodama members`: list the members a running agent knows, through its RPC port. Output is
// serf's: text columns `name  addr:port  status  tags` or `-format json`; kodama adds
// `-format hosts` (`ip name` lines, /etc/hosts style) and a first-class `-role` filter, to feed
// other tools ("every web server") without parsing.

import type { RpcMember } from '../rpc/index.ts';
import { bytesToIp } from '../wire/index.ts';
import type { FlagSpec } from './flags.ts';
import type { Command } from './io.ts';
import { RPC_HELP, rpcCommand, tagFilterFrom, usage } from './rpc-command.ts';
import { columnize } from './columnize.ts';

const help = `Usage: kodama members [options]

  Outputs the members of a running kodama (or serf) agent.

Options:

  -detailed                 Additional information such as protocol versions
                            will be shown (only affects text output format).
  -format=text              Output format: text (default), json, or hosts (one
                            "<ip> <name>" line per member, /etc/hosts style).
  -role=<regexp>            Only members whose tag "role" matches (anchored,
                            full match), e.g. -role web -status alive -format
                            hosts. Same as -tag role=<regexp>.
  -name=<regexp>            Only members whose name matches the regexp
                            (anchored at the start and end: a full match).
  -status=<regexp>          Only members whose status matches the regexp.
  -tag <key>=<regexp>       Only members with the tag <key> whose value matches
                            the regexp (anchored: a full match). Can be given
                            multiple times to filter on multiple keys.
${RPC_HELP}
`;

const FLAGS: FlagSpec[] = [
  { name: 'detailed', kind: 'bool' },
  { name: 'format', kind: 'string' },
  { name: 'name', kind: 'string' },
  { name: 'status', kind: 'string' },
  { name: 'role', kind: 'string' },
  { name: 'tag', kind: 'list' },
];

function addrText(m: RpcMember): string {
  const ip = bytesToIp(m.addr);
  return ip.includes(':') ? `[${ip}]:${m.port}` : `${ip}:${m.port}`;
}

function tagText(tags: Record<string, string>): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(',');
}

export function formatMembers(members: RpcMember[], format: string, detailed: boolean): string {
  if (format === 'hosts') return members.map((m) => `${bytesToIp(m.addr)} ${m.name}`).join('\n');
  if (format === 'json') {
    const out = {
      members: members.map((m) => ({
        name: m.name,
        addr: addrText(m),
        port: m.port,
        tags: Object.fromEntries(Object.keys(m.tags).sort().map((k) => [k, m.tags[k]])),
        status: m.status,
        protocol: { max: m.delegateMax, min: m.delegateMin, version: m.delegateCur },
      })),
    };
    return JSON.stringify(out, null, 2);
  }
  const rows = members.map((m) => {
    const row = [m.name, addrText(m), m.status, tagText(m.tags)];
    if (detailed) {
      row.push(`Protocol Version: ${m.delegateCur}`, `Available Protocol Range: [${m.delegateMin}, ${m.delegateMax}]`);
    }
    return row;
  });
  return columnize(rows).trim();
}

export const membersCommand: Command = rpcCommand({
  name: 'members',
  synopsis: 'Lists the members of a cluster',
  help,
  flags: FLAGS,
  failure: 'Error retrieving members',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json' && format !== 'hosts') throw usage(`Encoding error: Invalid output format "${format}"`);
    const tags = tagFilterFrom(f);
    const filter = { name: f.strings.get('name') ?? '', status: f.strings.get('status') ?? '', tags };
    return { filter, format, detailed: f.bools.has('detailed') };
  },
  exec: async (client, o, io) => {
    const text = formatMembers(await client.membersFiltered(o.filter), o.format, o.detailed);
    if (text !== '') io.stdout(`${text}\n`);
    return 0;
  },
});
