// What the HTTP API needs of the agent: the AgentHost, plus other subsystems' state it shows.

import type { AgentHost } from '../agent/host.ts';
import type { TelemetryHost } from '../agent/telemetry.ts';
import type { Address } from '../wire/types.ts';
import type { RouteEntry } from '../deploy/types.ts';
import type { DeployRunner } from '../deploy/runner.ts';

/** What the API reads of the agent beyond the AgentHost: other subsystems' state (the Agent has it all). */
export interface HttpHost extends AgentHost, TelemetryHost {
  readonly advertiseAddress: Address;
  readonly encrypted: boolean;
  readonly execEnabled: boolean;
  readonly routes: { get(service: string): RouteEntry | undefined; all(): RouteEntry[] };
  readonly deploys: DeployRunner | undefined;
  readonly monitorRole: object | undefined;
}
