// A command made of subcommands (`kodama deploy status`, `kodama silence add`): the first
// argument picks one; none or -h prints the group's help, an unknown one or a flag before it is a
// usage error (exit 1) with that help.

import type { CliIo, Command } from './io.ts';

export function subcommandGroup(synopsis: string, help: string, subcommands: Readonly<Record<string, Command>>): Command {
  return {
    synopsis,
    help,
    flags: [],
    subcommands,
    run: async (args: string[], io: CliIo): Promise<number> => {
      const [sub, ...rest] = args;
      if (sub === undefined || sub === '-h' || sub === '-help' || sub === '--help' || sub === 'help') {
        io.stdout(help);
        return sub === undefined ? 1 : 0;
      }
      if (sub.startsWith('-')) {
        io.stderr(`flag provided but not defined: -${sub.replace(/^--?/, '').split('=')[0]}\n\n${help}`);
        return 1;
      }
      const cmd = Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
      if (cmd === undefined) {
        io.stderr(`Unknown subcommand: ${sub}\n\n${help}`);
        return 1;
      }
      return cmd.run(rest, io);
    },
  };
}
