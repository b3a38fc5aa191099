// Serf's recent-message rings (5.6, 5.7): user events and queries are deduplicated by Lamport
// time in 512-slot rings (slot = LTime mod 512; a newer LTime evicts the slot). The event ring
// also travels in push/pull so late nodes can replay it. Both are bounded against floods.

import type { EventBufferEntry } from './messages.ts';

/** Distinct user events kept per LTime slot (serf keeps all; a flood would grow it forever). */
const MAX_EVENTS_PER_SLOT = 256;
/** Bytes of names + payloads the event ring may hold (512 slots of 512-byte events = 256 KiB
 *  is the normal worst case; this leaves room while capping push/pull size and memory). */
const MAX_EVENT_BUFFER_BYTES = 2 * 1024 * 1024;
/** Query IDs remembered per LTime slot. */
const MAX_QUERY_IDS_PER_SLOT = 1024;

export type AddResult = 'new' | 'duplicate' | 'slot-full' | 'buffer-full';

export class EventRing {
  private readonly slots: (EventBufferEntry | undefined)[];
  private bytes = 0;

  constructor(private readonly size: number) {
    this.slots = new Array<EventBufferEntry | undefined>(size);
  }

  /** Record (ltime, name, payload) unless already seen; the payload is copied. */
  add(ltime: number, name: string, payload: Uint8Array): AddResult {
    const idx = ltime % this.size;
    let slot = this.slots[idx];
    if (slot !== undefined && slot.ltime === ltime) {
      for (const e of slot.events) if (e.name === name && equalBytes(e.payload, payload)) return 'duplicate';
    } else {
      if (slot !== undefined) this.bytes -= slotBytes(slot);
      slot = { ltime, events: [] };
      this.slots[idx] = slot;
    }
    if (slot.events.length >= MAX_EVENTS_PER_SLOT) return 'slot-full';
    const size = name.length + payload.length;
    if (this.bytes + size > MAX_EVENT_BUFFER_BYTES) return 'buffer-full';
    this.bytes += size;
    slot.events.push({ name, payload: payload.slice() });
    return 'new';
  }

  /** Slots in use (push/pull state). */
  entries(): EventBufferEntry[] {
    return this.slots.filter((e): e is EventBufferEntry => e !== undefined);
  }
}

export class QueryRing {
  private readonly slots: ({ ltime: number; ids: number[] } | undefined)[];

  constructor(private readonly size: number) {
    this.slots = new Array<{ ltime: number; ids: number[] } | undefined>(size);
  }

  add(ltime: number, id: number): Exclude<AddResult, 'buffer-full'> {
    const idx = ltime % this.size;
    let slot = this.slots[idx];
    if (slot !== undefined && slot.ltime === ltime) {
      if (slot.ids.includes(id)) return 'duplicate';
    } else {
      slot = { ltime, ids: [] };
      this.slots[idx] = slot;
    }
    if (slot.ids.length >= MAX_QUERY_IDS_PER_SLOT) return 'slot-full';
    slot.ids.push(id);
    return 'new';
  }
}

function slotBytes(slot: EventBufferEntry): number {
  let n = 0;
  for (const e of slot.events) n += e.name.length + e.payload.length;
  return n;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
