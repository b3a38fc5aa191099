// `kodama inventory --list | --host NAME`: Ansible's dynamic inventory from the cluster, through
// the local agent's RPC (src/ops/inventory.ts builds it). Ansible runs an inventory script with
// `--list`; a two-line wrapper that execs this command is that script.

import type { FlagSpec } from './flags.ts';
import type { Command } from './io.ts';
import { RPC_HELP, intFlag, rpcCommand, tagFilterFrom, usage } from './rpc-command.ts';
import { buildInventory, hostVars } from '../ops/inventory.ts';
import type { SshDefaults } from '../ops/inventory.ts';

const help = `Usage: kodama inventory [options] (--list | --host NAME)

  Prints the cluster as an Ansible dynamic inventory (JSON). Groups: one per
  role (web) and one per tag as key_value (role_web, dc_east, color_blue);
  tags that say how a host is doing or how to reach it rather than what it
  is (chk, s:<service>, ssh_port, ssh_user) make no group.
  Hostvars: ansible_host (the member's address), ansible_port and ansible_user
  (from the member's ssh_port / ssh_user tags, else -port / -user), and
  kodama_status, kodama_addr, kodama_tags. Only alive members unless -status
  says otherwise.

  Ansible runs an inventory script with --list; make one that runs this:

    printf '#!/bin/sh\\nexec kodama inventory "$@"\\n' > kodama-inv && chmod +x kodama-inv
    ansible-inventory -i kodama-inv --graph
    ansible -i kodama-inv web -m ping

Options:

  --list                    Every group and host, hostvars under _meta.
  --host=NAME               The hostvars of one member ({} if there is none).
  -status=<regexp>          Members whose status matches (anchored; default
                            alive), e.g. -status 'alive|failed'.
  -role=<regexp>            Only members whose role tag matches (anchored).
  -tag <key>=<regexp>       Only members with a matching tag (repeatable).
  -port=N                   ansible_port where a member has no ssh_port tag.
  -user=NAME                ansible_user where a member has no ssh_user tag.
${RPC_HELP}
`;

const FLAGS: FlagSpec[] = [
  { name: 'list', kind: 'bool' },
  { name: 'host', kind: 'string' },
  { name: 'status', kind: 'string' },
  { name: 'role', kind: 'string' },
  { name: 'tag', kind: 'list' },
  { name: 'port', kind: 'string' },
  { name: 'user', kind: 'string' },
];

interface InventoryOptions {
  host: string | undefined;
  filter: { name: string; status: string; tags: Record<string, string> };
  defaults: SshDefaults;
}

export const inventoryCommand: Command = rpcCommand<InventoryOptions>({
  name: 'inventory',
  synopsis: 'Prints the cluster as an Ansible dynamic inventory',
  help,
  flags: FLAGS,
  failure: 'Error reading members',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const host = f.strings.get('host');
    const list = f.bools.has('list');
    if (list === (host !== undefined)) throw usage('say what to print: --list (the whole inventory) or --host NAME (one member)');
    const tags = tagFilterFrom(f);
    const port = f.strings.has('port') ? intFlag(f, 'port', 0) : undefined;
    if (port !== undefined && (port < 1 || port > 65535)) throw usage(`invalid -port ${port}: a TCP port is 1-65535`);
    const user = f.strings.get('user');
    return {
      host,
      filter: { name: '', status: f.strings.get('status') ?? 'alive', tags },
      defaults: { port, user },
    };
  },
  exec: async (client, o, io) => {
    if (o.host !== undefined) {
      const m = (await client.members()).find((x) => x.name === o.host);
      io.stdout(`${JSON.stringify(m === undefined ? {} : hostVars(m, o.defaults), null, 2)}\n`);
      return 0;
    }
    io.stdout(`${JSON.stringify(buildInventory(await client.membersFiltered(o.filter), o.defaults), null, 2)}\n`);
    return 0;
  },
});
