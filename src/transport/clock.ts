// The runtime's time and randomness: the real monotonic clock, Math.random for choices and
// node:crypto for bytes. Only drivers use these; the cores get `now` and a `Random` passed in, so
// the simulator can swap both out.

import type { Random } from '../memberlist/api.ts';
import { nodeCrypto } from '../wire/builtins.ts';
import type { Clock, TimerHandle } from './transport.ts';

/** Node's setTimeout cannot represent delays above 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Milliseconds on the process's monotonic clock (libuv's hrtime since start, as performance.now()
 * reads it, without loading node:perf_hooks — ~0.4 MiB per agent — to read it): immune to
 * wall-clock steps (NTP, manual changes), which matters because probe and suspicion deadlines
 * are differences of these readings.
 */
export function monotonicMs(): number {
  return process.uptime() * 1000;
}

// How late fired timers ran: the event-loop delay the agent's own timers (gossip, probes, every
// driver's) see, for the metrics history (src/metrics/sampler.ts). Read where timers fire anyway,
// so measuring it costs no wake-up of its own.
let lateMaxMs = 0;
let firedSinceTake = 0;

/** The worst lateness (ms) of a timer fired since the last call; undefined when none fired. */
export function takeTimerLateness(): number | undefined {
  const out = firedSinceTake > 0 ? lateMaxMs : undefined;
  lateMaxMs = 0;
  firedSinceTake = 0;
  return out;
}

/**
 * monotonicMs() based (see there).
 * Timers are unref'd so a pending wake-up alone never keeps the process alive; the sockets do.
 */
export const systemClock: Clock = {
  now(): number {
    return monotonicMs();
  },
  setTimer(atMs: number, fn: () => void): TimerHandle {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = (): void => {
      const delayMs = Math.max(0, atMs - monotonicMs());
      if (delayMs > MAX_TIMER_DELAY_MS) {
        handle = setTimeout(arm, MAX_TIMER_DELAY_MS);
      } else {
        handle = setTimeout(() => {
          if (cancelled) return;
          const late = monotonicMs() - atMs;
          if (late > lateMaxMs) lateMaxMs = late;
          firedSinceTake++;
          fn();
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

/**
 * The runtime's `Random`: choices (gossip and probe targets, shuffles, query ids) from
 * Math.random, as memberlist makes them with math/rand — V8 seeds it from the OS at start and
 * nothing here needs more than an unpredictable-enough spread; bytes (AES-GCM nonces, only when
 * encrypting) from node:crypto, loaded then.
 */
export const systemRandom: Random = {
  float(): number {
    return Math.random();
  },
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`int(n): n must be a positive integer, got ${n}`);
    return Math.floor(Math.random() * n);
  },
  bytes(n: number): Uint8Array {
    const b = nodeCrypto().randomBytes(n);
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  },
};
