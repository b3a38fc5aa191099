// A process that does nothing but write one of the agent's state files, as fast as it can, until
// it is killed (test/agent/crash-writes.test.ts kills it with SIGKILL at random moments):
//
//   node --import tsx test/agent/crash-writer.ts snapshot <path>    member churn, user events and
//       the member clock through the agent's Snapshotter, compacting every few hundred bytes;
//   node --import tsx test/agent/crash-writer.ts deploys <dataDir>  the deploy state file, one
//       step further at every write (saveDeploys: temp file, fsync, rename).
//
// It prints `ready <what it found on disk>` once it has read what the last one left, then writes.

import { Snapshotter } from '../../src/agent/snapshot.ts';
import { loadDeploys, removeStaleTemps, saveDeploys } from '../../src/deploy/state-file.ts';
import type { DeployState } from '../../src/deploy/types.ts';

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];

const [kind, path] = process.argv.slice(2);

if (kind === 'snapshot' && path !== undefined) {
  let now = 0;
  // A clock that moves 600 ms per call: every record is flushed at once (the real one buffers 500 ms).
  const s = new Snapshotter(path, { nowMs: () => (now += 600), minCompactBytes: 400 });
  const c = s.clocks();
  process.stdout.write(`ready ${JSON.stringify({ clock: c.clock, eventClock: c.eventClock, torn: s.stats().tornBytes })}\n`);
  let clock = c.clock + 1;
  let event = c.eventClock;
  for (let i = 0; ; i++) {
    const n = NAMES[i % NAMES.length]!;
    const m = [{ name: n, addr: { ip: '10.0.0.1', port: 7000 + (i % NAMES.length) } }];
    s.memberEvent({ type: i % 3 === 2 ? 'member-failed' : 'member-join', members: m }, ++clock);
    s.userEvent(++event);
  }
} else if (kind === 'deploys' && path !== undefined) {
  const stored = await loadDeploys(path);
  const removed = await removeStaleTemps(path);
  process.stdout.write(`ready ${JSON.stringify({ step: stored.current?.step ?? 0, removed })}\n`);
  const base: DeployState = stored.current ?? { id: 'd-1', spec: {} as DeployState['spec'], coordinator: 'c', phase: 'shift', step: 0, startedAt: 0, phaseSince: 0, updatedAt: 0, routeLTime: 0, figures: {}, events: [] };
  const history = stored.history;
  for (let step = base.step + 1; ; step++) {
    // Some bulk, so a write takes a moment: a deploy's event log.
    const events = Array.from({ length: 40 }, (_, i) => ({ at: step, msg: `event ${i} of step ${step}` }));
    await saveDeploys(path, { current: { ...base, step, routeLTime: step, events } as DeployState, history });
  }
} else {
  process.stderr.write('usage: crash-writer.ts snapshot <path> | deploys <dataDir>\n');
  process.exit(2);
}
