// The systemd unit shipped in examples/systemd (issue 14): systemd itself accepts it
// (`systemd-analyze verify`), and its commands do what its comments promise when run as systemd
// runs them: ExecStartPre (`kodama validate`) stops a bad config before the agent starts,
// ExecStart joins the cluster with the flags from the EnvironmentFile, ExecReload (SIGHUP)
// reloads, KillSignal (SIGTERM) leaves gracefully within TimeoutStopSec. No systemd runs as PID 1
// here, so the unit is not started by systemd itself.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, waitFor, waitStatuses } from '../interop/harness.ts';
import { KODAMA_BIN, REPO, freePort, startKodama, stopAll } from '../lib/agents.ts';

const UNIT = join(REPO, 'examples/systemd/kodama.service');
const dir = mkdtempSync(join(tmpdir(), 'kodama-unit-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** The [Service] section's keys (a key given twice keeps its last value). */
function serviceKeys(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s !== null) section = s[1]!;
    else if (section === 'Service') {
      const eq = line.indexOf('=');
      out.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return out;
}

/** A command line of the unit with this run's paths and the EnvironmentFile's variables expanded. */
function commandOf(line: string, confDir: string, env: Record<string, string>): string[] {
  return line
    .replace('/usr/bin/kodama', KODAMA_BIN)
    .replace('/etc/kodama.d', confDir)
    .split(/\s+/)
    .flatMap((w) => (w.startsWith('$') ? (env[w.slice(1)] ?? '').split(/\s+/).filter((x) => x !== '') : [w]));
}

test('the systemd unit: systemd accepts it; validate gates the start; SIGHUP reloads; SIGTERM leaves', { timeout: 90_000 }, async (t) => {
  const text = readFileSync(UNIT, 'utf8');
  const keys = serviceKeys(text);
  assert.equal(keys.get('Type'), 'exec');
  assert.equal(keys.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(keys.get('KillSignal'), 'SIGTERM');
  assert.equal(keys.get('Restart'), 'on-failure');

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.error !== undefined) {
    t.diagnostic('SKIPPED PART: systemd-analyze is not installed (Debian package systemd): the unit was not verified by systemd');
  } else {
    // The same unit with this checkout's binary (verify checks that ExecStart's file exists).
    const copy = join(dir, 'kodama.service');
    writeFileSync(copy, text.replaceAll('/usr/bin/kodama', KODAMA_BIN));
    const v = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    assert.equal(v.status, 0, `systemd-analyze verify: ${v.stdout}${v.stderr}`);
    assert.equal(`${v.stdout}${v.stderr}`.trim(), '', 'no warnings either');
  }

  // ExecStartPre: a broken config dir fails the start, naming the file and key.
  const confDir = join(dir, 'kodama.d');
  mkdirSync(confDir);
  writeFileSync(join(confDir, '10-base.json'), JSON.stringify({ tags: { role: 'web' }, log_level: 'info' }));
  writeFileSync(join(confDir, '20-bad.json'), JSON.stringify({ tags: { role: 'web' }, leave_on_terminat: true }));
  const [pre, ...preArgs] = commandOf(keys.get('ExecStartPre')!, confDir, {});
  const bad = spawnSync(pre!, preArgs, { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /20-bad\.json': Config has invalid keys: leave_on_terminat \(did you mean leave_on_terminate\?\)/);
  rmSync(join(confDir, '20-bad.json'));
  assert.equal(execFileSync(pre!, preArgs, { encoding: 'utf8' }), '', '-quiet: nothing printed when valid');

  // ExecStart with the EnvironmentFile's KODAMA_ARGS, next to a peer.
  const peer = await startKodama('unit-peer');
  const port = await freePort();
  const rpcPort = await freePort();
  const env = { KODAMA_ARGS: `-node=unit-a -bind=127.0.0.1:${port} -rpc-addr=127.0.0.1:${rpcPort} -profile=local -join=${peer.addr}` };
  const [bin, ...args] = commandOf(keys.get('ExecStart')!, confDir, env);
  assert.equal(bin, KODAMA_BIN);
  const a = await startKodama('unit-a', { port, rpcPort, argv: () => args, env: {} });
  await waitStatuses(peer.rpcAddr, { 'unit-a': 'alive' }, 20_000, () => a.output());

  // ExecReload: `kill -HUP $MAINPID`, with a changed tag in the config dir.
  writeFileSync(join(confDir, '10-base.json'), JSON.stringify({ tags: { role: 'web', gen: '2' }, log_level: 'info' }));
  execFileSync('/bin/kill', ['-HUP', String(a.pid)]);
  await waitFor('the reload', 10_000, () => (a.output().includes('agent: configuration reloaded') ? true : undefined), () => a.output());

  // KillSignal within TimeoutStopSec: a graceful leave, exit 0.
  const stopSec = Number(keys.get('TimeoutStopSec'));
  a.signal(keys.get('KillSignal') as NodeJS.Signals);
  assert.equal(await exitWithin(a, stopSec * 1000), 0, a.output());
  await waitStatuses(peer.rpcAddr, { 'unit-a': 'left' }, 10_000, () => a.output());
});
