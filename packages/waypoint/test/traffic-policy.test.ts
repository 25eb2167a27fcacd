// DestinationRule traffic policies through the real request path (HBONE in, HBONE out, loopback echo apps):
// circuit breakers, outlier detection, load balancing, retries avoiding the failed host, connections per request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dr, startHarness, VIPS, vs, type Harness, type Reply } from './harness.js';

let h: Harness;
before(async () => { h = await startHarness(); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;
const V1 = `${VIPS.echoV1}:80`;
const clear = (): void => { const names = [...h.app.configStore.objects().keys()]; if (names.length) h.applyConfig([], names); };
const lastLine = (path: string): Record<string, unknown> => {
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === path).at(-1);
  assert.ok(line, `an access line for ${path}`);
  return line;
};
const pod = (r: Reply): string => r.json().pod;

test('connectionPool: maxConnections 1 + http1MaxPendingRequests 1: one active, one pending, the third overflows with 503 UO', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo-v1', { host: 'echo-v1', trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } } })]), []);
  const before = await h.metric('istio_requests_total', { response_code: '503', response_flags: 'UO', destination_service_name: 'echo-v1' });
  const replies = await Promise.all([1, 2, 3].map((i) => h.request(V1, { path: `/pool?delay=400&i=${i}` })));
  const statuses = replies.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 503]);
  const overflow = replies.find((r) => r.status === 503)!;
  assert.equal(overflow.body.trim(), 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
  assert.equal(overflow.headers['x-envoy-overloaded'], 'true', 'Envoy marks a circuit-breaker overflow');
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.response_code === 503 && String(l.path).startsWith('/pool')).at(-1)!;
  assert.equal(line.response_flags, 'UO');
  assert.equal(line.upstream_cluster, `outbound|80||echo-v1.mesh.svc.cluster.local`);
  assert.equal(await h.metric('istio_requests_total', { response_code: '503', response_flags: 'UO', destination_service_name: 'echo-v1' }), before + 1);
  // With the slots free again, requests pass.
  assert.equal((await h.request(V1, { path: '/pool-after' })).status, 200);
});

test('connectionPool: http2MaxRequests 1: a second concurrent request overflows at once (no pending queue)', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo-v1', { host: 'echo-v1', trafficPolicy: { connectionPool: { http: { http2MaxRequests: 1 } } } })]), []);
  const slow = h.request(V1, { path: '/max-requests?delay=400' });
  // Let the first request take the slot.
  await new Promise((r) => setTimeout(r, 150));
  const fast = await h.request(V1, { path: '/max-requests-second' });
  assert.equal(fast.status, 503);
  assert.equal(fast.headers['x-envoy-overloaded'], 'true');
  assert.equal(lastLine('/max-requests-second').response_flags, 'UO');
  assert.equal((await slow).status, 200);
});

test('connectionPool: maxRequestsPerConnection 1 opens a connection per request; unset, keep-alive reuses one', async () => {
  clear();
  const v1 = h.endpoints[0]!;
  // Warm the default pool, then count.
  await h.request(V1, { path: '/warm' });
  let start = v1.connects.count;
  for (let i = 0; i < 3; i++) assert.equal((await h.request(V1, { path: `/reuse-${i}` })).status, 200);
  assert.equal(v1.connects.count - start, 0, 'keep-alive reuses the pooled connection');
  assert.deepEqual(h.applyConfig([dr('echo-v1', { host: 'echo-v1', trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 1 } } } })]), []);
  start = v1.connects.count;
  for (let i = 0; i < 3; i++) assert.equal((await h.request(V1, { path: `/per-conn-${i}` })).status, 200);
  assert.equal(v1.connects.count - start, 3, 'one upstream connection per request');
});

test('connectionPool: maxRetries 1 is a retry budget: of two requests needing a retry at once, one retries, the other gets the 503', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo', {
    host: 'echo',
    trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } }, connectionPool: { http: { maxRetries: 1 } } },
  })]), []);
  // Find the endpoint user "budget" hashes to, and make its next two answers 503.
  const home = pod(await h.request(ECHO, { path: '/budget-probe', headers: { 'x-user': 'budget' } }));
  const homeEp = h.endpoints.find((e) => e.name === home)!;
  homeEp.failNext.push(503, 503);
  const replies = await Promise.all([1, 2].map((i) => h.request(ECHO, { path: `/budget?delay=300&i=${i}`, headers: { 'x-user': 'budget' } })));
  assert.deepEqual(replies.map((r) => r.status).sort(), [200, 503]);
  assert.notEqual(pod(replies.find((r) => r.status === 200)!), home, 'the retry went to the other endpoint');
});

test('outlierDetection: consecutive5xxErrors 1 ejects the failing endpoint; traffic goes to the healthy one until baseEjectionTime passes', async () => {
  clear();
  assert.deepEqual(h.applyConfig([
    dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' }, outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '1s', maxEjectionPercent: 100 } } }),
    // No retries: the client sees the 503 that ejects the endpoint.
    vs('echo', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo' } }], retries: { attempts: 0 } }] }),
  ]), []);
  const [v1, v2] = h.endpoints;
  v1!.failNext.push(503);
  const seenBefore = v1!.seen.length;
  let ejectedAt = 0;
  for (let i = 0; i < 4 && !ejectedAt; i++) {
    const r = await h.request(ECHO, { path: `/outlier-${i}` });
    if (r.status === 503) { assert.equal(pod(r), 'echo-v1-0'); ejectedAt = Date.now(); }
  }
  assert.ok(ejectedAt, 'echo-v1-0 answered the forced 503');
  const during: string[] = [];
  for (let i = 0; i < 6; i++) during.push(pod(await h.request(ECHO, { path: `/ejected-${i}` })));
  if (Date.now() - ejectedAt < 1000) assert.deepEqual([...new Set(during)], ['echo-v2-0'], 'the ejected endpoint gets no traffic');
  assert.equal(v1!.seen.length, seenBefore + 1);
  await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - ejectedAt))));
  const after: string[] = [];
  for (let i = 0; i < 4; i++) after.push(pod(await h.request(ECHO, { path: `/returned-${i}` })));
  assert.ok(after.includes('echo-v1-0'), `echo-v1-0 is back after baseEjectionTime (got ${after.join(',')})`);
  assert.ok(v2!.seen.length > 0);
});

test('outlierDetection: every endpoint ejected answers 503 UH "no healthy upstream"', async () => {
  clear();
  assert.deepEqual(h.applyConfig([
    dr('echo-v1', { host: 'echo-v1', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTime: '30s', maxEjectionPercent: 100 } } }),
    vs('echo-v1', { hosts: ['echo-v1'], http: [{ route: [{ destination: { host: 'echo-v1' } }], retries: { attempts: 0 } }] }),
  ]), []);
  assert.equal((await h.request(V1, { path: '/status/500' })).status, 500);
  const r = await h.request(V1, { path: '/after-ejection' });
  assert.equal(r.status, 503);
  assert.equal(r.body.trim(), 'no healthy upstream');
  const line = lastLine('/after-ejection');
  assert.equal(line.response_flags, 'UH');
  assert.match(String(line.upstream_transport_failure_reason), /ejected by outlier detection/);
  // A new policy for the cluster starts the detector over.
  clear();
  assert.equal((await h.request(V1, { path: '/after-clear' })).status, 200);
});

test('consistentHash by header: a user sticks to one endpoint; users spread over both', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })]), []);
  const homes = new Map<string, string>();
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi']) {
    const pods = new Set<string>();
    for (let i = 0; i < 3; i++) pods.add(pod(await h.request(ECHO, { path: `/hash?u=${user}&i=${i}`, headers: { 'x-user': user } })));
    assert.equal(pods.size, 1, `${user} always lands on the same endpoint`);
    homes.set(user, [...pods][0]!);
  }
  assert.deepEqual([...new Set(homes.values())].sort(), ['echo-v1-0', 'echo-v2-0']);
});

test('consistentHash by cookie with ttl: the waypoint generates the cookie (Set-Cookie) and the cookie then sticks', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'lb', ttl: '60s', path: '/' } } } } })]), []);
  const first = await h.request(ECHO, { path: '/cookie' });
  const setCookie = first.headers['set-cookie'];
  assert.ok(setCookie && setCookie.length === 1, 'Set-Cookie on the response');
  assert.match(setCookie[0]!, /^lb="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
  const cookie = setCookie[0]!.split(';')[0]!;
  const pods = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const r = await h.request(ECHO, { path: `/cookie-${i}`, headers: { cookie } });
    assert.equal(r.headers['set-cookie'], undefined, 'no new cookie when the client sends one');
    pods.add(pod(r));
  }
  assert.equal(pods.size, 1);
});

test('retries avoid the host that failed (previous-hosts): the retry lands on the other endpoint', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })]), []);
  const home = pod(await h.request(ECHO, { path: '/retry-probe', headers: { 'x-user': 'zoe' } }));
  const homeEp = h.endpoints.find((e) => e.name === home)!;
  homeEp.failNext.push(503);
  const seen = homeEp.seen.length;
  const r = await h.request(ECHO, { path: '/retry-other', headers: { 'x-user': 'zoe' } });
  assert.equal(r.status, 200);
  assert.notEqual(pod(r), home);
  assert.equal(r.json().headers['x-envoy-attempt-count'], '2');
  assert.equal(homeEp.seen.length, seen + 1, 'the first attempt went to the hashed endpoint');
  assert.equal(lastLine('/retry-other').attempts, 2);
});

test('an invalid DestinationRule traffic policy is rejected naming the field; the last good one stays', async () => {
  clear();
  assert.deepEqual(h.applyConfig([dr('echo', { host: 'echo', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })]), []);
  const rejected = h.applyConfig([dr('echo', { host: 'echo', subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { connectionPool: { http: { http2MaxRequests: -1 } } } }] })]);
  assert.equal(rejected.length, 1);
  assert.match(rejected[0]!.message, /DestinationRule mesh\/echo: spec\.subsets\[0\]\.trafficPolicy\.connectionPool\.http\.http2MaxRequests/);
  const a = pod(await h.request(ECHO, { path: '/kept-1', headers: { 'x-user': 'kim' } }));
  const b = pod(await h.request(ECHO, { path: '/kept-2', headers: { 'x-user': 'kim' } }));
  assert.equal(a, b, 'the consistent hash of the last good version still applies');
});
