// Carry out what the Serf layer asks of the runtime (its pollOutput()): user packets, joins
// (reconnects, heal joins), heal pings and meta updates go to the memberlist core through the
// Driver; a shutdown (a lost name conflict) is the caller's. One loop for the agent and the
// simulator harnesses, so a new Serf output kind is handled everywhere at once.

import type { Serf } from '../serf/serf.ts';
import type { Driver } from './driver.ts';

export interface SerfOutputHooks {
  /** A join Serf started (its id): not anyone's join() call. */
  joined?(joinId: number): void;
  /** Serf shut itself down; return true to stop carrying out the rest. */
  shutdown(reason: string): boolean;
}

/** Drain serf.pollOutput() into `driver` (bounded); false when a shutdown stopped it. */
export function carryOutSerfOutputs(serf: Serf, driver: Driver, hooks: SerfOutputHooks): boolean {
  for (let o = serf.pollOutput(), i = 0; o !== undefined && i < 100_000; o = serf.pollOutput(), i++) {
    switch (o.kind) {
      case 'user-packet':
        driver.sendUserPacket(o.to, o.payload);
        break;
      case 'join': {
        const id = driver.join(o.seeds);
        hooks.joined?.(id);
        break;
      }
      case 'ping':
        driver.pingNode(o.node, o.addr);
        break;
      case 'update-meta':
        driver.updateMeta();
        break;
      case 'shutdown':
        if (hooks.shutdown(o.reason)) return false;
        break;
    }
  }
  return true;
}
