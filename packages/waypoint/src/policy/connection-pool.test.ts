import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConnectionPool, createClusterLimiter, DEFAULT_CONNECTION_POOL, type RequestLease, type StartRequestResult } from './connection-pool.js';
import { PolicyConfigError } from './diagnostics.js';

const where = { object: 'DestinationRule default/httpbin', field: 'spec.trafficPolicy.connectionPool' };
const granted = (r: StartRequestResult): RequestLease => { assert.equal(r.kind, 'granted'); return (r as Extract<StartRequestResult, { kind: 'granted' }>).lease; };

test('Istio circuit-breaking example: maxConnections 1, http1MaxPendingRequests 1: the third concurrent request overflows with UO', async () => {
  const s = compileConnectionPool({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } }, where);
  assert.equal(s.maxConnections, 1);
  assert.equal(s.maxPendingRequests, 1);
  const l = createClusterLimiter(s, { now: () => 0 });
  const first = granted(l.tryStartRequest());
  assert.equal(first.isNew, true);
  first.connected();
  const second = l.tryStartRequest();
  assert.equal(second.kind, 'queued');
  const third = l.tryStartRequest();
  assert.deepEqual(third.kind === 'overflow' && [third.status, third.responseFlag], [503, 'UO']);
  assert.match(third.kind === 'overflow' ? third.reason : '', /pending requests at max \(1\)/);
  // maxRequestsPerConnection 1: the connection is closed after its request; the queued one gets a new connection.
  assert.deepEqual(first.release(), { closeConnection: true });
  const lease2 = await (second as Extract<StartRequestResult, { kind: 'queued' }>).lease;
  assert.equal(lease2.isNew, true);
  assert.notEqual(lease2.connection.id, first.connection.id);
  assert.deepEqual(l.stats(), { connections: 1, activeRequests: 1, pendingRequests: 0, activeRetries: 0, overflows: 1 });
});

test('HTTP/1 reuses an idle connection; release is idempotent', () => {
  const l = createClusterLimiter(compileConnectionPool({ tcp: { maxConnections: 2 } }, where), { now: () => 0 });
  const a = granted(l.tryStartRequest()); a.connected();
  const b = granted(l.tryStartRequest()); b.connected();
  assert.notEqual(a.connection.id, b.connection.id, 'a busy HTTP/1 connection is not shared');
  assert.deepEqual(a.release(), { closeConnection: false });
  assert.deepEqual(a.release(), { closeConnection: false });
  const c = granted(l.tryStartRequest());
  assert.equal(c.isNew, false);
  assert.equal(c.connection.id, a.connection.id);
  assert.equal(l.stats().activeRequests, 2);
});

test('HTTP/2 multiplexes up to maxConcurrentStreams; http2MaxRequests caps active requests', () => {
  const l = createClusterLimiter(compileConnectionPool({ tcp: { maxConnections: 1 }, http: { http2MaxRequests: 3, maxConcurrentStreams: 2 } }, where), { protocol: 'http2', now: () => 0 });
  const a = granted(l.tryStartRequest());
  const b = granted(l.tryStartRequest());
  assert.equal(b.connection.id, a.connection.id);
  assert.equal(b.isNew, false, 'streams attach to a connecting HTTP/2 connection');
  assert.equal(l.tryStartRequest().kind, 'queued', 'stream limit reached and no room for another connection');
  const l2 = createClusterLimiter(compileConnectionPool({ http: { http2MaxRequests: 2 } }, where), { protocol: 'http2', now: () => 0 });
  granted(l2.tryStartRequest()); granted(l2.tryStartRequest());
  const over = l2.tryStartRequest();
  assert.match(over.kind === 'overflow' ? over.reason : '', /max requests \(2\)/);
});

test('a failed connect frees the slot and serves the queue; cancel leaves the queue; peer close frees a connection', async () => {
  const l = createClusterLimiter(compileConnectionPool({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 5 } }, where), { now: () => 0 });
  const a = granted(l.tryStartRequest());
  const q1 = l.tryStartRequest() as Extract<StartRequestResult, { kind: 'queued' }>;
  const q2 = l.tryStartRequest() as Extract<StartRequestResult, { kind: 'queued' }>;
  q1.cancel();
  a.connectFailed();
  const b = await q2.lease;
  assert.equal(b.isNew, true);
  b.connected();
  assert.deepEqual(l.stats().pendingRequests, 0);
  const q3 = l.tryStartRequest() as Extract<StartRequestResult, { kind: 'queued' }>;
  assert.equal(q3.kind, 'queued');
  l.connectionClosed(b.connection.id);
  const c = await q3.lease;
  assert.equal(c.isNew, true, 'the dead connection is not reused');
  assert.deepEqual(b.release({ reusable: false }), { closeConnection: false }, 'already closed by the peer');
});

test('idle connections are swept after idleTimeout', () => {
  let clock = 0;
  const l = createClusterLimiter(compileConnectionPool({ http: { idleTimeout: '30s' } }, where), { now: () => clock });
  const a = granted(l.tryStartRequest()); a.connected();
  clock = 1000; a.release();
  assert.deepEqual(l.sweepIdle(30_999), []);
  assert.deepEqual(l.sweepIdle(31_000), [a.connection.id]);
  assert.equal(l.stats().connections, 0);
});

test('retry budget: maxRetries outstanding retries at once', () => {
  const l = createClusterLimiter(compileConnectionPool({ http: { maxRetries: 1 } }, where));
  const r = l.tryStartRetry();
  assert.ok(r);
  assert.equal(l.tryStartRetry(), undefined);
  r.release(); r.release();
  assert.ok(l.tryStartRetry());
});

test('defaults as Istio: unlimited thresholds, 10 s connect timeout, 1 h idle timeout; 0 means unset', () => {
  assert.equal(compileConnectionPool(undefined, where), DEFAULT_CONNECTION_POOL);
  assert.deepEqual(compileConnectionPool({ tcp: { maxConnections: 0, connectTimeout: '250ms' } }, where), { ...DEFAULT_CONNECTION_POOL, connectTimeoutMs: 250 });
  assert.equal(DEFAULT_CONNECTION_POOL.maxConnections, 4294967295);
  assert.throws(() => compileConnectionPool({ tcp: { maxConnections: -1 } }, where), (e: unknown) => e instanceof PolicyConfigError && /DestinationRule default\/httpbin: spec\.trafficPolicy\.connectionPool\.tcp\.maxConnections: must be an integer/.test(e.message));
  assert.throws(() => compileConnectionPool({ http: { idleTimeout: 'forever' } }, where), /connectionPool\.http\.idleTimeout: invalid duration/);
});
