// `kodama version`: the program version and the Serf protocol range it speaks.

import { CliError, parseFlags } from './flags.ts';
import type { CliIo, Command } from './io.ts';

export const VERSION = 'kodama v0.1.0';
export const VERSION_TEXT = `${VERSION}\nAgent Protocol: 5 (Understands back to: 2)\n`;

const help = `Usage: kodama version

  Prints the kodama version and the Serf protocol versions it speaks.
`;

async function run(args: string[], io: CliIo): Promise<number> {
  try {
    parseFlags(args, []);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    if (e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    io.stderr(`${e.message}\n\n${help}`);
    return 1;
  }
  io.stdout(VERSION_TEXT);
  return 0;
}

export const versionCommand: Command = { synopsis: 'Prints the kodama version', help, flags: [], run };
