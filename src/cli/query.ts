// `kodama query`: send a query and print acks and responses as they arrive, until its deadline
// (serf's text format, or `-format json` with every ack and response at the end).

import { parseTag } from '../serf/tags.ts';
import { parseDurationMs } from './duration.ts';
import { goJson } from './gojson.ts';
import { runQuery } from './query-run.ts';
import type { QueryRequest } from './query-run.ts';
import { RPC_HELP, intFlag, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama query [options] name payload

  Dispatches a query to the cluster and prints the acknowledgements and
  responses until the query's deadline.

Options:

  -format=text              Output format: text (default) or json.
  -node=NAME                Only this node answers (repeatable).
  -tag key=regexp           Only nodes whose tag key matches the regexp answer
                            (repeatable).
  -timeout="15s"            Providing a timeout overrides the default timeout.
  -no-ack                   Setting this prevents nodes from sending an
                            acknowledgement of the query.
  -relay-factor=0           Relay each response through this many extra nodes
                            for redundancy.
${RPC_HELP}
`;

/** Drop one trailing newline, as serf's text output does (handlers usually end with one). */
function chomp(payload: Uint8Array | null): string {
  const s = Buffer.from(payload ?? new Uint8Array(0)).toString('utf8');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

export const queryCommand = rpcCommand({
  name: 'query',
  synopsis: 'Send a query to the cluster',
  help,
  flags: [
    { name: 'format', kind: 'string' },
    { name: 'node', kind: 'list' },
    { name: 'tag', kind: 'list' },
    { name: 'timeout', kind: 'string' },
    { name: 'no-ack', kind: 'bool' },
    { name: 'relay-factor', kind: 'string' },
  ],
  failure: 'Error sending query',
  parse: (f) => {
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`Invalid format: ${format}`);
    const filterTags: Record<string, string> = {};
    for (const kv of f.lists.get('tag') ?? []) {
      const [k, v] = parseTag(kv);
      filterTags[k] = v;
    }
    const [name, payload, ...more] = f.positional;
    if (name === undefined) throw usage('A query name must be specified.');
    if (more.length > 0) throw usage('Too many command line arguments. Only a name and payload must be specified.');
    const relayFactor = intFlag(f, 'relay-factor', 0);
    if (relayFactor < 0 || relayFactor > 255) throw usage('Relay factor must be between 0 and 255');
    const t = f.strings.get('timeout');
    const req: QueryRequest = {
      name,
      payload: payload === undefined ? null : new TextEncoder().encode(payload),
      filterNodes: f.lists.get('node') ?? [],
      filterTags,
      requestAck: !f.bools.has('no-ack'),
      relayFactor,
      timeoutMs: t === undefined ? 0 : parseDurationMs(t),
    };
    return { req, format };
  },
  exec: async (client, { req, format }, io) => {
    const acks: string[] = [];
    const responses: Record<string, string> = {};
    let numResp = 0;
    const text = format === 'text';
    const how = await runQuery(
      client,
      req,
      {
        started: () => {
          if (text) io.stdout(`Query '${req.name}' dispatched\n`);
        },
        result: (r) => {
        if (r.type === 'ack') {
          acks.push(r.from);
          if (text) io.stdout(`Ack from '${r.from}'\n`);
          return;
        }
        numResp++;
        responses[r.from] = Buffer.from(r.payload ?? new Uint8Array(0)).toString('utf8');
        if (text) io.stdout(`Response from '${r.from}': ${chomp(r.payload)}\n`);
        },
      },
      io.interrupt?.(),
    );
    if (how === 'interrupted') return 1;
    if (text) {
      if (req.requestAck) io.stdout(`Total Acks: ${acks.length}\n`);
      io.stdout(`Total Responses: ${numResp}\n`);
    } else {
      io.stdout(`${goJson({ Acks: acks.length === 0 ? null : acks, Responses: responses })}\n`);
    }
    return 0;
  },
});
