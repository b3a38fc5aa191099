// `kodama members`: list the members a running agent knows, through its RPC port. Output is
// serf's: text columns `name  addr:port  status  tags` or `-format json`.

import { RpcClient, RpcError } from '../rpc/index.ts';
import type { RpcMember } from '../rpc/index.ts';
import { bytesToIp } from '../wire/index.ts';
import { parseTag } from '../serf/tags.ts';
import { SerfError } from '../serf/errors.ts';
import { CliError, parseFlags } from './flags.ts';
import type { FlagSpec } from './flags.ts';
import type { CliIo, Command } from './io.ts';
import { columnize } from './columnize.ts';

const help = `Usage: kodama members [options]

  Outputs the members of a running kodama (or serf) agent.

Options:

  -detailed                 Additional information such as protocol versions
                            will be shown (only affects text output format).

  -format                   If provided, output is returned in the specified
                            format. Valid formats are 'json', and 'text' (default)

  -name=<regexp>            If provided, only members matching the regexp are
                            returned. The regexp is anchored at the start and end,
                            and must be a full match.

  -status=<regexp>          If provided, output is filtered to only nodes matching
                            the regular expression for status

  -tag <key>=<regexp>       If provided, output is filtered to only nodes with the
                            tag <key> with value matching the regular expression.
                            tag can be specified multiple times to filter on
                            multiple keys. The regexp is anchored at the start and end,
                            and must be a full match.

  -rpc-addr=127.0.0.1:7373  RPC address of the agent (env KODAMA_RPC_ADDR, then
                            SERF_RPC_ADDR).

  -rpc-auth=""              RPC auth token of the agent (env KODAMA_RPC_AUTH,
                            then SERF_RPC_AUTH).
`;

const FLAGS: FlagSpec[] = [
  { name: 'detailed', kind: 'bool' },
  { name: 'format', kind: 'string' },
  { name: 'name', kind: 'string' },
  { name: 'status', kind: 'string' },
  { name: 'role', kind: 'string' },
  { name: 'tag', kind: 'list' },
  { name: 'rpc-addr', kind: 'string' },
  { name: 'rpc-auth', kind: 'string' },
];

export function rpcAddrFrom(flag: string | undefined, env: CliIo['env']): string {
  return flag ?? env['KODAMA_RPC_ADDR'] ?? env['SERF_RPC_ADDR'] ?? '127.0.0.1:7373';
}

export function rpcAuthFrom(flag: string | undefined, env: CliIo['env']): string {
  return flag ?? env['KODAMA_RPC_AUTH'] ?? env['SERF_RPC_AUTH'] ?? '';
}

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

async function run(args: string[], io: CliIo): Promise<number> {
  let filter: { name?: string; status?: string; tags?: Record<string, string> };
  let format: string;
  let detailed: boolean;
  let addr: string;
  let auth: string;
  try {
    const f = parseFlags(args, FLAGS);
    if (f.positional.length > 0) throw new CliError('ERR_CLI_USAGE', `unexpected argument: ${f.positional[0]}`);
    format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') {
      io.stderr(`Encoding error: Invalid output format "${format}"\n`);
      return 1;
    }
    detailed = f.bools.has('detailed');
    const tags: Record<string, string> = {};
    const role = f.strings.get('role');
    if (role !== undefined) {
      io.stdout("Deprecation warning: 'Role' has been replaced with 'Tags'\n");
      tags['role'] = role;
    }
    for (const kv of f.lists.get('tag') ?? []) {
      const [k, v] = parseTag(kv);
      tags[k] = v;
    }
    filter = { name: f.strings.get('name') ?? '', status: f.strings.get('status') ?? '', tags };
    addr = rpcAddrFrom(f.strings.get('rpc-addr'), io.env);
    auth = rpcAuthFrom(f.strings.get('rpc-auth'), io.env);
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    if (e instanceof CliError || e instanceof SerfError) {
      io.stderr(`${e.message}\n\n${help}`);
      return 1;
    }
    throw e;
  }
  let client: RpcClient;
  try {
    client = await RpcClient.connect(addr, auth === '' ? {} : { authKey: auth });
  } catch (e) {
    io.stderr(`Error connecting to agent: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const members = await client.membersFiltered(filter);
    const text = formatMembers(members, format, detailed);
    if (text !== '') io.stdout(`${text}\n`);
    return 0;
  } catch (e) {
    const code = e instanceof RpcError ? ` (${e.code})` : '';
    io.stderr(`Error retrieving members: ${(e as Error).message}${code}\n`);
    return 1;
  } finally {
    client.close();
  }
}

export const membersCommand: Command = { synopsis: 'Lists the members of a cluster', help, run };
