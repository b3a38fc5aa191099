// What a command may touch of the process: output streams and the environment. Tests pass
// buffers; the binary passes the real process.

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
}

export interface Command {
  synopsis: string;
  /** Full help text (serf style: `Usage: kodama <cmd> [options]` and the options). */
  help: string;
  /** Returns the process exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};
