// Counters shared by every frontend of one embedded balancer. A plain object with numeric
// fields: bumping one is a property increment on the hot path, reading them is a copy.

// A type alias, not an interface: it then fits Balancer.counters()'s Record<string, number>.
export type ProxyCounters = {
  /** HTTP requests received on any frontend. */
  requests: number;
  /** Client connections accepted (HTTP and TCP frontends). */
  connections: number;
  /** Connect attempts that failed (refused, unreachable, timed out before connecting). */
  connect_failures: number;
  /** Requests/connections sent again to another backend after a failed connect. */
  retries: number;
  /** Requests/connections that found no ready backend (503 / connection closed). */
  no_backend: number;
  /** Failures after the request was sent: reset, malformed answer, timeout (502/504). */
  upstream_errors: number;
  /** Upstream timeouts (a subset of upstream_errors or connect_failures). */
  timeouts: number;
  /** Malformed client input the HTTP parser rejected (answered 400/431 and closed). */
  bad_requests: number;
  /** Backend entries given to setBackends that were dropped as invalid. */
  invalid_backends: number;
};

export function newCounters(): ProxyCounters {
  return {
    requests: 0,
    connections: 0,
    connect_failures: 0,
    retries: 0,
    no_backend: 0,
    upstream_errors: 0,
    timeouts: 0,
    bad_requests: 0,
    invalid_backends: 0,
  };
}
