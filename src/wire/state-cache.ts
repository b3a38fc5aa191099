// Decoded node states by their bytes (the simulator's; a real agent leaves it off).
//
// A periodic push/pull lists every member, and in a simulated cluster the members' states are
// the same few thousand byte strings in every node's table, exchange after exchange. This keeps
// each state's bytes once, in one arena, with the frozen state decoded from them; a push/pull
// decoder looks the bytes at its position up and gets the same object again: no name, address or
// object to build.
//
// A node state is one msgpack object and msgpack is self-delimiting, so bytes at a position equal
// to a cached state's bytes *are* that state and end where they end: a hit parses nothing. The
// key hashes only the first KEY_BYTES (the map header, the name, a little more); states of one
// name that differ further on (another incarnation) share a key and sit next to each other in
// the open-addressed table. Hashing and comparing read four bytes at a time: at fleet size this
// lookup runs hundreds of thousands of times per simulated second, and every byte read one by one
// shows.
//
// Bounded: when the table or the arena is full, everything is forgotten at once. A collision only
// costs a miss.

const KEY_BYTES = 32;
/** Bytes of arena per cached state, on average (a usual state is 60–90 bytes). */
const ARENA_PER_STATE = 128;

/** Values decoded from msgpack objects, found again by the objects' bytes (node states, alives). */
export class NodeStateCache<T extends object> {
  private readonly mask: number;
  /** Per table slot: key (0: empty), offset in the arena, length. */
  private readonly tab: Int32Array;
  private readonly states: (T | undefined)[];
  private readonly arena: Uint8Array;
  private readonly arenaView: DataView;
  private arenaUsed = 0;
  private count = 0;
  /** Where the state the last hit returned ends in the buffer looked at. */
  end = 0;

  constructor(readonly maxStates: number) {
    let size = 16;
    while (size < 2 * maxStates) size *= 2;
    this.mask = size - 1;
    this.tab = new Int32Array(3 * size);
    this.states = new Array<T | undefined>(size).fill(undefined);
    this.arena = new Uint8Array(maxStates * ARENA_PER_STATE);
    this.arenaView = new DataView(this.arena.buffer);
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.tab.fill(0);
    this.states.fill(undefined);
    this.arenaUsed = 0;
    this.count = 0;
  }

  /** The key of the state at `start` (never 0). `view` is a DataView over all of `buf`. */
  key(buf: Uint8Array, view: DataView, start: number): number {
    let h = 0x811c9dc5;
    let i = start;
    const stop = Math.min(buf.length, start + KEY_BYTES);
    for (; i + 4 <= stop; i += 4) h = Math.imul(h ^ view.getInt32(i, true), 0x01000193) ^ (h >>> 15);
    for (; i < stop; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    return (h & 0x3fffffff) | 1;
  }

  /** The cached state whose bytes are at `start` (then `end` is where they end), or undefined. */
  find(buf: Uint8Array, view: DataView, start: number, key: number): T | undefined {
    const tab = this.tab;
    const room = buf.length - start;
    for (let s = key & this.mask, probes = 0; probes <= this.mask; s = (s + 1) & this.mask, probes++) {
      const k = tab[3 * s]!;
      if (k === 0) return undefined;
      if (k !== key) continue;
      const off = tab[3 * s + 1]!;
      const len = tab[3 * s + 2]!;
      if (len > room || !this.same(buf, view, start, off, len)) continue;
      this.end = start + len;
      return this.states[s];
    }
    return undefined;
  }

  private same(buf: Uint8Array, view: DataView, start: number, off: number, len: number): boolean {
    const a = this.arenaView;
    let i = 0;
    for (; i + 4 <= len; i += 4) if (view.getInt32(start + i, true) !== a.getInt32(off + i, true)) return false;
    const arena = this.arena;
    for (; i < len; i++) if (buf[start + i] !== arena[off + i]) return false;
    return true;
  }

  /** Keep `state`, decoded from buf[start, end), under `key` (from key()). */
  add(buf: Uint8Array, start: number, end: number, key: number, state: T): void {
    const len = end - start;
    if (len > this.arena.length) return;
    if (this.count >= this.maxStates || this.arenaUsed + len > this.arena.length) this.clear();
    const tab = this.tab;
    let s = key & this.mask;
    while (tab[3 * s] !== 0) s = (s + 1) & this.mask;
    tab[3 * s] = key;
    tab[3 * s + 1] = this.arenaUsed;
    tab[3 * s + 2] = len;
    this.states[s] = Object.freeze(state);
    this.arena.set(buf.subarray(start, end), this.arenaUsed);
    this.arenaUsed += len;
    this.count++;
  }
}
