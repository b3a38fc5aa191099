// test/lib/agents.ts itself: port slots are per process, ports come from the slot, a taken port
// is retried on fresh ones, a dead agent says how it died, stop() leaves nothing running.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { REPO, freePort, liveAgents, portIsFree, portSlot, startKodama, startSerf, stopAll } from './agents.ts';

after(() => stopAll());

/** Another process claims its slot and holds it until we close its stdin: its slot number. */
function childSlot(): { slot: Promise<number>; release(): void } {
  const src = `import(${JSON.stringify(`${REPO}test/lib/agents.ts`)}).then(async (m) => {
    console.log((await m.portSlot()).slot);
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  })`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', src], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  child.once('exit', () => clearTimeout(timer));
  let out = '';
  const slot = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before it printed its slot`)));
  });
  return { slot, release: () => child.stdin.end() };
}

test('each process holds a slot of its own; ports come from it, free, and are not handed out twice in a row', async () => {
  const mine = await portSlot();
  assert.equal(await portIsFree(mine.first), false, 'the slot is held by a listening socket');
  const children = [childSlot(), childSlot()];
  const [a, b] = await Promise.all(children.map((c) => c.slot)).finally(() => children.forEach((c) => c.release()));
  assert.notEqual(a, mine.slot);
  assert.notEqual(b, mine.slot);
  assert.notEqual(a, b);
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  assert.equal(new Set(ports).size, 20);
  for (const p of ports) assert.ok(p > mine.first && p <= mine.last, `${p} in ${mine.first + 1}-${mine.last}`);
  assert.ok(ports[0]! < 32_768, 'below the ephemeral range');
});

test('an agent is up after its own banner and RPC; a port taken before it binds is retried on fresh ones', { timeout: 60_000 }, async () => {
  // The first attempt is made to bind a port this test holds: serf exits "address already in use".
  const held: Server = createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
  const heldPort = (held.address() as { port: number }).port;
  const tried: number[] = [];
  try {
    const s = await startSerf('retry', {
      argv: ({ port, rpcPort }) => {
        tried.push(port);
        const bind = tried.length === 1 ? heldPort : port;
        return ['agent', '-node=retry', `-bind=127.0.0.1:${bind}`, `-rpc-addr=127.0.0.1:${rpcPort}`];
      },
    });
    assert.equal(tried.length, 2, 'started again once');
    assert.notEqual(tried[0], tried[1], 'on fresh ports');
    assert.match(s.output(), /==> Serf agent running!/);
    assert.ok(s.bannerAt !== undefined && s.bannerAt >= s.spawnedAt);
    const k = await startKodama('k', { join: [s.addr] });
    assert.match(k.output(), /==> kodama agent running!/);
    assert.deepEqual(liveAgents().map((a) => a.name).sort(), ['k', 'retry']);
    await Promise.all([k.stop(), s.stop()]);
    assert.deepEqual(liveAgents(), []);
    assert.equal(s.exit()?.signal ?? null, null, 'serf exits on SIGTERM by itself');
  } finally {
    held.close();
  }
});

test('a start that fails throws how the agent died and its last lines; kill() reports the signal', { timeout: 60_000 }, async () => {
  await assert.rejects(startKodama('bad', { args: ['-no-such-flag'] }), (e: Error) => {
    assert.match(e.message, /kodama agent bad \(pid \d+\) exited with code 1; its last 25 lines of output:\n/);
    assert.match(e.message, /-no-such-flag/);
    return true;
  });
  const s = await startSerf('victim');
  await s.kill();
  assert.match(s.report(), /^serf agent victim \(pid \d+\) was killed by SIGKILL; its last 25 lines of output:\n/);
  assert.ok(s.report().split('\n').length <= 26);
});
