// A check's record after each result: status, occurrences, the last 21 statuses and Sensu's flap
// detection. Pure: time comes in the result (`at`).
//
// Percent state change is Sensu 1.x's formula (itself from Nagios): over the last 21 results,
// each change of status counts with a weight growing linearly from the oldest to the newest
// (0.82 … 1.20 in steps of 0.02 for the 20 transitions of a full history; 0.8 is the weight of
// the oldest result, which has nothing before it), and the sum is divided by 20 transitions.
// A short history is divided by 20 as well, so a few early changes read as a low percentage
// instead of 100 % (Sensu waits for 21 results; this detects sooner but not rashly).
// Sensu's hysteresis: flapping starts when the percentage reaches the high threshold and stops
// when it falls to the low threshold or below; thresholds 0/0 turn detection off.

import { HISTORY_LENGTH, MAX_OCCURRENCES } from './types.ts';
import type { CheckRecord, CheckResult, CheckStatus, MonitorCheckSpec } from './types.ts';

/** Sensu's weighted percent state change (an integer, floor, 0..101) of statuses oldest first. */
export function percentStateChange(history: readonly CheckStatus[]): number {
  const h = history.slice(-HISTORY_LENGTH);
  // Integer hundredths so the floor is exact (0.82 + … in floats can land just under an integer).
  let sumHundredths = 0;
  const newest = h.length - 1;
  for (let i = 1; i < h.length; i++) {
    if (h[i] !== h[i - 1]) sumHundredths += 120 - 2 * (newest - i);
  }
  return Math.floor(sumHundredths / (HISTORY_LENGTH - 1));
}

/** Sensu's hysteresis on top of percentStateChange. */
export function nextFlapping(wasFlapping: boolean, percent: number, low: number, high: number): boolean {
  if (low <= 0 && high <= 0) return false;
  if (wasFlapping) return percent > low;
  return percent >= high;
}

/** The record after one more result (a new record when `rec` is undefined). */
export function recordResult(
  rec: CheckRecord | undefined,
  name: string,
  r: CheckResult,
  spec: Pick<MonitorCheckSpec, 'lowFlapThreshold' | 'highFlapThreshold'>,
): CheckRecord {
  const history = [...(rec?.history ?? []), r.status].slice(-HISTORY_LENGTH);
  const changed = rec === undefined || rec.status !== r.status;
  const occurrences = changed ? 1 : Math.min(MAX_OCCURRENCES, rec.occurrences + 1);
  const percent = percentStateChange(history);
  return {
    name,
    status: r.status,
    output: r.output,
    occurrences,
    history,
    flapping: nextFlapping(rec?.flapping ?? false, percent, spec.lowFlapThreshold, spec.highFlapThreshold),
    percentStateChange: percent,
    lastRunAt: r.at,
    lastChangeAt: changed ? r.at : rec.lastChangeAt,
  };
}
