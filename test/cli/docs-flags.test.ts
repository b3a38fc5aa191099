// The docs spell kodama's flags as its help does. Every `kodama <command> [<subcommand>] -flag …`
// written in README.md and docs/*.md — in a code span, or on a line of a code block (lines
// continued with `\` joined) — names only flags that command accepts (Command.flags, the list its
// help shows: test/cli/help-layout.test.ts), spelled with the dashes the help uses (one, as
// serf's; `--list`/`--host` for inventory, which Ansible calls so). Reading stops at the end of
// the span or line, at `--` (what follows is a remote command: exec, rolling, ssh) and at a shell
// operator. -h/-help/--help are every command's. A code span that is a flag alone (`--once`,
// prose about the command just named) is read too when it has two dashes and some command's
// help has that flag with one: the old README's `--once`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/main.ts';
import type { Command } from '../../src/cli/io.ts';
import { REPO } from '../lib/agents.ts';

export interface FlagMention {
  file: string;
  line: number;
  /** `members`, `deploy route`. */
  command: string;
  /** As written: `-format`, `--once`. */
  flag: string;
}

const HELP_FLAGS = new Set(['h', 'help']);
const SHELL_STOP = /^(\||\|\||&&|;|&|>|>>|<|2>&1|\))$/;

/** The text pieces to read: code spans of prose lines, and whole lines of code blocks. */
function pieces(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s*```/.test(l)) {
      inBlock = !inBlock;
      continue;
    }
    if (inBlock) {
      let text = l;
      const at = i + 1;
      while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)} ${lines[++i]!}`;
      out.push({ line: at, text });
      continue;
    }
    for (const m of l.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, text: m[1]! });
  }
  return out;
}

/** Every flag written after `kodama <command>` in `markdown`. */
export function flagMentions(file: string, markdown: string, commands: ReadonlyMap<string, Command>): FlagMention[] {
  const out: FlagMention[] = [];
  for (const p of pieces(markdown)) {
    for (const m of p.text.matchAll(/(?:^|[\s(/$])kodama\s+([a-z][a-z-]*)((?:\s+\S+)*)/g)) {
      const name = m[1]!;
      const cmd = commands.get(name);
      if (cmd === undefined) continue;
      const tokens = (m[2] ?? '').trim().split(/\s+/).filter((t) => t !== '');
      let command = name;
      let spec = cmd;
      const sub = tokens[0] !== undefined ? cmd.subcommands?.[tokens[0]] : undefined;
      if (sub !== undefined) {
        command = `${name} ${tokens[0]!}`;
        spec = sub;
        tokens.shift();
      }
      let expectValue = false;
      for (const t of tokens) {
        if (t === '--' || SHELL_STOP.test(t) || t.startsWith('#') || /^kodama$/.test(t)) break;
        if (expectValue) {
          expectValue = false;
          continue;
        }
        if (!/^--?[a-z]/.test(t)) continue;
        out.push({ file, line: p.line, command, flag: t.split('=')[0]! });
        const kind = spec.flags.find((f) => f.name === t.replace(/^--?/, '').split('=')[0])?.kind;
        // `-role web`: the next token is the value, not a flag (it might start with a dash).
        expectValue = kind !== undefined && kind !== 'bool' && !t.includes('=');
      }
    }
  }
  return out;
}

/** Code spans of prose that are a double-dash flag alone: `--once`, `--no-script=true`. */
export function loneFlagSpans(file: string, markdown: string): FlagMention[] {
  const out: FlagMention[] = [];
  let inBlock = false;
  markdown.split('\n').forEach((l, i) => {
    if (/^\s*```/.test(l)) inBlock = !inBlock;
    if (inBlock) return;
    for (const m of l.matchAll(/`(--[a-z][a-z0-9-]*)(?:=[^`\s]*)?`/g)) out.push({ file, line: i + 1, command: '', flag: m[1]! });
  });
  return out;
}

/** A lone `--flag` that kodama's helps spell with one dash (and none with two); else undefined. */
export function loneFlagProblem(m: FlagMention, commands: ReadonlyMap<string, Command>): string | undefined {
  const bare = m.flag.slice(2);
  if (HELP_FLAGS.has(bare)) return undefined;
  const all = [...commands.values()].flatMap((c) => [c, ...Object.values(c.subcommands ?? {})]);
  const takes = all.filter((c) => c.flags.some((f) => f.name === bare));
  if (takes.length === 0 || takes.some((c) => new RegExp(`^ {2}--${bare}\\b`, 'm').test(c.help))) return undefined;
  return `${m.file}:${m.line}: ${m.flag}: kodama's help spells it -${bare}`;
}

/** The spelling problem of one mention, or undefined. */
export function mentionProblem(m: FlagMention, commands: ReadonlyMap<string, Command>): string | undefined {
  const [name, sub] = m.command.split(' ');
  const top = commands.get(name!)!;
  const spec = sub === undefined ? top : top.subcommands![sub]!;
  const bare = m.flag.replace(/^--?/, '');
  const where = `${m.file}:${m.line}: kodama ${m.command} ${m.flag}`;
  if (HELP_FLAGS.has(bare)) return undefined;
  if (!spec.flags.some((f) => f.name === bare)) return `${where}: no such flag (it takes ${spec.flags.map((f) => `-${f.name}`).join(' ') || 'none'})`;
  const dashes = /^--[a-z]/.test(m.flag) ? 2 : 1;
  const helpDashes = new RegExp(`^ {2}--${bare}\\b`, 'm').test(spec.help) ? 2 : 1;
  if (dashes !== helpDashes) return `${where}: its help spells it ${'-'.repeat(helpDashes)}${bare}`;
  return undefined;
}

async function loadCommands(): Promise<Map<string, Command>> {
  const out = new Map<string, Command>();
  for (const name of Object.keys(COMMANDS)) out.set(name, await COMMANDS[name]!.load());
  return out;
}

function docs(): { file: string; text: string }[] {
  const files = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  return files.map((file) => ({ file, text: readFileSync(join(REPO, file), 'utf8') }));
}

test('README.md and docs/*.md name only flags their kodama command accepts, spelled as its help spells them', async () => {
  const commands = await loadCommands();
  const mentions = docs().flatMap((d) => flagMentions(d.file, d.text, commands));
  assert.ok(mentions.length >= 50, `flag mentions found: ${mentions.length}`);
  const problems = mentions.map((m) => mentionProblem(m, commands)).filter((p) => p !== undefined);
  const lone = docs().flatMap((d) => loneFlagSpans(d.file, d.text)).map((m) => loneFlagProblem(m, commands)).filter((p) => p !== undefined);
  assert.deepEqual([...problems, ...lone], []);
});

test('the reader: spans and code lines, subcommands, values, `--` and shell operators; what it flags', async () => {
  const commands = await loadCommands();
  const md = [
    'Run `kodama demo --once` or `kodama members -role web -format hosts | sort`; `serf members -x` is serf\'s.',
    '```sh',
    'kodama deploy route -service web blue=0 green=100',
    'kodama exec -role web -- systemctl restart web --now',
    'kodama agent -node web-1 \\',
    '  -tag role=web -bogus &',
    '```',
    '`kodama inventory --list`, `kodama rolling -undrain -node -odd-name`.',
  ].join('\n');
  const found = flagMentions('x.md', md, commands);
  assert.deepEqual(
    found.map((m) => `${m.line} ${m.command} ${m.flag}`),
    ['1 demo --once', '1 members -role', '1 members -format', '3 deploy route -service', '4 exec -role', '5 agent -node', '5 agent -tag', '5 agent -bogus', '8 inventory --list', '8 rolling -undrain', '8 rolling -node'],
  );
  assert.deepEqual(
    found.map((m) => mentionProblem(m, commands)).filter((p) => p !== undefined).map((p) => p.replace(/ \(it takes .*\)$/, '')),
    ['x.md:1: kodama demo --once: its help spells it -once', 'x.md:5: kodama agent -bogus: no such flag'],
  );
  const lone = loneFlagSpans('y.md', 'Then `--once` exits; `--list` is Ansible\'s; `--graph` and `--help` are not ours to judge.');
  assert.deepEqual(lone.map((m) => m.flag), ['--once', '--list', '--graph', '--help']);
  assert.deepEqual(lone.map((m) => loneFlagProblem(m, commands)).filter((p) => p !== undefined), ["y.md:1: --once: kodama's help spells it -once"]);
});
