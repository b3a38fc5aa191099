// Push/pull state exchange (doc §3.2, §4.11, §4.12): full anti-entropy over a stream, used both
// to join (Join = true) and periodically to repair whatever gossip missed.

import { hasVsn, type NodeStates } from './nodes.ts';
import { bytesToIp } from '../wire/addr.ts';
import type { NodeTable } from './table.ts';
import { encodePushPullFrom } from '../wire/messages.ts';
import type { PushNodeState } from '../wire/types.ts';

/** Clusters above this size push/pull less often so the total TCP load stays flat. */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/** interval × (ceil(log2 n − log2 32) + 1) above 32 nodes, else interval. */
export function pushPullScaleMs(intervalMs: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return mult * intervalMs;
}

/** Our whole table (dead and left included until purged) plus the delegate's state, encoded. */
export function encodeLocalState(table: NodeTable, join: boolean, userState: Uint8Array): Uint8Array {
  return encodePushPullFrom(join, table.size, userState, (put) => table.writeStates(put));
}

interface VsnRange {
  maxPMin: number;
  minPMax: number;
  maxDMin: number;
  minDMax: number;
}

function sameVsn(a: readonly number[], b: readonly number[] | undefined): boolean {
  if (b === undefined) return false;
  if (a === b) return true;
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] && a[5] === b[5] && a.length === b.length;
}

function widen(r: VsnRange, v: readonly number[]): void {
  r.maxPMin = Math.max(r.maxPMin, v[0] ?? 0);
  r.minPMax = Math.min(r.minPMax, v[1] ?? 0);
  r.maxDMin = Math.max(r.maxDMin, v[3] ?? 0);
  r.minDMax = Math.min(r.minDMax, v[4] ?? 0);
}

function checkVsn(r: VsnRange, name: string, v: readonly number[]): string | null {
  const pCur = v.length > 0 ? (v[2] ?? 0) : 0;
  const dCur = v.length > 0 ? (v[5] ?? 0) : 0;
  if (pCur < r.maxPMin || pCur > r.minPMax) {
    return `Node '${name}' protocol version (${pCur}) is incompatible: [${r.maxPMin}, ${r.minPMax}]`;
  }
  if (dCur < r.maxDMin || dCur > r.minDMax) {
    return `Node '${name}' delegate protocol version (${dCur}) is incompatible: [${r.maxDMin}, ${r.minDMax}]`;
  }
  return null;
}

/**
 * Every node's current protocol versions must fit the range all alive nodes (remote and local)
 * understand. Returns the error text memberlist would give, or null when compatible. Our own
 * table is looked at by its distinct version tuples (usually one): only when one of them fails is
 * it walked entry by entry, for the name of the first node that does.
 */
export function verifyProtocol(remote: readonly PushNodeState[], local: NodeTable): string | null {
  const r: VsnRange = { maxPMin: 0, minPMax: 255, maxDMin: 0, minDMax: 255 };
  // A tuple equal to the one looked at just before changes nothing (nearly every entry).
  let last: readonly number[] | undefined;
  for (const n of remote) {
    if (n.state !== 'alive' || sameVsn(n.vsn, last) || !hasVsn(n.vsn)) continue;
    widen(r, n.vsn);
    last = n.vsn;
  }
  const inUse = local.vsnsInUse();
  for (const v of inUse.alive) widen(r, v);
  last = undefined;
  for (const n of remote) {
    if (sameVsn(n.vsn, last)) continue;
    const err = checkVsn(r, n.name, n.vsn);
    if (err !== null) return err;
    last = n.vsn;
  }
  if (inUse.all.every((v) => checkVsn(r, '', v) === null)) return null;
  for (const n of local.all()) {
    const err = checkVsn(r, n.name, n.vsn);
    if (err !== null) return err;
  }
  return null;
}

/**
 * Merge a remote node list: alive → alive news; left → dead news from the node itself (= left);
 * suspect and dead → only a suspicion accused by us (a remote "dead" must not kill a node we
 * can still reach). Entries with an unusable address are skipped and reported.
 */
export function mergeState(
  states: NodeStates,
  selfName: string,
  remote: readonly PushNodeState[],
  slots: Int32Array,
  now: number,
  onBad: (name: string, detail: string) => void,
): void {
  states.quietly(() => mergeEntries(states, selfName, remote, slots, now, onBad));
}

/** `slots[i]`: the table slot of remote[i] before the merge (NodeTable.slotFor), -1 if not listed. */
function mergeEntries(
  states: NodeStates,
  selfName: string,
  remote: readonly PushNodeState[],
  slots: Int32Array,
  now: number,
  onBad: (name: string, detail: string) => void,
): void {
  for (let i = 0; i < remote.length; i++) {
    const r = remote[i]!;
    switch (r.state) {
      case 'alive': {
        // Slots found before the merge stay good through it: a merge adds entries, never removes one.
        if (states.staleAlive(slots[i]!, r.name, r.incarnation, r.addr, r.port, r.vsn)) break;
        let ip: string;
        try {
          ip = bytesToIp(r.addr);
        } catch (e) {
          onBad(r.name, (e as Error).message);
          continue;
        }
        states.aliveNode(
          {
            incarnation: r.incarnation,
            node: r.name,
            addr: { ip, port: r.port },
            ip4: r.addr.length === 4 ? r.addr : undefined,
            meta: r.meta,
            vsn: r.vsn,
          },
          now,
          false,
        );
        break;
      }
      case 'left':
        states.deadNode({ incarnation: r.incarnation, node: r.name, from: r.name }, now);
        break;
      case 'dead':
      case 'suspect':
        states.suspectNode({ incarnation: r.incarnation, node: r.name, from: selfName }, now);
        break;
    }
  }
}
