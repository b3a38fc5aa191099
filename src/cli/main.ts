// kodama's command line: a table from command name to the module that implements it (loaded
// on demand, so `kodama members` does not pay for the agent's imports).

import { basename } from 'node:path';
import { nearest } from '../agent/config-fields.ts';
import type { CliIo, Command } from './io.ts';
import { processIo } from './io.ts';
import { VERSION_TEXT } from './version.ts';

export const COMMANDS: Record<string, { synopsis: string; load: () => Promise<Command> }> = {
  agent: { synopsis: 'Runs a kodama agent', load: async () => (await import('./agent.ts')).agentCommand },
  members: { synopsis: 'Lists the members of a cluster', load: async () => (await import('./members.ts')).membersCommand },
  join: { synopsis: 'Tell the agent to join a cluster', load: async () => (await import('./join.ts')).joinCommand },
  leave: { synopsis: 'Gracefully leaves the cluster and shuts down', load: async () => (await import('./leave.ts')).leaveCommand },
  'force-leave': {
    synopsis: 'Forces a member of the cluster to enter the "left" state',
    load: async () => (await import('./force-leave.ts')).forceLeaveCommand,
  },
  event: { synopsis: 'Send a custom event through the cluster', load: async () => (await import('./event.ts')).eventCommand },
  query: { synopsis: 'Send a query to the cluster', load: async () => (await import('./query.ts')).queryCommand },
  tags: { synopsis: 'Modify tags of a running agent', load: async () => (await import('./tags.ts')).tagsCommand },
  keys: { synopsis: 'Manipulate the internal encryption keyring', load: async () => (await import('./keys.ts')).keysCommand },
  keygen: { synopsis: 'Generates a new encryption key', load: async () => (await import('./keygen.ts')).keygenCommand },
  monitor: { synopsis: 'Stream logs and events from an agent', load: async () => (await import('./monitor.ts')).monitorCommand },
  info: { synopsis: 'Provides debugging information for operators', load: async () => (await import('./info.ts')).infoCommand },
  reachability: {
    synopsis: 'Test network reachability',
    load: async () => (await import('./reachability.ts')).reachabilityCommand,
  },
  rtt: { synopsis: 'Estimates network round trip time between nodes', load: async () => (await import('./rtt.ts')).rttCommand },
  checks: { synopsis: 'Shows monitoring checks by role and node', load: async () => (await import('./checks.ts')).checksCommand },
  silence: { synopsis: 'Add, list or remove alert silences', load: async () => (await import('./silence.ts')).silenceCommand },
  'check-result': { synopsis: 'Push a result for a (TTL) check', load: async () => (await import('./check-result.ts')).checkResultCommand },
  deploy: { synopsis: 'Blue-green deploys: start, status, abort, rollback, route', load: async () => (await import('./deploy.ts')).deployCommand },
  exec: { synopsis: 'Run a command on every node of a role (opt-in, authenticated)', load: async () => (await import('./exec.ts')).execCommand },
  rolling: { synopsis: 'Run a command on a role in batches, drained from the balancers', load: async () => (await import('./rolling.ts')).rollingCommand },
  metrics: { synopsis: "Shows a role's performance over time", load: async () => (await import('./metrics.ts')).metricsCommand },
  inventory: { synopsis: 'Prints the cluster as an Ansible dynamic inventory', load: async () => (await import('./inventory.ts')).inventoryCommand },
  ssh: { synopsis: 'Runs a command over ssh on a role, or opens tmux panes to it', load: async () => (await import('./ssh.ts')).sshCommand },
  demo: { synopsis: 'Runs a local cluster with a load balancer and live traffic', load: async () => (await import('./demo.ts')).demoCommand },
  validate: { synopsis: 'Validate config files or directories', load: async () => (await import('./validate.ts')).validateCommand },
  version: { synopsis: 'Prints the kodama version', load: async () => (await import('./version.ts')).versionCommand },
};

export function topHelp(): string {
  const names = Object.keys(COMMANDS).sort();
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `    ${n.padEnd(width)}    ${COMMANDS[n]!.synopsis}`);
  return `Usage: kodama [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n${lines.join('\n')}\n`;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === '-help' || name === 'help') {
    io.stdout(topHelp());
    return name === undefined ? 1 : 0;
  }
  if (name === '-v' || name === '--version') {
    io.stdout(VERSION_TEXT);
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    const near = nearest(name, Object.keys(COMMANDS));
    io.stderr(`Unknown command: ${name}${near !== undefined ? ` (did you mean '${near}'?)` : ''}\n\n${topHelp()}`);
    return 1;
  }
  const cmd = await entry.load();
  return cmd.run(rest, io);
}

/** Run only when this is the program (bin/kodama loads us), not when a test imports us. */
function isEntry(): boolean {
  const script = process.argv[1];
  return script !== undefined && (basename(script) === 'kodama' || basename(script) === 'main.ts');
}

/**
 * The program: run the command named by argv, then exit with its code. No top-level await, so
 * the build can bundle the CLI as one CommonJS script (bin/kodama compiles it with V8's code cache).
 */
export function main(argv: string[]): void {
  runCli(argv, processIo).then(
    (code) => {
      process.exitCode = code;
      // Sockets are closed by now; don't wait on anything a dependency may have left armed.
      setTimeout(() => process.exit(code), 100).unref();
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}

if (isEntry()) main(process.argv.slice(2));
