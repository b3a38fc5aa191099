// `kodama monitor`: the agent's recent and live log lines at -log-level and above, plus every
// event (serf's monitor also streams `*` events), until Ctrl-C or the agent goes away.

import type { MsgValue } from '../wire/index.ts';
import { F64 } from '../wire/index.ts';
import type { RpcError } from '../rpc/index.ts';
import { asMap, asString } from '../wire/index.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const help = `Usage: kodama monitor [options]

  Shows recent log messages of an agent, and attaches to the agent,
  outputting log messages as they occur in real time. The monitor lets you
  listen for log levels that may be filtered out of the agent. For example
  your agent may only be logging at INFO level, but with the monitor you
  can see the DEBUG level logs. Events are shown as they happen too.

Options:

  -log-level=info           Log level to show (trace, debug, info, warn, err).
${RPC_HELP}
`;

/** Go's %#v of a value the Go client decoded into interface{}, closely enough for a human. */
export function goSyntax(v: MsgValue): string {
  if (v === null) return '<nil>';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof F64) return String(v.value);
  if (v instanceof Uint8Array) return `[]byte{${[...v].map((b) => `0x${b.toString(16)}`).join(', ')}}`;
  if (Array.isArray(v)) return `[]interface {}{${v.map(goSyntax).join(', ')}}`;
  const keys = Object.keys(v).sort();
  return `map[string]interface {}{${keys.map((k) => `${JSON.stringify(k)}:${goSyntax(v[k]!)}`).join(', ')}}`;
}

export const monitorCommand = rpcCommand({
  name: 'monitor',
  synopsis: 'Stream logs and events from an agent',
  help,
  flags: [{ name: 'log-level', kind: 'string' }],
  failure: 'Error starting monitor',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    return { level: (f.strings.get('log-level') ?? 'INFO').toUpperCase() };
  },
  exec: async (client, { level }, io) => {
    let ended!: (err: RpcError | null) => void;
    const over = new Promise<RpcError | null>((resolve) => (ended = resolve));
    const interrupt = io.interrupt?.();
    const onAbort = (): void => ended(null);
    interrupt?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.subscribe(
        'stream',
        { Type: '*' },
        (body) => {
          const m = asMap(body);
          let text = 'Event Info:\n';
          for (const k of Object.keys(m).sort()) text += `\t${k}: ${goSyntax(m[k]!)}\n`;
          io.stdout(text);
        },
        (err) => ended(err),
      );
      await client.subscribe(
        'monitor',
        { LogLevel: level },
        (body) => io.stdout(`${asString(asMap(body)['Log'])}\n`),
        (err) => ended(err),
      );
      if (interrupt?.aborted === true) return 0;
      const err = await over;
      if (err === null) return 0;
      io.stdout('\nRemote side ended the monitor! This usually means that the\nremote side has exited or crashed.\n');
      return 1;
    } finally {
      interrupt?.removeEventListener('abort', onAbort);
    }
  },
});
