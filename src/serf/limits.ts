// Serf's size limits and timing defaults (5.6, 5.7, 5.10).

export const USER_EVENT_SIZE_LIMIT_DEFAULT = 512;
/** Hard cap: no configured limit may exceed it (it must fit a UDP packet with headers). */
export const USER_EVENT_SIZE_LIMIT_MAX = 9216;
export const QUERY_SIZE_LIMIT_DEFAULT = 1024;
export const QUERY_RESPONSE_SIZE_LIMIT_DEFAULT = 1024;
export const EVENT_BUFFER_SIZE = 512;
export const QUERY_BUFFER_SIZE = 512;
export const QUERY_TIMEOUT_MULT = 16;
export const REAP_INTERVAL_MS = 15_000;
export const RECONNECT_INTERVAL_MS = 30_000;
/**
 * kodama's heal pings (not Serf's): each heal interval, a node pings one failed member with
 * probability min(1, max(HEAL_PINGS_PER_INTERVAL, failed) / alive) — Serf's reconnect odds
 * (failed / alive), with a floor so that a few failed members in a big cluster are still pinged
 * about HEAL_PINGS_PER_INTERVAL times per interval cluster-wide. The small side of a partition
 * (few alive, many failed) pings every interval; the big side, together, about as many times per
 * interval as members failed. A member is pinged again after a tenth of the time it has been
 * failed, between one interval and HEAL_BACKOFF_MAX_MS (jittered), so long-dead members cost little.
 */
export const HEAL_PINGS_PER_INTERVAL = 3;
export const HEAL_BACKOFF_DIVISOR = 10;
export const HEAL_BACKOFF_MAX_MS = 30_000;
/**
 * A member failed longer than this is pinged with odds HEAL_FULL_RATE_MS / (time failed) on top,
 * so the cluster as a whole pings it less and less (after an hour a sixth as often, after a day
 * 1/144): in an immutable fleet its address soon belongs to a new server, which would log every
 * ping for a name not its own (memberlist: "Got ping for unexpected node").
 */
export const HEAL_FULL_RATE_MS = 10 * 60_000;
/** A heal join (push/pull) to the same member is not repeated within this time. */
export const HEAL_JOIN_HOLD_MS = 10_000;
export const RECONNECT_TIMEOUT_MS = 24 * 3600_000;
export const TOMBSTONE_TIMEOUT_MS = 24 * 3600_000;
export const BROADCAST_TIMEOUT_MS = 5_000;
export const LEAVE_PROPAGATE_DELAY_MS = 1_000;
/** Internal queries carry this prefix and are never shown to handlers. */
export const INTERNAL_QUERY_PREFIX = '_serf_';
