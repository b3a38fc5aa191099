// The smallest memberlist Delegate with something to say: a meta a simulation can change (then
// `driver.updateMeta()` spreads it as a tag change would), and nothing else — no user messages,
// no push/pull state. For benchmarks that drive the membership core alone.

import type { Delegate } from '../memberlist/api.ts';

export class MetaDelegate implements Delegate {
  meta = new Uint8Array(0);
  nodeMeta(limit: number): Uint8Array {
    return this.meta.subarray(0, limit);
  }
  notifyMsg(): void {}
  getBroadcasts(): Uint8Array[] {
    return [];
  }
  hasBroadcasts(): boolean {
    return false;
  }
  localState(): Uint8Array {
    return new Uint8Array(0);
  }
  mergeRemoteState(): void {}
  ackPayload(): Uint8Array | null {
    return null;
  }
}
