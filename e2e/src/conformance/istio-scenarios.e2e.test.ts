// Istio's traffic-management and security scenarios (the seed's list) through the waypoint on the cluster-in-a-box:
// subset weights, header routing, rewrite, redirect, timeout, retries with perTryTimeout, abort and delay faults,
// outlier ejection, connection-pool overflow, L7 deny, JWT. Same fixture and client as the Gateway API tests, plus a
// Service `pool` over a healthy and an always-failing (503) endpoint for outlier detection.
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import type { MeshRequest } from './expect.js';
import { runBatch, runEach } from './mesh.js';
import { MESH_NS, expectConsistent, expectWeights, useMesh, withConfig, withinBinomialBand } from './suite.js';

const file = useMesh('istio-scenarios', {
  extraBackends: [{ name: 'pool-good', app: 'pool' }, { name: 'pool-bad', app: 'pool', env: { FAIL_STATUS: '503' } }],
});

const host = (svc: string) => `${svc}.${MESH_NS}.svc.cluster.local`;
const subsets = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-subsets, namespace: ${MESH_NS}}
spec:
  host: ${host('echo')}
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`;
const weighted = (w1: number, w2: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo-weights, namespace: ${MESH_NS}}
spec:
  hosts: [${host('echo')}]
  http:
    - route:
        - {destination: {host: ${host('echo')}, subset: v1}, weight: ${w1}}
        - {destination: {host: ${host('echo')}, subset: v2}, weight: ${w2}}
`;
const vs = (name: string, svc: string, http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${MESH_NS}}
spec:
  hosts: [${host(svc)}]
  http:
${http}`;

for (const [w1, w2] of [[90, 10], [70, 30]] as const) {
  file.test(`VirtualService subset weights ${w1}/${w2}`, async (t, mesh) => {
    await withConfig(mesh, `${subsets}---\n${weighted(w1, w2)}`, async () => {
      const { shares, runs } = await expectWeights(mesh, { to: 'echo', path: '/' }, { 'echo-v1': w1 / 100, 'echo-v2': w2 / 100 }, { diagnostic: (m) => t.diagnostic(m) });
      t.diagnostic(`${w1}/${w2} over 500 requests: echo-v1 ${(shares['echo-v1']! * 100).toFixed(1)}%, echo-v2 ${(shares['echo-v2']! * 100).toFixed(1)}% (run ${runs})`);
    }, { waitWaypoint: true });
  });
}

file.test('beta-user header routing', async (_t, mesh) => {
  await withConfig(mesh, `${subsets}---\n${vs('echo-beta', 'echo', `    - match: [{headers: {x-user-group: {exact: beta}}}]
      route: [{destination: {host: ${host('echo')}, subset: v2}}]
    - route: [{destination: {host: ${host('echo')}, subset: v1}}]
`)}`, () => expectConsistent(mesh, [
    { name: 'beta user -> v2', request: { to: 'echo', path: '/', headers: { 'x-user-group': 'beta' } }, expect: { backend: 'echo-v2' } },
    { name: 'other user -> v1', request: { to: 'echo', path: '/', headers: { 'x-user-group': 'stable' } }, expect: { backend: 'echo-v1' } },
    { name: 'no header -> v1', request: { to: 'echo', path: '/' }, expect: { backend: 'echo-v1' } },
  ]));
});

file.test('rewrite /v1/api -> /v2/api', async (_t, mesh) => {
  await withConfig(mesh, vs('echo-rewrite', 'echo-v1', `    - match: [{uri: {prefix: /v1/api}}]
      rewrite: {uri: /v2/api}
      route: [{destination: {host: ${host('echo-v1')}}}]
    - route: [{destination: {host: ${host('echo-v1')}}}]
`), () => expectConsistent(mesh, [
    { name: '/v1/api/users -> /v2/api/users', request: { to: 'echo-v1', path: '/v1/api/users?id=7' }, expect: { backend: 'echo-v1', request: { path: '/v2/api/users?id=7' } } },
    { name: '/v1/api -> /v2/api', request: { to: 'echo-v1', path: '/v1/api' }, expect: { backend: 'echo-v1', request: { path: '/v2/api' } } },
    { name: '/other untouched', request: { to: 'echo-v1', path: '/other' }, expect: { backend: 'echo-v1', request: { path: '/other' } } },
  ]));
});

file.test('redirect', async (_t, mesh) => {
  await withConfig(mesh, vs('echo-redirect', 'echo-v1', `    - match: [{uri: {exact: /old-page}}]
      redirect: {uri: /new-page, authority: example.org}
    - match: [{uri: {prefix: /moved}}]
      redirect: {uri: /elsewhere, redirectCode: 308}
    - route: [{destination: {host: ${host('echo-v1')}}}]
`), () => expectConsistent(mesh, [
    { name: '/old-page -> 301 example.org/new-page', request: { to: 'echo-v1', path: '/old-page' }, expect: { status: 301, redirect: { hostname: 'example.org', path: '/new-page' } } },
    { name: '/moved -> 308 /elsewhere on the same host', request: { to: 'echo-v1', path: '/moved/x' }, expect: { status: 308, redirect: { hostname: 'echo-v1', path: '/elsewhere' } } },
    { name: 'other paths are routed', request: { to: 'echo-v1', path: '/page' }, expect: { status: 200, backend: 'echo-v1' } },
  ]));
});

file.test('route timeout -> 504', async (_t, mesh) => {
  await withConfig(mesh, vs('echo-timeout', 'echo-v1', `    - timeout: 0.5s
      retries: {attempts: 0}
      route: [{destination: {host: ${host('echo-v1')}}}]
`), async () => {
    await expectConsistent(mesh, [
      { name: 'backend takes 1 s, route timeout 0.5 s -> 504', request: { to: 'echo-v1', path: '/?delay=1s' }, expect: { status: 504 } },
      { name: 'backend takes 100 ms -> 200', request: { to: 'echo-v1', path: '/?delay=100ms' }, expect: { status: 200, backend: 'echo-v1' } },
    ]);
    const [r] = await runEach(mesh, [{ to: 'echo-v1', path: '/?delay=3s' }]);
    assert.equal(r!.status, 504);
    assert.ok(r!.ms < 2500, `the 504 came after ${r!.ms} ms, the route timeout is 0.5 s`);
  });
});

file.test('retries with perTryTimeout', async (_t, mesh) => {
  await withConfig(mesh, vs('echo-retries', 'echo-v1', `    - timeout: 5s
      retries: {attempts: 3, perTryTimeout: 300ms, retryOn: "5xx,gateway-error,reset,connect-failure"}
      route: [{destination: {host: ${host('echo-v1')}}}]
`), () => expectConsistent(mesh, [
    { name: 'two attempts slower than perTryTimeout, third answers -> 200', request: { to: 'echo-v1', path: '/?fail=2&fail-delay=2s&key={uniq}' }, expect: { status: 200, backend: 'echo-v1' } },
    { name: 'two 503s, then 200', request: { to: 'echo-v1', path: '/?fail=2&code=503&key={uniq}' }, expect: { status: 200, backend: 'echo-v1' } },
    { name: 'three retries exhausted -> the last 500', request: { to: 'echo-v1', path: '/?fail=4&code=500&key={uniq}' }, expect: { status: 500 } },
    { name: 'every attempt slower than perTryTimeout -> 504', request: { to: 'echo-v1', path: '/?fail=10&fail-delay=2s&key={uniq}' }, expect: { status: 504 } },
  ]));
});

file.test('fault injection: 30% abort', async (t, mesh) => {
  await withConfig(mesh, vs('echo-abort', 'echo-v1', `    - fault: {abort: {percentage: {value: 30}, httpStatus: 503}}
      route: [{destination: {host: ${host('echo-v1')}}}]
`), async () => {
    const n = 500;
    const r = await runBatch(mesh, { to: 'echo-v1', path: '/' }, n, { concurrency: 10 });
    const aborted = (r.byStatus['503'] ?? 0) / n;
    t.diagnostic(`30% abort over ${n} requests: ${(aborted * 100).toFixed(1)}% 503, statuses ${JSON.stringify(r.byStatus)}`);
    assert.equal((r.byStatus['503'] ?? 0) + (r.byStatus['200'] ?? 0), n, `only 200 and 503 expected: ${JSON.stringify(r.byStatus)} ${JSON.stringify(r.errors)}`);
    assert.ok(withinBinomialBand(aborted, 0.3, n), `${(aborted * 100).toFixed(1)}% aborted, outside 30% +- 3 standard deviations (${(3 * Math.sqrt(0.21 / n) * 100).toFixed(1)} points)`);
    // Aborts come from the waypoint, not from the backend: no echo body.
    assert.ok(r.entries.filter((e) => e.status === 503).every((e) => e.pod === undefined), 'an aborted request reached the backend');
  }, { waitWaypoint: true });
});

file.test('fault injection: 5% delay', async (t, mesh) => {
  await withConfig(mesh, vs('echo-delay', 'echo-v1', `    - fault: {delay: {percentage: {value: 5}, fixedDelay: 1s}}
      route: [{destination: {host: ${host('echo-v1')}}}]
`), async () => {
    const n = 400;
    const r = await runBatch(mesh, { to: 'echo-v1', path: '/' }, n, { concurrency: 20 });
    assert.equal(r.byStatus['200'], n, `every delayed request still answers 200: ${JSON.stringify(r.byStatus)} ${JSON.stringify(r.errors)}`);
    const delayed = r.entries.filter((e) => e.ms >= 1000).length / n;
    t.diagnostic(`5% delay of 1 s over ${n} requests: ${(delayed * 100).toFixed(1)}% took >= 1 s`);
    assert.ok(delayed > 0 && withinBinomialBand(delayed, 0.05, n), `${(delayed * 100).toFixed(1)}% delayed, outside 5% +- 3 standard deviations (${(3 * Math.sqrt(0.0475 / n) * 100).toFixed(1)} points)`);
  }, { waitWaypoint: true });
});

file.test('outlier detection ejects a failing endpoint', async (t, mesh) => {
  // No retries, so a request that reaches the failing endpoint shows its 503 (Istio's default would retry it).
  const noRetries = vs('pool-no-retries', 'pool', `    - retries: {attempts: 0}
      route: [{destination: {host: ${host('pool')}}}]
`);
  const outlier = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pool-outlier, namespace: ${MESH_NS}}
spec:
  host: ${host('pool')}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
`;
  const request: MeshRequest = { to: 'pool', path: '/' };
  await withConfig(mesh, noRetries, async () => {
    // Without outlier detection the failing endpoint keeps getting its share.
    const before = await runBatch(mesh, request, 40, { concurrency: 1 });
    t.diagnostic(`without outlier detection: ${JSON.stringify(before.byStatus)} ${JSON.stringify(before.byBackend)}`);
    assert.ok((before.byStatus['503'] ?? 0) > 0, `the failing endpoint answers 503 without outlier detection: ${JSON.stringify(before.byStatus)}`);
    await withConfig(mesh, outlier, async () => {
      // A few requests trip consecutive5xxErrors; after that the failing endpoint is ejected for 60 s.
      const warmup = await runBatch(mesh, request, 10, { concurrency: 1 });
      const after = await runBatch(mesh, request, 100, { concurrency: 1 });
      t.diagnostic(`warm-up ${JSON.stringify(warmup.byStatus)}; then ${JSON.stringify(after.byStatus)} ${JSON.stringify(after.byBackend)}`);
      assert.deepEqual(after.byStatus, { 200: 100 }, 'after ejection every request is answered by the healthy endpoint');
      assert.deepEqual(after.byBackend, { 'pool-good': 100 });
    }, { waitWaypoint: true });
  }, { waitWaypoint: true });
});

file.test('connection-pool overflow -> 503', async (t, mesh) => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-v1-pool, namespace: ${MESH_NS}}
spec:
  host: ${host('echo-v1')}
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1, http2MaxRequests: 1}
---
${vs('echo-v1-no-retries', 'echo-v1', `    - retries: {attempts: 0}
      route: [{destination: {host: ${host('echo-v1')}}}]
`)}`;
  await withConfig(mesh, yaml, async () => {
    // 20 requests at once to a backend that takes 500 ms: one runs, one waits, the others overflow.
    const r = await runEach(mesh, Array.from({ length: 20 }, () => ({ to: 'echo-v1', path: '/?delay=500ms' })), { concurrency: 20 });
    const byStatus: Record<number, number> = {};
    for (const x of r) byStatus[x.status] = (byStatus[x.status] ?? 0) + 1;
    t.diagnostic(`20 concurrent requests: ${JSON.stringify(byStatus)}`);
    const overflow = r.filter((x) => x.status === 503);
    assert.ok(overflow.length >= 10, `most requests overflow the pool with 503: ${JSON.stringify(byStatus)}`);
    assert.ok((byStatus[200] ?? 0) >= 1, `the request holding the connection is answered: ${JSON.stringify(byStatus)}`);
    assert.ok(overflow.every((x) => x.echo === undefined), 'an overflowing request reached the backend');
    // Envoy's router marks them (Istio's waypoint keeps Envoy headers by default).
    assert.ok(overflow.every((x) => x.headers['x-envoy-overloaded'] === 'true'), 'every overflow answer carries x-envoy-overloaded: true');
  }, { waitWaypoint: true });
});

file.test('L7 AuthorizationPolicy denies by path and by method', async (_t, mesh) => {
  await withConfig(mesh, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-deny, namespace: ${MESH_NS}}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  action: DENY
  rules:
    - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
    - to: [{operation: {methods: ["DELETE"]}}]
`, () => expectConsistent(mesh, [
    { name: 'GET /admin/users denied', request: { to: 'echo', path: '/admin/users' }, expect: { status: 403 } },
    { name: 'GET /admin denied', request: { to: 'echo', path: '/admin' }, expect: { status: 403 } },
    { name: 'DELETE /items denied', request: { to: 'echo', path: '/items', method: 'DELETE' }, expect: { status: 403 } },
    { name: 'GET /items allowed', request: { to: 'echo', path: '/items' }, expect: { status: 200 } },
    { name: 'POST /items allowed', request: { to: 'echo', path: '/items', method: 'POST' }, expect: { status: 200 } },
    { name: 'GET /administrator allowed (not /admin/*)', request: { to: 'echo', path: '/administrator' }, expect: { status: 200 } },
  ]));
});

/** An ES256 JWT signed with node:crypto (the waypoint verifies it against the inline JWKS). */
function signJwt(key: ReturnType<typeof generateKeyPairSync>['privateKey'], kid: string, claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'ES256', typ: 'JWT', kid })}.${b64(claims)}`;
  const sig = createSign('SHA256').update(input).sign({ key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

file.test('JWT required and claims matched', async (_t, mesh) => {
  const issuer = 'https://auth.ambit.test';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  const token = (claims: Record<string, unknown>, key = privateKey) => signJwt(key, 'k1', { iss: issuer, sub: 'user-1', iat: now, exp: now + 3600, ...claims });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  await withConfig(mesh, `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: echo-jwt, namespace: ${MESH_NS}}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  jwtRules:
    - issuer: ${issuer}
      jwks: '${JSON.stringify({ keys: [jwk] })}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-require-jwt, namespace: ${MESH_NS}}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  action: ALLOW
  rules:
    - from: [{source: {requestPrincipals: ["${issuer}/*"]}}]
      when: [{key: "request.auth.claims[group]", values: [beta]}]
`, () => expectConsistent(mesh, [
    { name: 'no token -> 403 (a principal is required)', request: { to: 'echo', path: '/' }, expect: { status: 403 } },
    { name: 'valid token with group=beta -> 200', request: { to: 'echo', path: '/', headers: bearer(token({ group: 'beta' })) }, expect: { status: 200, namespace: MESH_NS } },
    { name: 'valid token with group=alpha -> 403 (claim not matched)', request: { to: 'echo', path: '/', headers: bearer(token({ group: 'alpha' })) }, expect: { status: 403 } },
    { name: 'token signed by another key -> 401', request: { to: 'echo', path: '/', headers: bearer(token({ group: 'beta' }, other.privateKey)) }, expect: { status: 401 } },
    { name: 'expired token -> 401', request: { to: 'echo', path: '/', headers: bearer(token({ group: 'beta', iat: now - 7200, exp: now - 3600 })) }, expect: { status: 401 } },
  ]));
});
