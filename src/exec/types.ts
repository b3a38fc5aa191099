// Shared model of actions by role (issue 6): `kodama exec --role web -- <cmd>` and
// `kodama rolling --role web --batch 2 -- <cmd>`. Both travel as the query `kodama-exec`,
// answered by every kodama agent — with a refusal that says why unless this node enabled exec,
// the cluster is encrypted, the token matches and the command is allowed.

export const EXEC_QUERY = 'kodama-exec';

/** Agent config `exec` (and -enable-exec / -exec-token / KODAMA_EXEC_TOKEN). */
export interface ExecSpec {
  /** Off unless set: a node runs nothing for anyone by default. */
  enabled: boolean;
  /** Shared secret the caller must present (required when enabled). */
  token: string;
  /** Glob patterns (`*` any run of characters) over the whole command line; [] = any command. */
  allow: string[];
  /** Longest run of one command; its process group is killed after (default 10 min). */
  timeoutMs: number;
  /** Output kept per run for callers to fetch (default 1 MiB; beyond that it is cut, and says so). */
  maxOutputBytes: number;
}

/** Stable refusal codes a caller sees per node. */
export type ExecRefusal =
  | 'ERR_EXEC_DISABLED' // the node did not enable exec
  | 'ERR_EXEC_NOT_ENCRYPTED' // the cluster has no gossip key: a token would travel in clear text
  | 'ERR_EXEC_TOKEN' // missing or wrong token
  | 'ERR_EXEC_NOT_ALLOWED' // not in the node's allow-list
  | 'ERR_EXEC_BAD_REQUEST'
  | 'ERR_EXEC_UNKNOWN_RUN'; // poll for a run this node does not know (restarted, expired)

/** What a caller ends up with per node. */
export interface ExecNodeResult {
  node: string;
  /** Exit code; null when it did not run to an exit (refused, lost, killed by signal). */
  exitCode: number | null;
  signal?: string;
  refused?: { code: ExecRefusal; message: string };
  /** The node stopped answering before the run finished. */
  lost?: boolean;
  output: string;
  durationMs: number;
}
