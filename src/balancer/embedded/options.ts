// Tuning shared by the HTTP and TCP frontends of one embedded balancer.

export type ProxyLog = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;

export interface ProxyTuning {
  /**
   * Upstream inactivity bound for one HTTP request (HAProxy's `timeout server`): no byte from
   * the backend for this long → 504 (or a cut response once the answer has started).
   */
  requestTimeoutMs: number;
  /** Bound on establishing a connection to a backend (HAProxy's `timeout connect`). */
  connectTimeoutMs: number;
  /** Backends tried per request/connection when connects fail (HAProxy `retries 3` + redispatch). */
  maxTries: number;
  log: ProxyLog;
}

export const DEFAULT_TUNING: Omit<ProxyTuning, 'log'> = {
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 3_000,
  maxTries: 3,
};
