// Retry policy: Istio VirtualService retries and Gateway API HTTPRoute retry, decided with Envoy's router rules.
import { DiagnosticSink } from './diagnostics.js';
import { isRecord, readDurationMs, readInt, warnUnknownFields } from './fields.js';

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

const HTTP_CONDITIONS: readonly RetryCondition[] = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
];
const GRPC_CONDITIONS: Readonly<Record<string, number>> = {
  cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14,
};
/** Conditions that exist in Envoy but can never fire in Ambit (no rate limit filter, no retriable headers, no HTTP/3). */
const INERT_CONDITIONS = new Set<RetryCondition>(['envoy-ratelimited', 'retriable-headers', 'http3-post-connect-failure']);

/** Parses Istio's `retryOn`: Envoy condition names and HTTP status codes, comma separated. */
function parseRetryOn(text: unknown, field: string, sink: DiagnosticSink): { retryOn: Set<RetryCondition>; codes: Set<number> } | undefined {
  if (typeof text !== 'string') { sink.error(field, 'must be a comma-separated string'); return undefined; }
  const retryOn = new Set<RetryCondition>();
  const codes = new Set<number>();
  for (const raw of text.split(',')) {
    const token = raw.trim();
    if (token === '') continue;
    if (/^\d+$/.test(token)) {
      const code = Number(token);
      if (code < 100 || code > 599) sink.error(field, `status code ${token} is not in 100..599`);
      else codes.add(code);
    } else if ((HTTP_CONDITIONS as readonly string[]).includes(token) || token in GRPC_CONDITIONS) {
      retryOn.add(token as RetryCondition);
      if (INERT_CONDITIONS.has(token as RetryCondition)) sink.warning(field, `"${token}" has no effect in Ambit's waypoint`);
    } else sink.error(field, `unknown retry condition "${token}"; valid: ${[...HTTP_CONDITIONS, ...Object.keys(GRPC_CONDITIONS)].join(', ')} or an HTTP status code`);
  }
  // As Istio: status codes given without `retriable-status-codes` still enable it.
  if (codes.size > 0) retryOn.add('retriable-status-codes');
  return { retryOn, codes };
}

function readBackoff(value: unknown, field: string, sink: DiagnosticSink): RetryPolicy['backoff'] | undefined {
  if (value === undefined) return undefined;
  const base = readDurationMs(value, field, sink);
  return base === undefined ? undefined : { baseMs: base, maxMs: base * 10 };
}

const NO_RETRIES: RetryPolicy = Object.freeze({ ...ISTIO_DEFAULT_RETRY_POLICY, maxRetries: 0 });

/**
 * VirtualService `http[].retries`, as Istio's ConvertPolicy: absent -> ISTIO_DEFAULT_RETRY_POLICY; `attempts` 0 or
 * unset -> no retries; `retryOn` replaces the default conditions and codes (numeric entries become
 * retriable-status-codes); `perTryTimeout`; `backoff` when given. Throws PolicyConfigError naming the field.
 */
export function compileVirtualServiceRetries(retries: unknown, where: { readonly object: string; readonly field: string }): RetryPolicy {
  if (retries === undefined || retries === null) return ISTIO_DEFAULT_RETRY_POLICY;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(retries)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const r = retries as Record<string, any>;
  warnUnknownFields(r, ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities', 'backoff', 'retryIgnorePreviousHosts'], f, sink);
  const attempts = r.attempts === undefined ? 0 : readInt(r.attempts, `${f}.attempts`, sink, 0, 2 ** 31 - 1);
  const parsed = r.retryOn === undefined ? undefined : parseRetryOn(r.retryOn, `${f}.retryOn`, sink);
  const perTry = r.perTryTimeout === undefined ? undefined : readDurationMs(r.perTryTimeout, `${f}.perTryTimeout`, sink);
  const backoff = readBackoff(r.backoff, `${f}.backoff`, sink);
  if (r.retryRemoteLocalities !== undefined) sink.warning(`${f}.retryRemoteLocalities`, 'ignored: Ambit does not do locality-aware retries');
  sink.throwIfErrors();
  if (!attempts) return NO_RETRIES;
  return Object.freeze({
    ...ISTIO_DEFAULT_RETRY_POLICY,
    maxRetries: attempts,
    ...(parsed ? { retryOn: parsed.retryOn, retriableStatusCodes: parsed.codes } : {}),
    ...(perTry !== undefined ? { perTryTimeoutMs: perTry } : {}),
    ...(backoff ? { backoff } : {}),
    ...(r.retryIgnorePreviousHosts === false ? { avoidPreviousHosts: false } : {}),
  });
}

/**
 * HTTPRoute `rules[].retry` (GEP-1731). Absent -> Istio's default. `attempts: 0` -> none. Otherwise Istio's
 * default conditions plus `reset` (a broken upstream connection is retried, as the conformance test
 * HTTPRouteRetryConnectionError expects); `codes` replace the default 503; `backoff` is the base interval.
 */
export function compileHttpRouteRetry(retry: unknown, where: { readonly object: string; readonly field: string }): RetryPolicy {
  if (retry === undefined || retry === null) return ISTIO_DEFAULT_RETRY_POLICY;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(retry)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const r = retry as Record<string, any>;
  warnUnknownFields(r, ['codes', 'attempts', 'backoff'], f, sink);
  const attempts = r.attempts === undefined ? ISTIO_DEFAULT_RETRY_POLICY.maxRetries : readInt(r.attempts, `${f}.attempts`, sink, 0, 2 ** 31 - 1);
  const codes = new Set<number>();
  if (r.codes !== undefined) {
    if (!Array.isArray(r.codes)) sink.error(`${f}.codes`, 'must be a list of HTTP status codes');
    else r.codes.forEach((c: unknown, i: number) => { const n = readInt(c, `${f}.codes[${i}]`, sink, 400, 599); if (n !== undefined) codes.add(n); });
  }
  const backoff = readBackoff(r.backoff, `${f}.backoff`, sink);
  sink.throwIfErrors();
  if (!attempts) return NO_RETRIES;
  return Object.freeze({
    ...ISTIO_DEFAULT_RETRY_POLICY,
    maxRetries: attempts,
    retryOn: new Set<RetryCondition>([...ISTIO_DEFAULT_RETRY_POLICY.retryOn, 'reset']),
    retriableStatusCodes: codes.size > 0 ? codes : ISTIO_DEFAULT_RETRY_POLICY.retriableStatusCodes,
    ...(backoff ? { backoff } : {}),
  });
}

/**
 * Whether a try with this outcome may be retried; `retriesDone` counts retries already made (0 after the first
 * try). Envoy's rules: resets (connect failure, reset before headers, per-try timeout) are retried under `5xx`,
 * `gateway-error` and `reset`; connect failures also under `connect-failure`/`reset-before-request`, REFUSED_STREAM
 * under `refused-stream`; responses under `5xx` (>= 500), `gateway-error` (502/503/504), `retriable-4xx` (409),
 * `retriable-status-codes`, and the gRPC conditions by grpc-status. Injected faults are never retried.
 */
export function shouldRetry(policy: RetryPolicy, outcome: AttemptOutcome, retriesDone: number): boolean {
  if (outcome.injectedFault) return false;
  if (retriesDone >= policy.maxRetries) return false;
  const on = policy.retryOn;
  const reset = outcome.connectFailure || outcome.resetBeforeHeaders || outcome.refusedStream || outcome.perTryTimeout;
  if (reset) {
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
    if (outcome.connectFailure && (on.has('connect-failure') || on.has('reset-before-request'))) return true;
    if (outcome.refusedStream && on.has('refused-stream')) return true;
    return false;
  }
  const status = outcome.status;
  if (status !== undefined) {
    if (on.has('5xx') && status >= 500 && status <= 599) return true;
    if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
    if (on.has('retriable-4xx') && status === 409) return true;
    if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return true;
  }
  if (outcome.grpcStatus !== undefined) {
    for (const [name, code] of Object.entries(GRPC_CONDITIONS)) {
      if (code === outcome.grpcStatus && on.has(name as RetryCondition)) return true;
    }
  }
  return false;
}

/** Backoff before retry number `retry` (1-based): uniform in [0, min(base * (2^retry - 1), max)). */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const n = Math.max(1, Math.min(retry, 30));
  const upper = Math.min(policy.backoff.baseMs * (2 ** n - 1), policy.backoff.maxMs);
  return Math.floor(random() * upper);
}

/**
 * Time budget of the next try. `routeTimeoutMs` 0/undefined = no overall limit. Returns `expired` when the route
 * timeout has passed (answer 504, flag UT); else the try timeout (min of per-try and remaining; undefined = none)
 * and the time left overall (a backoff longer than `remainingMs` means: give up and answer 504).
 */
export function tryDeadline(
  policy: RetryPolicy,
  input: { readonly startedAt: number; readonly now: number; readonly routeTimeoutMs?: number },
): { readonly expired: true } | { readonly expired: false; readonly timeoutMs?: number; readonly remainingMs?: number } {
  const route = input.routeTimeoutMs && input.routeTimeoutMs > 0 ? input.routeTimeoutMs : undefined;
  if (route === undefined) return policy.perTryTimeoutMs !== undefined ? { expired: false, timeoutMs: policy.perTryTimeoutMs } : { expired: false };
  const remainingMs = route - (input.now - input.startedAt);
  if (remainingMs <= 0) return { expired: true };
  const timeoutMs = policy.perTryTimeoutMs !== undefined ? Math.min(policy.perTryTimeoutMs, remainingMs) : remainingMs;
  return { expired: false, timeoutMs, remainingMs };
}
