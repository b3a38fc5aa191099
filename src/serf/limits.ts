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
export const RECONNECT_TIMEOUT_MS = 24 * 3600_000;
export const TOMBSTONE_TIMEOUT_MS = 24 * 3600_000;
export const BROADCAST_TIMEOUT_MS = 5_000;
export const LEAVE_PROPAGATE_DELAY_MS = 1_000;
/** Internal queries carry this prefix and are never shown to handlers. */
export const INTERNAL_QUERY_PREFIX = '_serf_';
