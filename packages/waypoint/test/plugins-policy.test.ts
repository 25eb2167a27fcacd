import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '@ambit/api';
import { NS, startHarness, VIPS, vs, type Harness } from './harness.js';

// The sample plugin loaded by module path, the way AMBIT_WAYPOINT_PLUGINS loads plugins.
const SAMPLE = fileURLToPath(new URL('../src/plugins/sample-header-plugin.js', import.meta.url));

let h: Harness;
before(async () => { h = await startHarness({ env: { AMBIT_WAYPOINT_PLUGINS: SAMPLE } }); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;
const clear = (): void => { const names = [...h.app.configStore.objects().keys()]; if (names.length) h.applyConfig([], names); };

function authorizationPolicy(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: NS }, spec };
}

test('sample plugin (loaded from AMBIT_WAYPOINT_PLUGINS) adds request and response headers', async () => {
  clear();
  const r = await h.request(ECHO, { path: '/plugin' });
  assert.equal(r.status, 200);
  assert.equal(r.json().headers['x-ambit-plugin'], 'sample');
  assert.equal(r.headers['x-ambit-plugin'], 'sample');
  assert.equal(r.headers['x-ambit-request-id'], r.json().headers['x-request-id']);
});

test('sample plugin short-circuits a request with its own reply; nothing reaches the upstream', async () => {
  const seen = h.endpoints.reduce((n, e) => n + e.seen.length, 0);
  const r = await h.request(ECHO, { path: '/blocked', headers: { 'x-block-me': '1' } });
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-ambit-plugin'], 'sample');
  assert.match(r.body, /blocked by plugin for echo\.mesh\.svc\.cluster\.local/);
  assert.equal(h.endpoints.reduce((n, e) => n + e.seen.length, 0), seen);
});

test('L7 AuthorizationPolicy from policy/: DENY on a path answers 403 RBAC, other paths pass', async () => {
  clear();
  const rejected = h.applyConfig([authorizationPolicy('deny-admin', {
    targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
    action: 'DENY',
    rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
  })]);
  assert.deepEqual(rejected, []);
  assert.equal((await h.request(ECHO, { path: '/admin/users' })).status, 403);
  assert.equal((await h.request(ECHO, { path: '/public/../admin/users' })).status, 403, 'dot segments are normalized before policy');
  assert.equal((await h.request(ECHO, { path: '/public' })).status, 200);
  assert.equal((await h.request(`${VIPS.echoV1}:80`, { path: '/admin' })).status, 200, 'policy targets service echo only');
});

test('an invalid AuthorizationPolicy is rejected with the policy module\'s diagnostic; the last good one stays', async () => {
  const rejected = h.applyConfig([authorizationPolicy('deny-admin', { targetRefs: [{ kind: 'Service', group: '', name: 'echo' }], action: 'EXPLODE', rules: [{}] })]);
  assert.equal(rejected.length, 1);
  assert.match(rejected[0]!.message, /AuthorizationPolicy mesh\/deny-admin: spec\.action/);
  assert.equal((await h.request(ECHO, { path: '/admin' })).status, 403);
});

test('VirtualService fault injection from policy/: abort 100% answers with the configured status and flag FI', async () => {
  clear();
  const rejected = h.applyConfig([vs('fault', { hosts: ['echo'], http: [{ fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [{ destination: { host: 'echo' } }] }] })]);
  assert.deepEqual(rejected, []);
  const r = await h.request(ECHO, { path: '/fault' });
  assert.equal(r.status, 418);
  assert.match(r.body, /fault filter abort/);
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/fault').at(-1)!;
  assert.equal(line.response_flags, 'FI');
});

test('requests denied by AuthorizationPolicy (403) and RequestAuthentication (401) carry the destination service labels', async () => {
  clear();
  assert.deepEqual(h.applyConfig([
    authorizationPolicy('deny-admin', { targetRefs: [{ kind: 'Service', group: '', name: 'echo' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: NS },
      spec: { targetRefs: [{ kind: 'Service', group: '', name: 'echo' }], jwtRules: [{ issuer: 'issuer@example.test', jwks: JSON.stringify({ keys: [] }) }] } },
  ]), []);
  const labels = { destination_service_name: 'echo', destination_service_namespace: NS, destination_service: `echo.${NS}.svc.cluster.local`, destination_port: '80' };
  const denied = await h.metric('istio_requests_total', { ...labels, response_code: '403', response_flags: 'RBAC' });
  const unauthenticated = await h.metric('istio_requests_total', { ...labels, response_code: '401' });
  assert.equal((await h.request(ECHO, { path: '/admin/labels' })).status, 403);
  assert.equal((await h.request(ECHO, { path: '/jwt-labels', headers: { authorization: 'Bearer not.a.jwt' } })).status, 401);
  assert.equal(await h.metric('istio_requests_total', { ...labels, response_code: '403', response_flags: 'RBAC' }), denied + 1);
  assert.equal(await h.metric('istio_requests_total', { ...labels, response_code: '401' }), unauthenticated + 1);
  assert.equal(await h.metric('istio_requests_total', { destination_service_name: 'unknown', response_code: '403' }), 0);
});
