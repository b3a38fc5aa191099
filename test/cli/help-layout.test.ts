// Every command's --help has one layout, serf's:
//
//   Usage: kodama <command> [options] …        ([options] only when it takes flags)
//   (blank)
//     A paragraph, indented two spaces.
//   …
//   Options:
//   (blank)
//     -flag=<placeholder>       Text, at column 28 (serf's commands; the agent's 27, as serf
//                               agent's), continued at the same column; a flag too long for
//     -a-long-flag=<placeholder>
//                               the column has its text on the next line.
//
// No blank line between flags, none wider than 80 columns; a flag that takes a value shows a placeholder (`-flag=X` or, as
// serf spells a few, `-flag X`); a boolean shows none (serf's `-coalesce=true/false` aside); the
// flags listed are exactly those the command's parser accepts (Command.flags). A command made of
// subcommands lists them under "Subcommands:" and each subcommand's help follows the same layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { COMMANDS, runCli } from '../../src/cli/main.ts';
import type { Command } from '../../src/cli/io.ts';
import { KODAMA_BIN, REPO } from '../lib/agents.ts';
import { recordIo } from './helpers.ts';

/** Column of a flag's text: serf's commands; serf's agent help uses one less. */
const TEXT_COLUMN = 28;
const AGENT_TEXT_COLUMN = 27;

interface HelpCase {
  /** `members`, `deploy status`, `demo web-node`. */
  path: string;
  command: Command;
}

/** Every command and subcommand, as the CLI's table and the groups list them. */
async function allCommands(): Promise<HelpCase[]> {
  const out: HelpCase[] = [];
  for (const name of Object.keys(COMMANDS).sort()) {
    const command = await COMMANDS[name]!.load();
    out.push({ path: name, command });
    for (const [sub, c] of Object.entries(command.subcommands ?? {})) out.push({ path: `${name} ${sub}`, command: c });
  }
  return out;
}

async function helpOf(path: string): Promise<string> {
  const io = recordIo();
  const code = await runCli([...path.split(' '), '--help'], io);
  assert.equal(code, 0, `kodama ${path} --help exits 0`);
  return io.out.join('');
}

/** A flag with its placeholder, before the text column: `  -name=X`, `  -tag key=value`, `  -once`. */
const FLAG_HEAD = /^ {2}(--?[a-z][a-z0-9-]*)(?:(=| )(\S+))?$/;

/** What is wrong with one help text (empty: nothing). */
function layoutProblems(c: HelpCase, text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  const col = c.path === 'agent' ? AGENT_TEXT_COLUMN : TEXT_COLUMN;
  const flags = c.command.flags;
  const group = c.command.subcommands !== undefined && c.path.split(' ').length === 1 && c.path !== 'demo';

  if (!text.endsWith('\n')) problems.push('does not end with a newline');
  lines.forEach((l, i) => {
    if (/\s$/.test(l)) problems.push(`line ${i + 1} has trailing blanks: ${JSON.stringify(l)}`);
  });
  const usage = lines[0] ?? '';
  if (!usage.startsWith(`Usage: kodama ${c.path}`) || !/^( |$)/.test(usage.slice(`Usage: kodama ${c.path}`.length))) problems.push(`usage line: ${usage}`);
  if (lines[1] !== '') problems.push('no blank line after the usage line');
  if (!/^ {2}\S/.test(lines[2] ?? '')) problems.push(`no paragraph (indented two spaces) after the usage line: ${JSON.stringify(lines[2])}`);

  const opt = lines.indexOf('Options:');
  if (group) {
    if (!/^Usage: kodama \S+ <subcommand>/.test(usage)) problems.push(`a group's usage names <subcommand>: ${usage}`);
    if (!lines.includes('Subcommands:')) problems.push('a group lists its subcommands under "Subcommands:"');
    if (opt >= 0) problems.push('a group takes no flags of its own: no Options section');
    return problems;
  }
  if (flags.length === 0) {
    if (opt >= 0) problems.push('an Options section but no flags');
    if (usage.includes('[options]')) problems.push(`[options] in the usage line but no flags: ${usage}`);
    return problems;
  }
  if (opt < 0) return [...problems, 'takes flags but has no "Options:" section'];
  if (!usage.includes('[options]')) problems.push(`takes flags but the usage line does not say [options]: ${usage}`);
  if (lines[opt + 1] !== '') problems.push('no blank line after "Options:"');

  const listed = new Map<string, { sep: string | undefined; placeholder: string | undefined }>();
  let i = opt + 2;
  let needText = false;
  for (; i < lines.length && lines[i] !== ''; i++) {
    const l = lines[i]!;
    if (l.length > 80) problems.push(`wider than 80 columns: ${l}`);
    // The text column splits a flag line: the flag before it (then a blank), its text from it.
    const hasText = l.length > col && l[col - 1] === ' ' && l[col] !== ' ';
    const m = FLAG_HEAD.exec(hasText ? l.slice(0, col).trimEnd() : l);
    if (m !== null) {
      if (needText) problems.push(`a flag line before the text of the one above: ${l}`);
      const name = m[1]!.replace(/^--?/, '');
      listed.set(name, { sep: m[2], placeholder: m[3] });
      needText = !hasText;
      continue;
    }
    if (new RegExp(`^ {${col}}\\S`).test(l)) {
      needText = false;
      continue;
    }
    problems.push(`neither a flag with its text at column ${col} nor text continued there: ${JSON.stringify(l)}`);
  }
  if (needText) problems.push('the last flag has no text');
  const nextText = lines.slice(i).find((l) => l !== '');
  if (nextText !== undefined && /^ {2}-/.test(nextText)) problems.push(`a blank line between flags (before ${nextText.trim()})`);

  const accepted = new Map(flags.map((f) => [f.name, f.kind]));
  for (const name of accepted.keys()) if (!listed.has(name)) problems.push(`-${name} is accepted but not in the help`);
  for (const [name, shown] of listed) {
    const kind = accepted.get(name);
    if (kind === undefined) {
      problems.push(`-${name} is in the help but not accepted`);
      continue;
    }
    if (kind === 'bool' && shown.placeholder !== undefined && !(shown.sep === '=' && shown.placeholder === 'true/false')) {
      problems.push(`-${name} is a switch but shows a value (${shown.sep ?? ''}${shown.placeholder})`);
    }
    if (kind !== 'bool' && shown.placeholder === undefined) problems.push(`-${name} takes a value but shows no placeholder (-${name}=<…>)`);
  }
  return problems;
}

test('every command and subcommand --help has the shared layout (usage, paragraph, Options, one shape per flag line)', async () => {
  const cases = await allCommands();
  assert.ok(cases.length >= 30, `commands found: ${cases.map((c) => c.path).join(', ')}`);
  const report: string[] = [];
  for (const c of cases) {
    const problems = layoutProblems(c, await helpOf(c.path));
    for (const p of problems) report.push(`kodama ${c.path} --help: ${p}`);
  }
  assert.deepEqual(report, []);
});

test('the checker catches what the old members help had: blank lines between flags, -format without a placeholder', () => {
  const members: HelpCase = { path: 'members', command: { synopsis: '', help: '', flags: [{ name: 'detailed', kind: 'bool' }, { name: 'format', kind: 'string' }], run: () => Promise.resolve(0) } };
  const old = `Usage: kodama members [options]

  Outputs the members of a running kodama (or serf) agent.

Options:

  -detailed                 Additional information such as protocol versions
                            will be shown (only affects text output format).

  -format                   If provided, output is returned in the specified
                            format.
`;
  const problems = layoutProblems(members, old);
  assert.ok(problems.some((p) => p.startsWith('a blank line between flags')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('-format is accepted but not in the help')), problems.join('\n'));
  const fixed = old.replace('\n\n  -format                  ', '\n  -format=text|json        ');
  assert.deepEqual(layoutProblems(members, fixed), []);
  assert.deepEqual(layoutProblems(members, fixed.replace('-format=text|json', '-format          ')), ['-format takes a value but shows no placeholder (-format=<…>)']);
});

test('bin/kodama prints the same help as the table (one command through the binary)', async () => {
  const viaBin = await new Promise<string>((resolve, reject) => {
    execFile(KODAMA_BIN, ['members', '--help'], { cwd: REPO, timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  assert.equal(viaBin, await helpOf('members'));
});
