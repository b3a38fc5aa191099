import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, parseFlags } from '../../src/cli/flags.ts';
import type { FlagSpec } from '../../src/cli/flags.ts';
import { parseDurationMs } from '../../src/cli/duration.ts';

const SPECS: FlagSpec[] = [
  { name: 'node', kind: 'string' },
  { name: 'tag', kind: 'list' },
  { name: 'detailed', kind: 'bool' },
];

test('both -flag value and -flag=value, -- and --flag, repeatable lists', () => {
  const f = parseFlags(['-node', 'a', '--tag=x=1', '-tag', 'y=2', '-detailed', 'rest', '-node=ignored'], SPECS);
  assert.equal(f.strings.get('node'), 'a');
  assert.deepEqual(f.lists.get('tag'), ['x=1', 'y=2']);
  assert.ok(f.bools.has('detailed'));
  assert.deepEqual(f.positional, ['rest', '-node=ignored']);
  const g = parseFlags(['-node=b=c', '--', '-detailed'], SPECS);
  assert.equal(g.strings.get('node'), 'b=c');
  assert.deepEqual(g.positional, ['-detailed']);
  assert.ok(parseFlags(['-detailed=true'], SPECS).bools.has('detailed'));
  assert.ok(!parseFlags(['-detailed=false'], SPECS).bools.has('detailed'));
});

test('unknown flags, missing values and help are errors with codes', () => {
  const code = (args: string[]): string => {
    try {
      parseFlags(args, SPECS);
      return 'none';
    } catch (e) {
      assert.ok(e instanceof CliError);
      return `${e.code}:${e.message}`;
    }
  };
  assert.equal(code(['-nope']), 'ERR_CLI_USAGE:flag provided but not defined: -nope (did you mean -node?)', 'the nearest flag is suggested');
  assert.equal(code(['-xyzzy']), 'ERR_CLI_USAGE:flag provided but not defined: -xyzzy', 'nothing near: no suggestion');
  assert.equal(code(['-node']), 'ERR_CLI_USAGE:flag needs an argument: -node');
  assert.equal(code(['-detailed=maybe']).split(':')[0], 'ERR_CLI_USAGE');
  assert.equal(code(['-h']).split(':')[0], 'ERR_CLI_HELP');
  assert.equal(code(['--help']).split(':')[0], 'ERR_CLI_HELP');
  assert.equal(code(['-help']).split(':')[0], 'ERR_CLI_HELP');
});

test('Go durations', () => {
  assert.equal(parseDurationMs('5s'), 5000);
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('1.5h'), 5_400_000);
  assert.throws(() => parseDurationMs('5'), CliError);
  assert.throws(() => parseDurationMs('s'), CliError);
});
