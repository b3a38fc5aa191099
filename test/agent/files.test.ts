import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKeyringFile, loadKeyringFile, writeKeyringFile } from '../../src/agent/keyring-file.ts';
import { goMarshalIndent, loadTagsFile, writeTagsFile } from '../../src/agent/tags-file.ts';
import { AgentError } from '../../src/agent/errors.ts';
import { runSerf } from '../rpc/helpers.ts';
import { startSerf } from '../lib/agents.ts';

const K1 = 'bXUF9oLjGY9/DxG5SGc7tQ==';
const K2 = 'QHOYjmYlxSCBhdfiolhtDQ==';
const K3 = 'Ry9ZoCTbfzA3hRC4x4qnZlRRMrITn6kcHyAmAdPkQIs='; // 32 bytes

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'kodama-files-'));
}

const isConfigError = (msg: RegExp) => (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && msg.test(e.message);

test('keyring file: first key is primary; rewritten as serf writes it (2-space JSON, 0600)', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'keyring.json');
    writeFileSync(p, `[\n  "${K1}",\n  "${K2}"\n]`);
    const ring = loadKeyringFile(p);
    assert.equal(Buffer.from(ring.primary()).toString('base64'), K1);
    assert.equal(ring.keys().length, 2);
    ring.install(Buffer.from(K3, 'base64'));
    ring.use(Buffer.from(K3, 'base64'));
    writeKeyringFile(p, ring);
    const text = readFileSync(p, 'utf8');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(text)[0], K3, 'new primary first');
    assert.match(text, /^\[\n {2}"/);
    assert.equal(loadKeyringFile(p).keys().length, 3, 'reads back');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keyring file errors say what is wrong (serf messages)', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'k.json');
    assert.throws(() => loadKeyringFile(p), isConfigError(/Failed to read keyring file/));
    writeFileSync(p, `["${K1}"]`);
    assert.throws(() => loadKeyringFile(p, K1), isConfigError(/^Encryption key not allowed while using a keyring$/));
    writeFileSync(p, '[]');
    assert.throws(() => loadKeyringFile(p), isConfigError(/^Keyring file contains no keys$/));
    writeFileSync(p, '{"a":1}');
    assert.throws(() => loadKeyringFile(p), isConfigError(/Failed to decode keyring file/));
    writeFileSync(p, '[not json');
    assert.throws(() => loadKeyringFile(p), isConfigError(/Failed to decode keyring file/));
    writeFileSync(p, '["AAAA"]');
    assert.throws(() => loadKeyringFile(p), isConfigError(/Failed to restore keyring: key size must be 16, 24 or 32/));
    writeFileSync(p, '["!!!"]');
    assert.throws(() => loadKeyringFile(p), isConfigError(/Failed to restore keyring/));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tags file: missing = no tags; JSON object of strings; sorted, HTML-escaped like Go; 0600', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'tags.json');
    assert.deepEqual(loadTagsFile(p), {});
    writeTagsFile(p, { role: 'web', a: '<b>&' });
    assert.equal(readFileSync(p, 'utf8'), '{\n  "a": "\\u003cb\\u003e\\u0026",\n  "role": "web"\n}');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(loadTagsFile(p), { a: '<b>&', role: 'web' });
    assert.throws(() => loadTagsFile(p, { dc: 'x' }), isConfigError(/^Tags config not allowed while using tag files$/));
    writeFileSync(p, '{"n": 1}');
    assert.throws(() => loadTagsFile(p), isConfigError(/tag 'n' is not a string/));
    writeFileSync(p, '["x"]');
    assert.throws(() => loadTagsFile(p), isConfigError(/Failed to decode tags file/));
    writeFileSync(p, 'null');
    assert.deepEqual(loadTagsFile(p), {});
    assert.equal(goMarshalIndent([]), '[]');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('files written by a real serf agent read back and re-format byte for byte', async () => {
  const dir = tmp();
  const keyring = join(dir, 'keyring.json');
  const tags = join(dir, 'tags.json');
  writeFileSync(keyring, `["${K1}"]`);
  const serf = await startSerf('s1', { profile: null, logLevel: 'debug', args: ['-keyring-file', keyring, '-tags-file', tags] });
  try {
    const rpc = ['-rpc-addr', serf.rpcAddr];
    for (const args of [
      ['keys', '-install', K2],
      ['keys', '-use', K2],
      ['tags', '-set', 'role=web', '-set', 'zone=<eu&1>', '-set', 'a b=c'],
    ]) {
      const r = await runSerf([...args, ...rpc]);
      assert.equal(r.code, 0, `serf ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const kText = readFileSync(keyring, 'utf8');
    const ring = loadKeyringFile(keyring);
    assert.equal(Buffer.from(ring.primary()).toString('base64'), K2, 'serf wrote the new primary first');
    assert.equal(formatKeyringFile(ring), kText, 'our writer produces serf\'s bytes');
    const tText = readFileSync(tags, 'utf8');
    const t = loadTagsFile(tags);
    assert.deepEqual(t, { role: 'web', zone: '<eu&1>', 'a b': 'c' });
    const mine = join(dir, 'mine.json');
    writeTagsFile(mine, t);
    assert.equal(readFileSync(mine, 'utf8'), tText, 'our tags file = serf\'s tags file');
  } finally {
    await serf.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
