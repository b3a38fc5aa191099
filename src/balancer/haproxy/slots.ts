// Backend id ↔ server slot, per service. HAProxy's runtime API can re-point an existing server
// line (`set server … addr`) but a reload would forget anything the config does not name, so
// every backend lives in an explicit `server slotN` line. Free slots are rendered disabled at a
// placeholder; when all are taken, the driver creates one more with `add server` and the table
// grows (so the next rendered config names it too).
import type { Backend } from '../../discovery/types.ts';

/** Address rendered for (and set on) a free slot: never reached, it is always in maint. */
export const PLACEHOLDER = { host: '127.0.0.1', port: 1 } as const;

export interface Slot {
  /** Server name in HAProxy: slot0, slot1, … */
  readonly name: string;
  /** What HAProxy was told to serve in this slot; undefined = free (maint at the placeholder). */
  backend: Backend | undefined;
}

export class SlotTable {
  readonly slots: Slot[] = [];

  constructor(initial: number) {
    for (let i = 0; i < initial; i++) this.slots.push({ name: `slot${i}`, backend: undefined });
  }

  byId(id: string): Slot | undefined {
    return this.slots.find((s) => s.backend?.id === id);
  }

  byName(name: string): Slot | undefined {
    return this.slots.find((s) => s.name === name);
  }

  /** First free slot (lowest number, so the config stays compact). */
  free(): Slot | undefined {
    return this.slots.find((s) => s.backend === undefined);
  }

  /** A new slot past the end; the caller must create it in HAProxy (`add server`). */
  grow(): Slot {
    const slot: Slot = { name: `slot${this.slots.length}`, backend: undefined };
    this.slots.push(slot);
    return slot;
  }

  /** Remove a slot that HAProxy never got (add server failed). */
  drop(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }

  used(): Slot[] {
    return this.slots.filter((s) => s.backend !== undefined);
  }
}
