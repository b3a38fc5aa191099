// `kodama keygen`: a fresh 32-byte key in the base64 form `-encrypt` and `kodama keys` take.

import { randomBytes } from 'node:crypto';
import { CliError, parseFlags } from './flags.ts';
import type { CliIo, Command } from './io.ts';

const help = `Usage: kodama keygen

  Generates a new encryption key that can be used to configure the agent
  to encrypt traffic (-encrypt, or kodama keys -install). The output is
  already in the form the agent expects.
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
  io.stdout(`${randomBytes(32).toString('base64')}\n`);
  return 0;
}

export const keygenCommand: Command = { synopsis: 'Generates a new encryption key', help, flags: [], run };
