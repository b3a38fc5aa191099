// `kodama agent`: run an agent until a signal (or an RPC `leave`). Flags follow `serf agent`.
// SIGINT and SIGTERM both leave gracefully (an instance being terminated should leave, so peers
// record it *left*, not failed); a second signal during the leave exits at once.

import { hostname } from 'node:os';
import { Agent } from '../agent/agent.ts';
import type { Profile } from '../agent/agent.ts';
import { AgentError } from '../agent/errors.ts';
import { parseLogLevel } from '../agent/log.ts';
import { SerfError } from '../serf/errors.ts';
import { parseTag } from '../serf/tags.ts';
import { CliError, parseFlags } from './flags.ts';
import type { FlagSpec } from './flags.ts';
import type { CliIo, Command } from './io.ts';
import { parseDurationMs } from './duration.ts';

const help = `Usage: kodama agent [options]

  Starts the kodama agent and runs until an interrupt is received. The
  agent represents a single node in a cluster; it speaks Serf's protocol,
  so it can join a cluster of serf agents.

Options:

  -bind=0.0.0.0:7946       Address to bind network listeners to (UDP and TCP).
  -advertise=addr          Address to advertise to the other cluster members.
  -encrypt=key             Key for encrypting network traffic (base64, 16, 24
                           or 32 bytes). Must match the cluster's key.
  -join=addr               An initial agent to join with (host, host:port or a
                           DNS name: every address it resolves to is joined).
                           Can be specified multiple times.
  -log-level=info          Log level of the agent (trace, debug, info, warn, err).
  -node=hostname           Name of this node. Must be unique in the cluster.
  -profile=[lan|wan|local] Timing profile. The default is lan.
  -protocol=n              Serf protocol version to use (2..5, default 5).
  -rpc-addr=127.0.0.1:7373 Address to bind the RPC listener.
  -rpc-auth=token          Require this token from RPC clients.
  -tag key=value           Tag to attach to this node. Can be specified
                           multiple times.
  -broadcast-timeout=5s    Max time to wait for the leave intent to go out.
  -disable-compression     Disable message compression.
`;

const FLAGS: FlagSpec[] = [
  { name: 'bind', kind: 'string' },
  { name: 'advertise', kind: 'string' },
  { name: 'encrypt', kind: 'string' },
  { name: 'join', kind: 'list' },
  { name: 'log-level', kind: 'string' },
  { name: 'node', kind: 'string' },
  { name: 'profile', kind: 'string' },
  { name: 'protocol', kind: 'string' },
  { name: 'rpc-addr', kind: 'string' },
  { name: 'rpc-auth', kind: 'string' },
  { name: 'tag', kind: 'list' },
  { name: 'broadcast-timeout', kind: 'string' },
  { name: 'disable-compression', kind: 'bool' },
];

async function run(args: string[], io: CliIo): Promise<number> {
  let agent: Agent;
  let profile: Profile;
  let joins: string[];
  try {
    const f = parseFlags(args, FLAGS);
    if (f.positional.length > 0) throw new CliError('ERR_CLI_USAGE', `unexpected argument: ${f.positional[0]}`);
    const tags: Record<string, string> = {};
    for (const kv of f.lists.get('tag') ?? []) {
      const [k, v] = parseTag(kv);
      tags[k] = v;
    }
    const p = f.strings.get('profile') ?? 'lan';
    if (p !== 'lan' && p !== 'wan' && p !== 'local') throw new CliError('ERR_CLI_USAGE', `Unknown profile: ${p}`);
    profile = p;
    const protoText = f.strings.get('protocol') ?? '5';
    if (!/^\d+$/.test(protoText)) throw new CliError('ERR_CLI_USAGE', `invalid -protocol ${protoText}`);
    const bt = f.strings.get('broadcast-timeout');
    const broadcastTimeoutMs = bt === undefined ? 5000 : Math.max(1000, parseDurationMs(bt));
    joins = f.lists.get('join') ?? [];
    const encrypt = f.strings.get('encrypt');
    const rpcAuth = f.strings.get('rpc-auth');
    const advertise = f.strings.get('advertise');
    agent = Agent.create({
      nodeName: f.strings.get('node') ?? hostname(),
      bind: f.strings.get('bind') ?? '0.0.0.0:7946',
      ...(advertise !== undefined ? { advertise } : {}),
      ...(encrypt !== undefined ? { encrypt } : {}),
      ...(rpcAuth !== undefined ? { rpcAuth } : {}),
      tags,
      protocol: Number(protoText),
      profile,
      rpcAddr: f.strings.get('rpc-addr') ?? io.env['KODAMA_RPC_ADDR'] ?? '127.0.0.1:7373',
      logLevel: parseLogLevel(f.strings.get('log-level') ?? 'info'),
      logSink: (line) => io.stdout(`    ${line}\n`),
      broadcastTimeoutMs,
      enableCompression: !f.bools.has('disable-compression'),
    });
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    if (e instanceof CliError || e instanceof AgentError || e instanceof SerfError) {
      io.stderr(`${e.message}\n\n${help}`);
      return 1;
    }
    throw e;
  }

  io.stdout('==> Starting kodama agent...\n');
  try {
    await agent.start();
  } catch (e) {
    io.stderr(`==> Failed to start the agent: ${(e as Error).message}\n`);
    return 1;
  }
  const bind = agent.bindAddress;
  const rpc = agent.rpcAddress;
  io.stdout(
    [
      '==> kodama agent running!',
      `         Node name: '${agent.nodeName}'`,
      `         Bind addr: '${bind.ip}:${bind.port}'`,
      `    Advertise addr: '${agent.advertiseAddress.ip}:${agent.advertiseAddress.port}'`,
      `          RPC addr: '${rpc === undefined ? '' : `${rpc.host}:${rpc.port}`}'`,
      `         Encrypted: ${agent.encrypted}`,
      `           Profile: ${profile}`,
      '',
      '==> Log data will now stream in as it occurs:',
      '',
    ].join('\n') + '\n',
  );

  const finished = new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        io.stdout(`==> Caught second signal ${sig}, exiting without leaving\n`);
        resolve(1);
        return;
      }
      io.stdout(`==> Caught signal: ${sig}\n==> Gracefully shutting down agent...\n`);
      void (async () => {
        try {
          await agent.leave();
        } catch (e) {
          io.stderr(`==> Error leaving: ${(e as Error).message}\n`);
        }
        await agent.stop();
      })();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    agent.on('shutdown', () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(0);
    });
  });

  if (joins.length > 0) {
    io.stdout(`==> Joining cluster...(replay: false)\n`);
    const r = await agent.join(joins);
    if (r.num === 0) {
      io.stderr(`==> Failed to join: ${r.errors.join('; ')}\n`);
      await agent.stop();
      await finished;
      return 1;
    }
    io.stdout(`    Join completed. Synced with ${r.num} initial agents\n`);
  }
  return finished;
}

export const agentCommand: Command = { synopsis: 'Runs a kodama agent', help, run };
