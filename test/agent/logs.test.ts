// The agent's log outputs as a user sees them: `-log-json` (one object per line), and `-syslog`
// side by side with the real `serf agent -syslog`: both run in a private mount namespace whose
// /run holds a syslog socket of our own (a small C sink, syslog-sink.c, since Node cannot open a
// Unix datagram socket), so each finds it where it looks for the system's, and the lines each
// sends are compared: priority (facility × 8 + severity, serf's mapping), tag[pid], message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KODAMA_BIN, freePort } from '../lib/agents.ts';
import { buildC } from '../lib/cc.ts';

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    // 'close': every pipe is done too (nothing the command left behind still holds them).
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

test('-log-json: one JSON object per line with time, level, subsystem, message, fields; the banner stays text', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const rpc = await freePort();
  // Runs until killed: 3 s is enough for the start and its member-join line.
  const r = await run('timeout', ['-s', 'INT', '3', KODAMA_BIN, 'agent', '-node', 'json-1', '-bind', `127.0.0.1:${port}`, '-rpc-addr', `127.0.0.1:${rpc}`, '-log-json'], 30_000);
  const lines = r.out.split('\n');
  assert.ok(lines.some((l) => l === '==> kodama agent running!'), r.out);
  const objects = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(objects.length >= 2, r.out);
  for (const o of objects) {
    assert.deepEqual(Object.keys(o), ['time', 'level', 'subsystem', 'message', 'fields'], JSON.stringify(o));
    assert.match(String(o['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERR'].includes(String(o['level'])));
  }
  assert.ok(objects.some((o) => o['subsystem'] === 'serf' && o['message'] === 'EventMemberJoin: json-1 127.0.0.1'), r.out);
  assert.ok(!lines.some((l) => /^\s+\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[/.test(l)), 'no text log line');
});

/** syslog-sink.c, built with the system's cc; undefined without one. */
function buildSink(): string | undefined {
  try {
    return buildC(fileURLToPath(new URL('./syslog-sink.c', import.meta.url)), 'syslog-sink');
  } catch {
    return undefined;
  }
}

test('-syslog beside serf -syslog: the same priority for the same level at the facility set, tag[pid]: subsystem: message', { timeout: 90_000 }, async (t) => {
  if (process.getuid?.() !== 0 || spawnSync('unshare', ['--version']).status !== 0) {
    t.skip('needs root and unshare (a private mount namespace holds the test syslog socket)');
    return;
  }
  const sink = buildSink();
  if (sink === undefined) {
    assert.notEqual(process.env['CI'], 'true', 'no C compiler on CI (.ci/run installs gcc)');
    t.skip('no C compiler (cc) to build the syslog sink: install gcc');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kodama-syslog-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'facility.json');
  writeFileSync(conf, JSON.stringify({ syslog_facility: 'LOCAL3' }));
  const out = join(dir, 'received');
  const [sp, sr, kp, kr] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  // In the namespace: a tmpfs on /run (so /var/run/log is ours), the sink there, and over
  // /dev/log if the machine has one; then each agent runs ~3 s and is interrupted.
  const script = [
    'set -e',
    'mount -t tmpfs kodama-test /run',
    `"${sink}" /run/log > "${out}" 2>&1 < /dev/null &`,
    'sink=$!',
    'for i in $(seq 50); do [ -S /run/log ] && break; sleep 0.1; done',
    '[ -S /dev/log ] && mount --bind /run/log /dev/log || true',
    `timeout -s INT 3 serf agent -node syslog-s -bind 127.0.0.1:${sp} -rpc-addr 127.0.0.1:${sr} -syslog -config-file "${conf}" > "${dir}/serf.out" 2>&1 || true`,
    `timeout -s INT 3 "${KODAMA_BIN}" agent -node syslog-k -bind 127.0.0.1:${kp} -rpc-addr 127.0.0.1:${kr} -syslog -config-file "${conf}" > "${dir}/kodama.out" 2>&1 || true`,
    'sleep 0.5',
    'kill $sink',
  ].join('\n');
  const r = await run('unshare', ['-m', 'sh', '-c', script], 60_000);
  assert.equal(r.code, 0, r.out);
  const got = readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('<'));
  const re = /^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (serf|kodama)\[(\d+)\]: (\S+): (.*)$/;
  const parsed = got.map((l) => {
    const m = re.exec(l);
    assert.ok(m, `not a syslog line: ${l}`);
    return { pri: Number(m[1]), tag: m[2]!, subsystem: m[4]!, message: m[5]! };
  });
  const join1 = (tag: string, node: string) => parsed.find((p) => p.tag === tag && p.subsystem === 'serf' && p.message === `EventMemberJoin: ${node} 127.0.0.1`);
  const s = join1('serf', 'syslog-s');
  const k = join1('kodama', 'syslog-k');
  assert.ok(s !== undefined, `serf's member-join line reached the socket:\n${got.join('\n')}\n${readFileSync(join(dir, 'serf.out'), 'utf8')}`);
  assert.ok(k !== undefined, `kodama's member-join line reached the socket:\n${got.join('\n')}\n${readFileSync(join(dir, 'kodama.out'), 'utf8')}`);
  // LOCAL3 = 19; an INFO line is notice (5) for both: 19 × 8 + 5.
  assert.equal(s.pri, 157);
  assert.equal(k.pri, s.pri);
  t.diagnostic(`serf: <${s.pri}> serf[…]: serf: ${s.message}; kodama: <${k.pri}> kodama[…]: serf: ${k.message}`);
});
