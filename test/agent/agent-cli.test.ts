// `kodama agent` as an operator runs it: -config-file and KODAMA_* env, -retry-join until the
// seed appears, SIGHUP reloading tags from the config file, SIGTERM leaving gracefully by
// default (leave_on_terminate defaults to true), leave_on_terminate=false exiting 1 without
// leaving, and -retry-max giving up with exit 1. Real processes on 127.0.0.1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, rpcMembers, waitFor, waitStatuses } from '../interop/harness.ts';
import { freePort, startKodama, stopAll } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-agent-cli-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('retry-join waits for the seed; SIGHUP reloads tags; SIGTERM leaves gracefully by default', { timeout: 90_000 }, async () => {
  const seedPort = await freePort();
  const confA = join(dir, 'a.json');
  writeFileSync(confA, JSON.stringify({ tags: { role: 'web', gen: '1' }, retry_join: [`127.0.0.1:${seedPort}`] }));
  const a = await startKodama('cli-retry-a', {
    args: [`-config-file=${confA}`, '-retry-interval=1s'],
    env: { KODAMA_TAGS: 'zone=z1' },
  });
  await waitFor('a logs a failed join attempt', 15_000, () => (/Join failed: .*retrying in 1s/.test(a.output()) ? true : undefined), () => a.output());

  // the seed comes up later, configured through the environment only
  const seed = await startKodama('cli-retry-seed', { port: seedPort, env: { KODAMA_LOG_LEVEL: 'debug' } });
  const ms = await waitStatuses(seed.rpcAddr, { 'cli-retry-a': 'alive', 'cli-retry-seed': 'alive' }, 20_000, () => a.output() + seed.output());
  assert.deepEqual(ms.find((m) => m.name === 'cli-retry-a')?.tags, { role: 'web', gen: '1', zone: 'z1' });
  // The seed lists `a` as soon as it merged a's push/pull, a moment before a reads the reply and
  // logs it: wait (bounded) for the line instead of reading an instant.
  await waitFor('a logs the completed join', 15_000, () => (/Join completed\. Synced with 1 initial agents/.test(a.output()) ? true : undefined), () => a.output());

  // SIGHUP: the edited config file's tags reach the peer as a member update
  writeFileSync(confA, JSON.stringify({ tags: { role: 'web', gen: '2' }, retry_join: [`127.0.0.1:${seedPort}`] }));
  a.signal('SIGHUP');
  await waitFor('seed sees gen=2', 15_000, async () => {
    const m = (await rpcMembers(seed.rpcAddr))?.find((x) => x.name === 'cli-retry-a');
    return m?.tags['gen'] === '2' ? m : undefined;
  }, () => a.output());
  assert.match(a.output(), /Caught signal: SIGHUP\n==> Reloading configuration/);

  a.signal('SIGTERM');
  await waitStatuses(seed.rpcAddr, { 'cli-retry-a': 'left' }, 15_000, () => a.output());
  // KODAMA_LOG_LEVEL=debug applied: the seed logs Serf's intents at DEBUG. Join intents may all
  // arrive inside the join's push/pull (then none is logged), so check after a's leave, whose
  // intent is always gossiped.
  await waitFor('the seed logs at DEBUG', 10_000, () => (/\[DEBUG\]/.test(seed.output()) ? true : undefined), () => seed.output());
  assert.equal(await exitWithin(a, 10_000), 0, a.output());
  assert.match(a.output(), /Caught signal: SIGTERM\n==> Gracefully shutting down agent/);
  seed.signal('SIGINT');
  assert.equal(await exitWithin(seed, 10_000), 0, seed.output());
});

test('leave_on_terminate=false: SIGTERM exits 1 without leaving; -retry-max gives up with exit 1', { timeout: 90_000 }, async () => {
  const seed = await startKodama('cli-term-seed', {});
  const b = await startKodama('cli-term-b', { join: [`127.0.0.1:${seed.port}`], env: { KODAMA_LEAVE_ON_TERMINATE: 'false' } });
  await waitStatuses(seed.rpcAddr, { 'cli-term-b': 'alive' }, 20_000, () => b.output());
  b.signal('SIGTERM');
  assert.equal(await exitWithin(b, 10_000), 1, b.output());
  assert.doesNotMatch(b.output(), /Gracefully shutting down/);
  // no leave intent was sent: the peer finds out by failure detection
  await waitStatuses(seed.rpcAddr, { 'cli-term-b': 'failed' }, 30_000, () => seed.output());

  const dead = await freePort();
  const c = await startKodama('cli-retry-max', { args: [`-retry-join=127.0.0.1:${dead}`, '-retry-interval=1s', '-retry-max=1'], ready: false, expectExit: true });
  assert.equal(await exitWithin(c, 30_000), 1, c.output());
  assert.equal((c.output().match(/agent: Joining cluster\.\.\./g) ?? []).length, 2, c.output()); // serf's count: 1 retry = 2 attempts
  assert.match(c.output(), /maximum retry join attempts made, exiting/);
});
