/** Retry conditions (Envoy's retry_on names). */
export type RetryCondition =
  | '5xx' | 'gateway-error' | 'reset' | 'reset-before-request' | 'connect-failure' | 'envoy-ratelimited' | 'retriable-4xx'
  | 'refused-stream' | 'retriable-status-codes' | 'retriable-headers' | 'http3-post-connect-failure'
  | 'cancelled' | 'deadline-exceeded' | 'internal' | 'resource-exhausted' | 'unavailable';

export interface RetryPolicy {
  /** Retries allowed after the first try (0 = no retries). */
  readonly maxRetries: number;
  readonly retryOn: ReadonlySet<RetryCondition>;
  /** For `retriable-status-codes`. */
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** Per-try timeout in ms; undefined = bounded only by the route timeout. */
  readonly perTryTimeoutMs?: number;
  /** Exponential backoff with full jitter: base (Envoy 25 ms) and cap (10 x base unless given). */
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  /** Envoy previous_hosts predicate (Istio sets it, with 5 host-selection attempts): prefer another endpoint. */
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionRetryMaxAttempts: number;
}

/** What happened to one try. */
export interface AttemptOutcome {
  /** HTTP status of the upstream response (absent when no response headers arrived). */
  readonly status?: number;
  /** grpc-status from the response headers/trailers-only response. */
  readonly grpcStatus?: number;
  /** The upstream connection could not be established (connect error or connect timeout). */
  readonly connectFailure?: boolean;
  /** The stream was reset / the connection dropped before response headers. */
  readonly resetBeforeHeaders?: boolean;
  /** HTTP/2 REFUSED_STREAM. */
  readonly refusedStream?: boolean;
  /** The per-try timeout fired (Envoy treats it as a 504 for 5xx/gateway-error). */
  readonly perTryTimeout?: boolean;
  /** The response came from fault injection: never retried. */
  readonly injectedFault?: boolean;
}

/** Istio's default when a route has no retries block: 2 retries on connect-failure, refused-stream, unavailable,
 * cancelled, retriable-status-codes (503), previous_hosts predicate with 5 attempts, Envoy's 25 ms backoff. */
export const ISTIO_DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxRetries: 2,
  retryOn: new Set<RetryCondition>(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']),
  retriableStatusCodes: new Set([503]),
  backoff: { baseMs: 25, maxMs: 250 },
  avoidPreviousHosts: true,
  hostSelectionRetryMaxAttempts: 5,
});

/** VirtualService `http[].retries` (undefined: Istio's default). Throws PolicyConfigError naming the field. */
export function compileVirtualServiceRetries(retries: unknown, where: { readonly object: string; readonly field: string }): RetryPolicy {
  void retries; void where;
  throw new Error('compileVirtualServiceRetries: implementation lands in the next commit');
}

/** HTTPRoute `rules[].retry` (GEP-1731: codes, attempts, backoff); undefined: Istio's default. */
export function compileHttpRouteRetry(retry: unknown, where: { readonly object: string; readonly field: string }): RetryPolicy {
  void retry; void where;
  throw new Error('compileHttpRouteRetry: implementation lands in the next commit');
}

/** Whether a try with this outcome may be retried; `retriesDone` counts retries already made (0 after the first try). */
export function shouldRetry(policy: RetryPolicy, outcome: AttemptOutcome, retriesDone: number): boolean {
  void policy; void outcome; void retriesDone;
  throw new Error('shouldRetry: implementation lands in the next commit');
}

/** Backoff before retry number `retry` (1-based): uniform in [0, min(base * (2^retry - 1), max)). */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  void policy; void retry; void random;
  throw new Error('backoffMs: implementation lands in the next commit');
}

/**
 * Time budget of the next try. `routeTimeoutMs` 0/undefined = no overall limit. Returns `expired` when the route
 * timeout has passed (answer 504, flag UT); else the try timeout (min of per-try and remaining; undefined = none).
 */
export function tryDeadline(
  policy: RetryPolicy,
  input: { readonly startedAt: number; readonly now: number; readonly routeTimeoutMs?: number },
): { readonly expired: true } | { readonly expired: false; readonly timeoutMs?: number; readonly remainingMs?: number } {
  void policy; void input;
  throw new Error('tryDeadline: implementation lands in the next commit');
}
