import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Logger, formatTimestamp, parseLogLevel } from '../../src/agent/log.ts';
import { AgentError } from '../../src/agent/errors.ts';

test('lines look like serf: timestamp, [LEVEL], message; level filters', () => {
  const lines: string[] = [];
  const t = new Date(2026, 10, 24, 21, 0, 5).getTime();
  const log = new Logger({ level: 'INFO', sink: (l) => lines.push(l), wallClockMs: () => t });
  log.log('DEBUG', 'memberlist: hidden');
  log.log('INFO', 'serf: EventMemberJoin: a 10.0.0.1');
  log.log('ERR', 'agent: boom');
  assert.deepEqual(lines, ['2026/11/24 21:00:05 [INFO] serf: EventMemberJoin: a 10.0.0.1', '2026/11/24 21:00:05 [ERR] agent: boom']);
  assert.equal(log.recentLines().length, 3, 'the ring keeps filtered lines too');
  assert.equal(formatTimestamp(new Date(2026, 0, 2, 3, 4, 5)), '2026/01/02 03:04:05');
});

test('rate-limited lines: one per window, then a count of what was suppressed', () => {
  const lines: string[] = [];
  let now = 0;
  const log = new Logger({ level: 'INFO', sink: (l) => lines.push(l), wallClockMs: () => now });
  for (let i = 0; i < 50; i++) {
    log.logLimited('decrypt|10.0.0.9', 10_000, 'WARN', 'memberlist: cannot decrypt');
    now += 100;
  }
  assert.equal(lines.length, 1);
  now = 20_000;
  log.logLimited('decrypt|10.0.0.9', 10_000, 'WARN', 'memberlist: cannot decrypt');
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /cannot decrypt \(49 similar suppressed\)$/);
  log.logLimited('other', 10_000, 'WARN', 'x');
  assert.equal(lines.length, 3, 'keys are limited independently');
});

test('log levels parse case-insensitively, with serf aliases', () => {
  assert.equal(parseLogLevel('debug'), 'DEBUG');
  assert.equal(parseLogLevel('Warning'), 'WARN');
  assert.equal(parseLogLevel('error'), 'ERR');
  assert.throws(() => parseLogLevel('chatty'), AgentError);
});

test('subscribers get the recent ring, then live lines of every level; a throwing one is dropped', () => {
  const log = new Logger({ level: 'ERR', sink: () => {}, wallClockMs: () => 0 });
  log.log('DEBUG', 'one');
  const got: string[] = [];
  const off = log.subscribe((l) => got.push(l));
  log.log('INFO', 'two');
  off();
  log.log('INFO', 'three');
  assert.deepEqual(got.map((l) => l.slice(20)), ['[DEBUG] one', '[INFO] two']);
  let calls = 0;
  log.subscribe(() => {
    calls++;
    throw new Error('socket closed');
  });
  assert.equal(calls, 1, 'replay stopped at the first throw and did not subscribe');
  let live = 0;
  const empty = new Logger({ level: 'ERR', sink: () => {} });
  empty.subscribe(() => {
    live++;
    throw new Error('socket closed');
  });
  empty.log('INFO', 'four');
  empty.log('INFO', 'five');
  assert.equal(live, 1, 'a live subscriber that throws is dropped after one call');
});
