/** DestinationRule `trafficPolicy.connectionPool`, compiled with Istio's defaults. */
export interface ConnectionPoolSettings {
  /** tcp.maxConnections (Envoy max_connections). Istio default 2^32-1. */
  readonly maxConnections: number;
  /** tcp.connectTimeout in ms. Istio default 10 s. */
  readonly connectTimeoutMs: number;
  /** tcp.idleTimeout in ms (no default: undefined). */
  readonly tcpIdleTimeoutMs?: number;
  /** http.http1MaxPendingRequests (Envoy max_pending_requests). Default 2^32-1. */
  readonly maxPendingRequests: number;
  /** http.http2MaxRequests (Envoy max_requests: active requests in the cluster). Default 2^32-1. */
  readonly maxRequests: number;
  /** http.maxRequestsPerConnection; 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** http.maxRetries (Envoy max_retries: retries outstanding at once). Default 2^32-1. */
  readonly maxRetries: number;
  /** http.idleTimeout in ms: an upstream connection with no request for this long is closed. Default 1 h. */
  readonly idleTimeoutMs: number;
  /** http.maxConcurrentStreams: requests one HTTP/2 connection carries at once. Default 2^31-1. */
  readonly maxConcurrentStreams: number;
}

export const DEFAULT_CONNECTION_POOL: ConnectionPoolSettings = Object.freeze({
  maxConnections: 4294967295,
  connectTimeoutMs: 10_000,
  maxPendingRequests: 4294967295,
  maxRequests: 4294967295,
  maxRequestsPerConnection: 0,
  maxRetries: 4294967295,
  idleTimeoutMs: 3_600_000,
  maxConcurrentStreams: 2147483647,
});

/** Validates `connectionPool` (undefined gives the defaults). Throws PolicyConfigError naming the field. */
export function compileConnectionPool(connectionPool: unknown, where: { readonly object: string; readonly field: string }): ConnectionPoolSettings {
  void connectionPool; void where;
  throw new Error('compileConnectionPool: implementation lands in the next commit');
}

/** An upstream connection as the limiter accounts for it. The caller maps `id` to its socket/session. */
export interface PooledConnection {
  readonly id: number;
}

/** A request that may proceed, on `connection`. */
export interface RequestLease {
  readonly connection: PooledConnection;
  /** True when the caller must open this connection now (then `connected()` or `connectFailed()`). */
  readonly isNew: boolean;
  /** The new connection is up (only for `isNew`). */
  connected(): void;
  /** The new connection failed: the slot is freed, the lease ends (the caller may retry through tryStartRequest). */
  connectFailed(): void;
  /**
   * The request finished. `reusable: false` when the connection must not carry more requests (error, Connection:
   * close). Returns whether the caller must close the connection now (not reusable, or maxRequestsPerConnection
   * reached). Idempotent.
   */
  release(opts?: { readonly reusable?: boolean }): { readonly closeConnection: boolean };
}

export type StartRequestResult =
  | { readonly kind: 'granted'; readonly lease: RequestLease }
  /** Waiting for a connection (Envoy's pending queue). `cancel()` leaves the queue (route timeout, client gone). */
  | { readonly kind: 'queued'; readonly lease: Promise<RequestLease>; cancel(): void }
  /** Circuit breaker open: answer 503 with response flag UO without calling the upstream. */
  | { readonly kind: 'overflow'; readonly status: 503; readonly responseFlag: 'UO'; readonly reason: string };

export interface ClusterLimiter {
  readonly settings: ConnectionPoolSettings;
  /** HTTP/1.x: one request per connection at a time; HTTP/2: up to maxConcurrentStreams. Fixed per limiter. */
  readonly protocol: 'http1' | 'http2';
  tryStartRequest(): StartRequestResult;
  /** Retry budget (max_retries): call before a retry; `release()` when that retry's try ends. Undefined: overflow. */
  tryStartRetry(): { release(): void } | undefined;
  /** The caller's connection `id` died (peer close, error): its slot is freed; requests on it must be released too. */
  connectionClosed(id: number): void;
  /** Ids of connections idle for at least idleTimeout at `now`; they are forgotten, the caller closes them. */
  sweepIdle(now: number): number[];
  /** Counters for metrics/tests. */
  stats(): { readonly connections: number; readonly activeRequests: number; readonly pendingRequests: number; readonly activeRetries: number; readonly overflows: number };
}

export function createClusterLimiter(
  settings: ConnectionPoolSettings,
  options?: { readonly protocol?: 'http1' | 'http2'; readonly now?: () => number },
): ClusterLimiter {
  void settings; void options;
  throw new Error('createClusterLimiter: implementation lands in the next commit');
}
