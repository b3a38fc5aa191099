// `kodama validate <files or dirs>`: check agent config files as the agent would read them, without
// starting anything, and name every problem found (file, key path, what would be accepted), as
// `consul validate` does. Exit 0 when valid, 1 otherwise: a deploy pipeline can gate on it.

import { hostname } from 'node:os';
import { Agent } from '../agent/agent.ts';
import { checkConfigPaths, configFromEnv, resolveConfig } from '../agent/config.ts';
import { AgentError } from '../agent/errors.ts';
import { parseLogLevel } from '../agent/log.ts';
import { syslogFacility } from '../agent/syslog.ts';
import { agentOptions } from './agent.ts';
import { CliError, parseFlags } from './flags.ts';
import type { CliIo, Command } from './io.ts';
import type { FlagSpec } from './flags.ts';

const help = `Usage: kodama validate [options] <file or directory>...

  Checks the agent configuration in the files and directories given (a
  directory: its *.json files, in name order, as -config-dir reads them),
  merged in the order given, as 'kodama agent -config-file/-config-dir'
  would read them, and the KODAMA_* environment laid over them as the agent
  does. Nothing is started or bound.

  Every problem found is printed with its file and key path, one per line
  (a section stops at its first mistake); warnings (deprecated keys, values
  the agent would raise) are printed too but do not fail the check.

  Exits 0 when the configuration is valid, 1 otherwise.

Options:

  -quiet                    Print nothing when the configuration is valid.
`;

const FLAGS: FlagSpec[] = [{ name: 'quiet', kind: 'bool' }];

async function run(args: string[], io: CliIo): Promise<number> {
  let paths: string[];
  let quiet: boolean;
  try {
    const f = parseFlags(args, FLAGS);
    quiet = f.bools.has('quiet');
    paths = f.positional;
    if (paths.length === 0) throw new CliError('ERR_CLI_USAGE', 'Must specify at least one config file or directory');
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    if (e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    io.stderr(`${e.message}\n\n${help}`);
    return 1;
  }
  const checked = checkConfigPaths(paths);
  const problems = [...checked.problems];
  const warnings = [...checked.warnings];
  // Rules across files and sections, and what the agent checks before it binds anything, only
  // once every file decoded: a half-read config would raise errors that are not there.
  if (problems.length === 0) {
    try {
      const env = configFromEnv(io.env);
      warnings.push(...env.warnings);
      const r = resolveConfig([checked.config, env.config], hostname());
      warnings.push(...r.warnings);
      parseLogLevel(r.config.logLevel);
      if (r.config.syslogFacility !== undefined) syslogFacility(r.config.syslogFacility);
      Agent.create(agentOptions(r.config, () => {}));
    } catch (e) {
      if (!(e instanceof AgentError || e instanceof CliError)) throw e;
      problems.push(e.message);
    }
  }
  for (const w of warnings) io.stderr(`warning: ${w}\n`);
  if (problems.length > 0) {
    for (const p of problems) io.stderr(`${p}\n`);
    io.stderr(`\nConfig validation failed: ${problems.length} problem(s) in ${checked.files.length} file(s).\n`);
    return 1;
  }
  if (!quiet) io.stdout(`Configuration is valid! (${checked.files.length} file(s))\n`);
  return 0;
}

export const validateCommand: Command = { synopsis: 'Validate config files or directories', help, flags: FLAGS, run };
