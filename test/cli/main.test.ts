import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, runCli } from '../../src/cli/main.ts';
import { recordIo } from './helpers.ts';

test('kodama --help lists every command with its synopsis', async () => {
  for (const flag of ['--help', '-h', 'help']) {
    const io = recordIo();
    assert.equal(await runCli([flag], io), 0);
    const text = io.out.join('');
    assert.match(text, /^Usage: kodama/);
    for (const name of Object.keys(COMMANDS)) assert.match(text, new RegExp(`\\n\\s+${name}\\s+\\S`));
  }
  const none = recordIo();
  assert.equal(await runCli([], none), 1);
  assert.match(none.out.join(''), /Available commands are:/);
});

test('every command has --help and -h, exit 0, starting with its usage line', async () => {
  for (const name of Object.keys(COMMANDS)) {
    for (const flag of ['--help', '-h']) {
      const io = recordIo();
      assert.equal(await runCli([name, flag], io), 0, `${name} ${flag}`);
      // [options] only for commands with flags (keygen and version have none): help-layout.test.ts
      assert.match(io.out.join(''), new RegExp(`^Usage: kodama ${name}( \\[options\\]| <subcommand>|\\n)`));
    }
  }
});

test('unknown commands and unknown flags are errors with usage', async () => {
  const io = recordIo();
  assert.equal(await runCli(['frobnicate'], io), 1);
  assert.match(io.err.join(''), /Unknown command: frobnicate\n[\s\S]*Available commands/);
  const typo = recordIo();
  assert.equal(await runCli(['memebrs'], typo), 1);
  assert.match(typo.err.join(''), /Unknown command: memebrs \(did you mean 'members'\?\)/);
  for (const name of Object.keys(COMMANDS)) {
    const e = recordIo();
    assert.equal(await runCli([name, '-no-such-flag=1'], e), 1);
    // either the command's usage or a pointer to it (the agent's usage is long)
    assert.match(e.err.join(''), new RegExp(`flag provided but not defined: -no-such-flag[\\s\\S]*(Usage: kodama ${name}|kodama ${name} -h)`));
  }
});

test('agent rejects bad option values before binding anything', async () => {
  const cases: [string[], RegExp][] = [
    [['-tag', 'novalue'], /invalid tag:? 'novalue'/i],
    [['-profile', 'moon'], /Unknown profile: moon/],
    [['-protocol', '9'], /protocol version 9/],
    [['-encrypt', 'not-base64!'], /Invalid encryption key/],
    [['-log-level', 'loud'], /Invalid log level: loud/],
    [['-broadcast-timeout', 'soon'], /invalid duration/],
  ];
  for (const [args, re] of cases) {
    const io = recordIo();
    assert.equal(await runCli(['agent', ...args], io), 1, args.join(' '));
    assert.match(io.err.join(''), re);
  }
});
