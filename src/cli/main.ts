// kodama's command line: a table from command name to the module that implements it (loaded
// on demand, so `kodama members` does not pay for the agent's imports).

import { basename } from 'node:path';
import type { CliIo, Command } from './io.ts';
import { processIo } from './io.ts';

export const COMMANDS: Record<string, { synopsis: string; load: () => Promise<Command> }> = {
  agent: { synopsis: 'Runs a kodama agent', load: async () => (await import('./agent.ts')).agentCommand },
  members: { synopsis: 'Lists the members of a cluster', load: async () => (await import('./members.ts')).membersCommand },
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
  if (name === '-v' || name === '--version' || name === 'version') {
    io.stdout('kodama v0.1.0\nAgent Protocol: 5 (Understands back to: 2)\n');
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    io.stderr(`Unknown command: ${name}\n\n${topHelp()}`);
    return 1;
  }
  const cmd = await entry.load();
  return cmd.run(rest, io);
}

/** Run only when this is the program (bin/kodama imports us), not when a test imports us. */
function isEntry(): boolean {
  const script = process.argv[1];
  return script !== undefined && (basename(script) === 'kodama' || basename(script) === 'main.ts');
}

if (isEntry()) {
  const code = await runCli(process.argv.slice(2), processIo);
  process.exitCode = code;
  // Sockets are closed by now; don't wait on anything a dependency may have left armed.
  setTimeout(() => process.exit(code), 100).unref();
}
