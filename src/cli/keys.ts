// `kodama keys`: install, use, remove or list gossip encryption keys across the whole cluster
// (the agent runs serf's internal key queries and aggregates every node's answer).

import type { RpcKeyResponse } from '../rpc/index.ts';
import { columnize } from './columnize.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama keys [options]...

  Manage the internal encryption keyring used by the cluster. Modifications
  made by this command will be broadcasted to all members in the cluster and
  applied locally on each member. Operations of this command are idempotent.

  To facilitate key rotation, several encryption keys may be in use at the
  same time. Only one key, the "primary" key, will be used for encrypting
  messages. All other keys are used for decryption only.

  All variations of this command will return 0 if all nodes reply and report
  no errors. If any node fails to respond or reports failure, we return 1.

  WARNING: Running with multiple encryption keys enabled is recommended as a
  transition state only. Performance may be impacted by using multiple keys.

Options:

  -install=<key>            Install a new key onto the internal keyring. This
                            will enable the key for decryption. The key will not
                            be used to encrypt messages until the primary key is
                            changed.
  -use=<key>                Change the primary key used for encrypting messages.
                            All nodes in the cluster must already have this key
                            installed if they are to continue communicating with
                            each other.
  -remove=<key>             Remove a key from the internal keyring. The key
                            being removed may not be the current primary key.
  -list                     List all currently known keys in the cluster. This
                            will ask all nodes in the cluster for a list of keys
                            and dump a summary containing each key and the
                            number of members it is installed on to the console.
${RPC_HELP}
`;

type KeyOp =
  | { op: 'list' }
  | { op: 'install' | 'use' | 'remove'; key: string };

const WORDING = {
  install: { start: 'Installing key on all members...', ok: 'Successfully installed key!', fail: 'Error installing key' },
  use: { start: 'Changing primary key on all members...', ok: 'Successfully changed primary key!', fail: 'Error changing primary key' },
  remove: { start: 'Removing key on all members...', ok: 'Successfully removed key!', fail: 'Error removing key' },
} as const;

/** serf's `failed: | node | message` table (sorted by node, where Go's map order is random). */
function failureTable(r: RpcKeyResponse): string {
  const nodes = Object.keys(r.messages).sort();
  return columnize(nodes.map((n) => ['failed:', n, r.messages[n]!]));
}

export const keysCommand = rpcCommand({
  name: 'keys',
  synopsis: 'Manipulate the internal encryption keyring',
  help,
  flags: [
    { name: 'install', kind: 'string' },
    { name: 'use', kind: 'string' },
    { name: 'remove', kind: 'string' },
    { name: 'list', kind: 'bool' },
  ],
  timeoutMs: 60_000,
  failure: 'Error',
  parse: (f): KeyOp => {
    const chosen: KeyOp[] = [];
    if (f.bools.has('list')) chosen.push({ op: 'list' });
    for (const op of ['install', 'use', 'remove'] as const) {
      const key = f.strings.get(op) ?? '';
      if (key !== '') chosen.push({ op, key });
    }
    if (chosen.length > 1) throw usage('Only one of -install, -use, -remove, or -list allowed');
    const [one] = chosen;
    if (one === undefined) throw usage('Give one of -install=<key>, -use=<key>, -remove=<key> or -list.');
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    return one;
  },
  exec: async (client, o, io) => {
    const failed = (r: RpcKeyResponse, what: string): number => {
      if (Object.keys(r.messages).length > 0) io.stderr(`${failureTable(r)}\n`);
      io.stderr(`\n${what}: ${r.error}\n`);
      return 1;
    };
    if (o.op === 'list') {
      io.stdout('==> Asking all members for installed keys...\n');
      const r = await client.listKeys();
      if (r.error !== '') return failed(r, 'Failed to gather member keys');
      io.stdout('==> Keys gathered, listing cluster keys...\n\n');
      const keys = r.keys ?? {};
      const rows = Object.keys(keys)
        .sort()
        .map((k) => [k, `[${keys[k]}/${r.numNodes}]`]);
      io.stdout(`${columnize(rows)}\n`);
      return 0;
    }
    const w = WORDING[o.op];
    io.stdout(`==> ${w.start}\n`);
    const r = o.op === 'install' ? await client.installKey(o.key) : o.op === 'use' ? await client.useKey(o.key) : await client.removeKey(o.key);
    if (r.error !== '') return failed(r, w.fail);
    io.stdout(`==> ${w.ok}\n`);
    return 0;
  },
});
