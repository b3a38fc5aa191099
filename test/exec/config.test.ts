import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandAllowed, DISABLED_EXEC, parseExecSpec } from '../../src/exec/config.ts';
import { AgentError } from '../../src/agent/errors.ts';

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && re.test(e.message));
}

test('exec config: absent is disabled; full section parsed with units', () => {
  assert.equal(parseExecSpec(undefined, 'a.json').enabled, false);
  assert.equal(DISABLED_EXEC.enabled, false);
  const s = parseExecSpec({ enabled: true, token: 'tok', allow: ['uptime', 'systemctl restart *'], timeout: '30s', max_output: '64KiB' }, 'a.json');
  assert.deepEqual(s, { enabled: true, token: 'tok', allow: ['uptime', 'systemctl restart *'], timeoutMs: 30_000, maxOutputBytes: 65536 });
  assert.equal(parseExecSpec({ enabled: false }, 'a.json').timeoutMs, 600_000);
});

test('exec config: enabled without a token says how to set one; bad keys and values name the key', () => {
  configError(() => parseExecSpec({ enabled: true }, 'a.json'), /a\.json: exec: .*without a token.*-exec-token.*KODAMA_EXEC_TOKEN/);
  configError(() => parseExecSpec({ enabled: true, tokn: 'x' }, 'a.json'), /unknown key\(s\) 'tokn'/);
  configError(() => parseExecSpec({ enabled: 'yes' }, 'a.json'), /'enabled' expected true or false/);
  configError(() => parseExecSpec({ allow: 'uptime' }, 'a.json'), /'allow' expected a list/);
  configError(() => parseExecSpec({ timeout: 5 }, 'a.json'), /'timeout' expected a duration/);
  configError(() => parseExecSpec({ max_output: '1 parsec' }, 'a.json'), /'max_output' expected a size/);
  configError(() => parseExecSpec({ enabled: true, token: ' tok' }, 'a.json'), /white space/);
});

test('exec allow-list: whole-command globs, literal otherwise; [] allows any', () => {
  assert.equal(commandAllowed([], 'rm -rf /tmp/x'), true);
  assert.equal(commandAllowed(['uptime'], 'uptime'), true);
  assert.equal(commandAllowed(['uptime'], 'uptime; rm -rf /'), false);
  assert.equal(commandAllowed(['systemctl restart *'], 'systemctl restart web'), true);
  assert.equal(commandAllowed(['systemctl restart *'], 'systemctl stop web'), false);
  assert.equal(commandAllowed(['echo a.b'], 'echo aXb'), false);
});
