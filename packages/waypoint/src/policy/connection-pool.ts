// Envoy's per-cluster circuit breakers and connection accounting for DestinationRule connectionPool.
import { DiagnosticSink } from './diagnostics.js';
import { isRecord, readDurationMs, readInt, warnUnknownFields } from './fields.js';

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

/**
 * Validates `connectionPool` (undefined gives the defaults). As Istio, a 0 count means "not set" (default).
 * Throws PolicyConfigError naming the field.
 */
export function compileConnectionPool(connectionPool: unknown, where: { readonly object: string; readonly field: string }): ConnectionPoolSettings {
  if (connectionPool === undefined || connectionPool === null) return DEFAULT_CONNECTION_POOL;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(connectionPool)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const cp = connectionPool as Record<string, any>;
  warnUnknownFields(cp, ['tcp', 'http'], f, sink);
  const out: { -readonly [K in keyof ConnectionPoolSettings]: ConnectionPoolSettings[K] } = { ...DEFAULT_CONNECTION_POOL };
  const count = (obj: Record<string, any>, key: string, at: string, apply: (n: number) => void) => {
    if (obj[key] === undefined) return;
    const n = readInt(obj[key], `${at}.${key}`, sink, 0, 2 ** 32 - 1);
    if (n) apply(n);
  };
  const duration = (obj: Record<string, any>, key: string, at: string, apply: (ms: number) => void) => {
    if (obj[key] === undefined) return;
    const ms = readDurationMs(obj[key], `${at}.${key}`, sink);
    if (ms !== undefined) apply(ms);
  };
  if (cp.tcp !== undefined) {
    const at = `${f}.tcp`;
    if (!isRecord(cp.tcp)) sink.error(at, 'must be an object');
    else {
      warnUnknownFields(cp.tcp, ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'], at, sink);
      count(cp.tcp, 'maxConnections', at, (n) => { out.maxConnections = n; });
      duration(cp.tcp, 'connectTimeout', at, (ms) => { out.connectTimeoutMs = ms; });
      duration(cp.tcp, 'idleTimeout', at, (ms) => { out.tcpIdleTimeoutMs = ms; });
      if (cp.tcp.tcpKeepalive !== undefined) sink.warning(`${at}.tcpKeepalive`, 'ignored: upstream keepalive is the HBONE connection\'s');
      if (cp.tcp.maxConnectionDuration !== undefined) sink.warning(`${at}.maxConnectionDuration`, 'ignored by Ambit');
    }
  }
  if (cp.http !== undefined) {
    const at = `${f}.http`;
    if (!isRecord(cp.http)) sink.error(at, 'must be an object');
    else {
      warnUnknownFields(cp.http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout',
        'h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams'], at, sink);
      count(cp.http, 'http1MaxPendingRequests', at, (n) => { out.maxPendingRequests = n; });
      count(cp.http, 'http2MaxRequests', at, (n) => { out.maxRequests = n; });
      count(cp.http, 'maxRequestsPerConnection', at, (n) => { out.maxRequestsPerConnection = n; });
      count(cp.http, 'maxRetries', at, (n) => { out.maxRetries = n; });
      count(cp.http, 'maxConcurrentStreams', at, (n) => { out.maxConcurrentStreams = n; });
      duration(cp.http, 'idleTimeout', at, (ms) => { out.idleTimeoutMs = ms; });
      if (cp.http.h2UpgradePolicy !== undefined && !['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'].includes(cp.http.h2UpgradePolicy)) {
        sink.error(`${at}.h2UpgradePolicy`, 'must be DEFAULT, DO_NOT_UPGRADE or UPGRADE');
      }
    }
  }
  sink.throwIfErrors();
  return Object.freeze(out);
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

interface ConnState {
  readonly id: number;
  active: number;
  /** Requests assigned over the connection's life (maxRequestsPerConnection). */
  served: number;
  connecting: boolean;
  idleSince: number;
}

interface Waiter {
  resolve: (lease: RequestLease) => void;
  cancelled: boolean;
}

/**
 * The accountant of one cluster's upstream connections and requests, with Envoy's circuit-breaker semantics:
 * - a request goes on a connection with free capacity (HTTP/1: idle; HTTP/2: fewer than maxConcurrentStreams
 *   streams, not past maxRequestsPerConnection);
 * - else a new connection is opened while fewer than maxConnections exist;
 * - else it waits in the pending queue while fewer than http1MaxPendingRequests wait;
 * - else, or when http2MaxRequests requests are already active, it overflows (503, flag UO).
 * The caller owns the sockets; ids tie them to this accounting.
 */
export function createClusterLimiter(
  settings: ConnectionPoolSettings,
  options: { readonly protocol?: 'http1' | 'http2'; readonly now?: () => number } = {},
): ClusterLimiter {
  const protocol = options.protocol ?? 'http1';
  const now = options.now ?? Date.now;
  const streamsPerConnection = protocol === 'http1' ? 1 : settings.maxConcurrentStreams;
  const perConnLimit = settings.maxRequestsPerConnection > 0 ? settings.maxRequestsPerConnection : Infinity;
  const conns = new Map<number, ConnState>();
  const pending: Waiter[] = [];
  let nextId = 1;
  let active = 0;
  let activeRetries = 0;
  let overflows = 0;

  const hasCapacity = (c: ConnState) => c.active < streamsPerConnection && c.served < perConnLimit && (!c.connecting || protocol === 'http2');

  function makeLease(conn: ConnState, isNew: boolean): RequestLease {
    conn.active++;
    conn.served++;
    active++;
    let done = false;
    const finish = () => {
      if (done) return false;
      done = true;
      active--;
      return true;
    };
    return {
      connection: { id: conn.id },
      isNew,
      connected() { conn.connecting = false; drain(); },
      connectFailed() {
        if (!finish()) return;
        if (conns.get(conn.id) === conn) conns.delete(conn.id);
        drain();
      },
      release(opts) {
        if (!finish()) return { closeConnection: false };
        conn.active--;
        const live = conns.get(conn.id) === conn;
        let close = false;
        if (live && (opts?.reusable === false || (conn.served >= perConnLimit && conn.active === 0))) {
          conns.delete(conn.id);
          close = true;
        }
        if (conn.active === 0) conn.idleSince = now();
        drain();
        return { closeConnection: close };
      },
    };
  }

  /** A lease on an existing connection with room, or on a new one if allowed; undefined when neither. */
  function assign(): RequestLease | undefined {
    if (active >= settings.maxRequests) return undefined;
    for (const c of conns.values()) if (hasCapacity(c)) return makeLease(c, false);
    if (conns.size < settings.maxConnections) {
      const c: ConnState = { id: nextId++, active: 0, served: 0, connecting: true, idleSince: now() };
      conns.set(c.id, c);
      return makeLease(c, true);
    }
    return undefined;
  }

  function drain(): void {
    while (pending.length > 0) {
      if (pending[0]!.cancelled) { pending.shift(); continue; }
      const lease = assign();
      if (!lease) return;
      pending.shift()!.resolve(lease);
    }
  }

  const overflow = (reason: string): StartRequestResult => {
    overflows++;
    return { kind: 'overflow', status: 503, responseFlag: 'UO', reason };
  };

  return {
    settings,
    protocol,
    tryStartRequest(): StartRequestResult {
      if (active >= settings.maxRequests) return overflow(`upstream max requests (${settings.maxRequests}) reached`);
      if (pending.length === 0) {
        const lease = assign();
        if (lease) return { kind: 'granted', lease };
      }
      const waiting = pending.filter((w) => !w.cancelled).length;
      if (waiting >= settings.maxPendingRequests) {
        return overflow(`upstream connections at max (${settings.maxConnections}) and pending requests at max (${settings.maxPendingRequests})`);
      }
      const waiter: Waiter = { resolve: () => {}, cancelled: false };
      const lease = new Promise<RequestLease>((resolve) => { waiter.resolve = resolve; });
      pending.push(waiter);
      return {
        kind: 'queued',
        lease,
        cancel() {
          waiter.cancelled = true;
          const i = pending.indexOf(waiter);
          if (i >= 0) pending.splice(i, 1);
        },
      };
    },
    tryStartRetry() {
      if (activeRetries >= settings.maxRetries) return undefined;
      activeRetries++;
      let released = false;
      return { release() { if (!released) { released = true; activeRetries--; } } };
    },
    connectionClosed(id: number) {
      if (conns.delete(id)) drain();
    },
    sweepIdle(at: number): number[] {
      const out: number[] = [];
      for (const c of conns.values()) {
        if (c.active === 0 && !c.connecting && at - c.idleSince >= settings.idleTimeoutMs) out.push(c.id);
      }
      for (const id of out) conns.delete(id);
      if (out.length > 0) drain();
      return out;
    },
    stats() {
      return { connections: conns.size, activeRequests: active, pendingRequests: pending.length, activeRetries, overflows };
    },
  };
}
