// What a command may touch of the process: output streams, the environment, and (for commands
// that run until interrupted: monitor, query, reachability) an interrupt signal. Tests pass
// buffers and their own AbortController; the binary passes the real process.

import type { FlagSpec } from './flags.ts';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /**
   * Aborted when the user interrupts (Ctrl-C). Optional so that the listener is only installed
   * by commands that wait on it (the agent handles its own signals).
   */
  interrupt?: () => AbortSignal;
  /** stdin and stdout are a terminal (a command may hand it to a program, as `ssh` to tmux). */
  interactive?: boolean;
  /** stdout is a terminal (live output may repeat itself there; into a file it should not). */
  terminal?: boolean;
}

export interface Command {
  synopsis: string;
  /**
   * Full help text, serf's layout: `Usage: kodama <cmd> [options] …`, a blank line, paragraphs
   * indented two spaces, then (when it takes flags) `Options:`, a blank line and one
   * `  -flag=<placeholder>  text` line per flag, text at column 28 (test/cli/help-layout.test.ts).
   */
  help: string;
  /** The flags its parser accepts (every one listed in the help; the help and docs tests read it). */
  flags: readonly FlagSpec[];
  /** A command made of subcommands: each one, by name. */
  subcommands?: Readonly<Record<string, Command>>;
  /** Returns the process exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

let sigint: AbortController | undefined;

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  // A getter: touching process.stdin opens it, which only `ssh` should pay for.
  get interactive() {
    return process.stdin.isTTY === true && process.stdout.isTTY === true;
  },
  get terminal() {
    return process.stdout.isTTY === true;
  },
  interrupt: () => {
    if (sigint === undefined) {
      const ctl = new AbortController();
      sigint = ctl;
      process.once('SIGINT', () => ctl.abort());
    }
    return sigint.signal;
  },
};
