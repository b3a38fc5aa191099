// The agent runs serf-style event handlers for member events (coalesced, as serf's agent does),
// a hung handler delays neither membership nor other handlers, SIGHUP-style reload swaps the
// handlers, and -tags-file / -keyring-file are honoured. Real sockets on 127.0.0.1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, AgentError } from '../../src/index.ts';
import type { AgentOptions } from '../../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-agent-handlers-'));
const running: Agent[] = [];
after(async () => {
  for (const a of running) await a.stop();
  rmSync(dir, { recursive: true, force: true });
});

function make(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'ERR',
    logSink: () => {},
    leavePropagateDelayMs: 200,
    coalescePeriodMs: 300,
    quiescentPeriodMs: 100,
    ...extra,
  });
  running.push(a);
  return a;
}

async function until<T>(what: string, timeoutMs: number, cond: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');

test('member events run handlers with serf env and stdin; a hung handler blocks nothing else', { timeout: 60_000 }, async () => {
  const log = join(dir, 'events.log');
  const hung = join(dir, 'hung.started');
  const script = join(dir, 'record.sh');
  // Written as a serf user writes one: event name from the env, member lines on stdin.
  writeFileSync(script, `#!/bin/sh\nwhile read -r name addr role tags; do echo "$SERF_EVENT $SERF_SELF_NAME $KODAMA_EVENT $name $addr $role $tags" >> '${log}'; done\n`, { mode: 0o755 });
  const a = make('h-a', {
    tags: { role: 'lb' },
    eventHandlers: [`member-join=touch '${hung}'; sleep 1000`, `member-join,member-leave=${script}`],
    handlerTimeoutMs: 0,
  });
  await a.start();
  await until('hung handler started for our own join', 10_000, () => existsSync(hung));
  await until('recording handler ran for our own join', 10_000, () => read(log).includes('member-join h-a member-join h-a 127.0.0.1'));

  const b = make('h-b', { tags: { role: 'web', dc: 'x' } });
  await b.start();
  const t0 = Date.now();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  // membership is not delayed by the hung handler
  await until('a sees b', 5_000, () => a.members().find((m) => m.name === 'h-b')?.status === 'alive');
  const line = await until('recording handler saw h-b join', 10_000, () =>
    read(log).split('\n').find((l) => l.startsWith('member-join h-a member-join h-b ')));
  assert.match(line, new RegExp(`^member-join h-a member-join h-b 127\\.0\\.0\\.1 web dc=x,role=web$`));
  const joinMs = Date.now() - t0;

  await b.leave();
  await until('recording handler saw h-b leave', 10_000, () => read(log).includes('member-leave h-a member-leave h-b 127.0.0.1 web'));
  const stats = a.stats();
  assert.equal(stats['event_handlers']?.[script], 'member-join,member-leave');
  assert.equal(stats['handlers']?.['started'] !== undefined && Number(stats['handlers']['started']) >= 3, true, JSON.stringify(stats['handlers']));
  assert.ok(joinMs < 8000, `join → handler took ${joinMs} ms`);
});

test('reload swaps handlers and log level; a bad handler spec is refused and changes nothing', { timeout: 30_000 }, async () => {
  const first = join(dir, 'first.log');
  const second = join(dir, 'second.log');
  const a = make('r-a', { eventHandlers: [`member-update=echo update >> '${first}'`] });
  await a.start();
  assert.throws(() => a.reload({ eventHandlers: ['bogus-event=true'] }), /bogus-event/);
  a.setTags({ v: '1' });
  await until('first handler ran', 10_000, () => read(first).includes('update'));
  await a.reload({ eventHandlers: [`member-update=echo update >> '${second}'`], tags: { v: '2' } });
  await until('second handler ran after reload', 10_000, () => read(second).includes('update'));
  assert.equal(read(first).trim().split('\n').length, 1, 'the old handler no longer runs');
  assert.deepEqual(a.members()[0]?.tags, { v: '2' });
  assert.throws(() => make('bad', { eventHandlers: ['member-jion=x.sh'] }), /member-jion/);
});

test('-tags-file: tags are restored on start and written on change; not together with tags', async () => {
  const tagsFile = join(dir, 'tags.json');
  writeFileSync(tagsFile, JSON.stringify({ role: 'cache', zone: 'b' }));
  const a = make('t-a', { tagsFile });
  await a.start();
  assert.deepEqual(a.members()[0]?.tags, { role: 'cache', zone: 'b' });
  a.setTags({ role: 'cache', zone: 'c' });
  assert.deepEqual(JSON.parse(readFileSync(tagsFile, 'utf8')), { role: 'cache', zone: 'c' });
  assert.throws(() => make('t-b', { tagsFile, tags: { x: '1' } }), (e: unknown) => e instanceof AgentError && /Tags config not allowed while using tag files/.test(e.message));
});

test('-keyring-file: the agent encrypts with the file\'s primary key; not together with -encrypt', async () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const keyringFile = join(dir, 'keyring.json');
  writeFileSync(keyringFile, JSON.stringify([key]));
  const a = make('k-a', { keyringFile });
  assert.equal(a.encrypted, true);
  assert.throws(() => make('k-b', { keyringFile, encrypt: key }), /Encryption key not allowed while using a keyring/);
  assert.throws(() => make('k-c', { keyringFile: join(dir, 'nope.json') }), /Failed to read keyring file/);
  // two agents sharing the keyring file's key form a cluster
  const b = make('k-d', { encrypt: key });
  await a.start();
  await b.start();
  const r = await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  assert.equal(r.num, 1, JSON.stringify(r));
});
