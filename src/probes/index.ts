// Probes: one attempt of one check against one target, Nagios semantics (0 ok, 1 warning,
// 2 critical, 3 unknown). Never rejects: every failure is a result with an output line.
// Used by the service health checks (src/discovery/services.ts) and meant for monitoring checks.

import { probeHttp } from './http.ts';
import { probeScript } from './script.ts';
import { probeTcp } from './tcp.ts';
import type { ProbeResult, ProbeSpec, ProbeTarget } from './types.ts';

export function runProbe(check: ProbeSpec, target: ProbeTarget): Promise<ProbeResult> {
  switch (check.kind) {
    case 'http':
      return probeHttp(check, target);
    case 'tcp':
      return probeTcp(check, target);
    case 'script':
      return probeScript(check, target);
  }
}

export { probeHttp, probeScript, probeTcp };
export { MAX_OUTPUT_CHARS } from './types.ts';
export type { ProbeResult, ProbeSpec, ProbeStatus, ProbeTarget } from './types.ts';
