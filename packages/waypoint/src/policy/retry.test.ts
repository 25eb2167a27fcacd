import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, compileHttpRouteRetry, compileVirtualServiceRetries, ISTIO_DEFAULT_RETRY_POLICY, shouldRetry, tryDeadline } from './retry.js';
import { PolicyConfigError } from './diagnostics.js';

const vs = { object: 'VirtualService default/ratings', field: 'spec.http[0].retries' };
const hr = { object: 'HTTPRoute default/echo', field: 'spec.rules[0].retry' };

test('no retries block: Istio default (2 retries, connect-failure/refused-stream/unavailable/cancelled/503)', () => {
  const p = compileVirtualServiceRetries(undefined, vs);
  assert.equal(p, ISTIO_DEFAULT_RETRY_POLICY);
  assert.equal(p.maxRetries, 2);
  assert.deepEqual([...p.retryOn].sort(), ['cancelled', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'unavailable']);
  assert.equal(shouldRetry(p, { status: 503 }, 0), true);
  assert.equal(shouldRetry(p, { status: 503 }, 1), true);
  assert.equal(shouldRetry(p, { status: 503 }, 2), false, 'two retries at most');
  assert.equal(shouldRetry(p, { status: 500 }, 0), false);
  assert.equal(shouldRetry(p, { connectFailure: true }, 0), true);
  assert.equal(shouldRetry(p, { refusedStream: true }, 0), true);
  assert.equal(shouldRetry(p, { resetBeforeHeaders: true }, 0), false, 'a plain reset is not in the default set');
  assert.equal(shouldRetry(p, { status: 200, grpcStatus: 14 }, 0), true);
  assert.equal(shouldRetry(p, { status: 200, grpcStatus: 13 }, 0), false);
  assert.equal(p.avoidPreviousHosts, true);
});

test('attempts 0 disables retries, as does a retries block without attempts', () => {
  assert.equal(compileVirtualServiceRetries({ attempts: 0 }, vs).maxRetries, 0);
  assert.equal(shouldRetry(compileVirtualServiceRetries({ perTryTimeout: '2s' }, vs), { connectFailure: true }, 0), false);
});

test('Istio docs example: attempts 3, perTryTimeout 2s, retryOn gateway-error,connect-failure,refused-stream', () => {
  const p = compileVirtualServiceRetries({ attempts: 3, perTryTimeout: '2s', retryOn: 'gateway-error,connect-failure,refused-stream' }, vs);
  assert.equal(p.maxRetries, 3);
  assert.equal(p.perTryTimeoutMs, 2000);
  for (const s of [502, 503, 504]) assert.equal(shouldRetry(p, { status: s }, 2), true, `status ${s}`);
  assert.equal(shouldRetry(p, { status: 500 }, 0), false);
  assert.equal(shouldRetry(p, { status: 503 }, 3), false);
  assert.equal(shouldRetry(p, { perTryTimeout: true }, 0), true, 'a per-try timeout counts as a gateway error');
  assert.equal(shouldRetry(p, { resetBeforeHeaders: true }, 0), true);
});

test('5xx covers every 5xx response and resets; retriable-4xx is 409 only', () => {
  const p = compileVirtualServiceRetries({ attempts: 1, retryOn: '5xx,retriable-4xx' }, vs);
  assert.equal(shouldRetry(p, { status: 500 }, 0), true);
  assert.equal(shouldRetry(p, { status: 599 }, 0), true);
  assert.equal(shouldRetry(p, { resetBeforeHeaders: true }, 0), true);
  assert.equal(shouldRetry(p, { status: 409 }, 0), true);
  assert.equal(shouldRetry(p, { status: 404 }, 0), false);
});

test('numeric codes in retryOn replace the default 503 and enable retriable-status-codes', () => {
  const p = compileVirtualServiceRetries({ attempts: 2, retryOn: '500, 429 ,connect-failure' }, vs);
  assert.deepEqual([...p.retriableStatusCodes].sort(), [429, 500]);
  assert.ok(p.retryOn.has('retriable-status-codes'));
  assert.equal(shouldRetry(p, { status: 429 }, 0), true);
  assert.equal(shouldRetry(p, { status: 503 }, 0), false);
});

test('injected faults are never retried', () => {
  const p = compileVirtualServiceRetries({ attempts: 5, retryOn: '5xx' }, vs);
  assert.equal(shouldRetry(p, { status: 503, injectedFault: true }, 0), false);
});

test('HTTPRoute retry: codes [500] attempts 3 retries 500 but not 503 (conformance HTTPRouteRetry)', () => {
  const p = compileHttpRouteRetry({ codes: [500], attempts: 3 }, hr);
  assert.equal(shouldRetry(p, { status: 500 }, 2), true);
  assert.equal(shouldRetry(p, { status: 500 }, 3), false);
  assert.equal(shouldRetry(p, { status: 503 }, 0), false);
});

test('HTTPRoute retry without codes retries broken connections (HTTPRouteRetryConnectionError)', () => {
  const p = compileHttpRouteRetry({ attempts: 3 }, hr);
  assert.equal(shouldRetry(p, { resetBeforeHeaders: true }, 2), true);
  assert.equal(shouldRetry(p, { resetBeforeHeaders: true }, 3), false);
  assert.equal(compileHttpRouteRetry({ attempts: 0 }, hr).maxRetries, 0);
  assert.equal(compileHttpRouteRetry(undefined, hr), ISTIO_DEFAULT_RETRY_POLICY);
});

test('HTTPRoute backoff sets the base interval; the cap is ten times it', () => {
  const p = compileHttpRouteRetry({ attempts: 2, backoff: '100ms' }, hr);
  assert.deepEqual(p.backoff, { baseMs: 100, maxMs: 1000 });
  assert.equal(backoffMs(p, 1, () => 0.999), 99);
  assert.equal(backoffMs(p, 2, () => 0.5), 150);
  assert.equal(backoffMs(p, 5, () => 0.999), 999);
});

test('Envoy backoff: 25 ms base, full jitter, exponential, capped at 250 ms', () => {
  const p = ISTIO_DEFAULT_RETRY_POLICY;
  assert.equal(backoffMs(p, 1, () => 0), 0);
  assert.equal(backoffMs(p, 1, () => 0.999), 24);
  assert.equal(backoffMs(p, 2, () => 0.999), 74);
  assert.equal(backoffMs(p, 3, () => 0.999), 174);
  assert.equal(backoffMs(p, 4, () => 0.999), 249);
  assert.equal(backoffMs(p, 40, () => 0.999), 249);
});

test('per-try deadline is bounded by the route timeout (HTTPRouteRetryWithTimeouts)', () => {
  const p = compileVirtualServiceRetries({ attempts: 5, perTryTimeout: '200ms', retryOn: '500' }, vs);
  assert.deepEqual(tryDeadline(p, { startedAt: 1000, now: 1000, routeTimeoutMs: 400 }), { expired: false, timeoutMs: 200, remainingMs: 400 });
  assert.deepEqual(tryDeadline(p, { startedAt: 1000, now: 1250, routeTimeoutMs: 400 }), { expired: false, timeoutMs: 150, remainingMs: 150 });
  assert.deepEqual(tryDeadline(p, { startedAt: 1000, now: 1400, routeTimeoutMs: 400 }), { expired: true });
  assert.deepEqual(tryDeadline(p, { startedAt: 1000, now: 99999 }), { expired: false, timeoutMs: 200 });
  assert.deepEqual(tryDeadline(ISTIO_DEFAULT_RETRY_POLICY, { startedAt: 0, now: 5, routeTimeoutMs: 0 }), { expired: false });
});

test('invalid retries name the object and field', () => {
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof PolicyConfigError && re.test(e.message));
  bad(() => compileVirtualServiceRetries({ attempts: 2, retryOn: '5xx,sometimes' }, vs), /VirtualService default\/ratings: spec\.http\[0\]\.retries\.retryOn: unknown retry condition "sometimes"/);
  bad(() => compileVirtualServiceRetries({ attempts: -1 }, vs), /retries\.attempts: must be an integer/);
  bad(() => compileVirtualServiceRetries({ attempts: 1, perTryTimeout: '0.5us' }, vs), /perTryTimeout: duration must be at least 1ms/);
  bad(() => compileVirtualServiceRetries({ attempts: 1, retryOn: '700' }, vs), /status code 700/);
  bad(() => compileHttpRouteRetry({ codes: [200] }, hr), /HTTPRoute default\/echo: spec\.rules\[0\]\.retry\.codes\[0\]: must be an integer in 400\.\.599/);
});
