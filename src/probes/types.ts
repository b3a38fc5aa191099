// What a probe is given and what it answers: Nagios/Sensu semantics, so the same probes serve the
// service health checks here and the monitoring checks later.

/** Nagios exit codes: 0 ok, 1 warning, 2 critical, 3 unknown. */
export type ProbeStatus = 0 | 1 | 2 | 3;

export interface ProbeResult {
  status: ProbeStatus;
  /** One line for logs and UIs (a script's first stdout line; a short description otherwise). */
  output: string;
  durationMs: number;
}

export interface ProbeTarget {
  host: string;
  port: number;
}

/**
 * The part of a check a probe needs (CheckSpec from src/discovery/types.ts fits, and so will a
 * monitoring check): scheduling (interval, rise/fall) is the caller's business.
 */
export type ProbeSpec =
  | { kind: 'http'; path: string; expectStatus: number; host?: string; timeoutMs: number }
  | { kind: 'tcp'; timeoutMs: number }
  | { kind: 'script'; command: string; timeoutMs: number };

/** Output lines are kept short: they travel into logs, events and RPC answers. */
export const MAX_OUTPUT_CHARS = 512;

export function clipOutput(s: string): string {
  return s.length <= MAX_OUTPUT_CHARS ? s : `${s.slice(0, MAX_OUTPUT_CHARS - 1)}…`;
}
