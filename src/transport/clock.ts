// The runtime's time and randomness: the real monotonic clock and node:crypto. Only drivers use
// these; the cores get `now` and a `Random` passed in, so the simulator can swap both out.

import { randomBytes, randomInt } from 'node:crypto';
import type { Random } from '../memberlist/api.ts';
import type { Clock, TimerHandle } from './transport.ts';

/** Node's setTimeout cannot represent delays above 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * performance.now() based: monotonic and immune to wall-clock steps (NTP, manual changes), which
 * matters because probe and suspicion deadlines are differences of these readings.
 * Timers are unref'd so a pending wake-up alone never keeps the process alive; the sockets do.
 */
export const systemClock: Clock = {
  now(): number {
    return performance.now();
  },
  setTimer(atMs: number, fn: () => void): TimerHandle {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = (): void => {
      const delayMs = Math.max(0, atMs - performance.now());
      if (delayMs > MAX_TIMER_DELAY_MS) {
        handle = setTimeout(arm, MAX_TIMER_DELAY_MS);
      } else {
        handle = setTimeout(() => {
          if (!cancelled) fn();
        }, Math.ceil(delayMs));
      }
      handle.unref();
    };
    arm();
    return {
      cancel(): void {
        cancelled = true;
        if (handle !== undefined) clearTimeout(handle);
      },
    };
  },
};

/** node:crypto backed randomness; the runtime's `Random`. */
export const cryptoRandom: Random = {
  float(): number {
    // 53 random bits → uniform in [0, 1) with full double precision.
    const b = randomBytes(7);
    const hi = ((b[0] ?? 0) & 0x1f) * 2 ** 48; // 5 bits
    const lo = (b[1] ?? 0) * 2 ** 40 + (b[2] ?? 0) * 2 ** 32 + (b[3] ?? 0) * 2 ** 24 +
      (b[4] ?? 0) * 2 ** 16 + (b[5] ?? 0) * 2 ** 8 + (b[6] ?? 0);
    return (hi + lo) / 2 ** 53;
  },
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`int(n): n must be a positive integer, got ${n}`);
    if (n === 1) return 0;
    // randomInt is unbiased but limited to ranges below 2^48.
    if (n <= 2 ** 48) return randomInt(n);
    return Math.floor(cryptoRandom.float() * n);
  },
  bytes(n: number): Uint8Array {
    const b = randomBytes(n);
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  },
};
