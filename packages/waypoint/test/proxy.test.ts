import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { KubeObject } from '@ambit/api';
import { echoParent, httpRoute, NS, startHarness, VIPS, vs, waitFor, type Harness } from './harness.js';

let h: Harness;
before(async () => { h = await startHarness(); });
after(async () => { await h?.close(); });

const ECHO = `${VIPS.echo}:80`;
const clear = (): void => { const names = [...h.app.configStore.objects().keys()]; if (names.length) h.applyConfig([], names); };

function rawExchange(authority: string, payload: string, until: (text: string) => boolean): Promise<string> {
  return h.tunnel(authority).then((t) => new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => resolve(text), 5000);
    t.on('data', (c: Buffer) => { text += c; if (until(text)) { clearTimeout(timer); t.end(); resolve(text); } });
    t.on('end', () => { clearTimeout(timer); resolve(text); });
    t.on('error', reject);
    t.write(payload);
  }));
}

test('HTTP/1.1 keep-alive and pipelining on one tunnel answer in order', async () => {
  clear();
  const text = await rawExchange(ECHO, 'GET /one HTTP/1.1\r\nhost: echo\r\n\r\nGET /two HTTP/1.1\r\nhost: echo\r\n\r\nGET /three HTTP/1.1\r\nhost: echo\r\n\r\n',
    (t) => (t.match(/HTTP\/1\.1 200/g) ?? []).length === 3 && t.includes('"/three"'));
  const paths = [...text.matchAll(/"path":"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(paths, ['/one', '/two', '/three']);
});

test('malformed HTTP gets 400 and the tunnel closes; oversized headers get 431', async () => {
  const bad = await rawExchange(ECHO, 'GET /x HTTP/1.1\r\nhost echo\r\n\r\n', (t) => t.includes('\r\n\r\n'));
  assert.match(bad, /^HTTP\/1\.1 400 /);
  const big = await rawExchange(ECHO, `GET /x HTTP/1.1\r\nhost: echo\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`, (t) => t.includes('\r\n\r\n'));
  assert.match(big, /^HTTP\/1\.1 431 /);
  // The waypoint still serves.
  assert.equal((await h.request(ECHO)).status, 200);
});

test('h2c prior knowledge and gRPC pass through with trailers', async () => {
  clear();
  const session = await h.h2(`${VIPS.echo}:81`);
  try {
    const get = session.request({ ':path': '/h2', ':method': 'GET' });
    let body = '';
    get.on('data', (c: Buffer) => { body += c; });
    const responded = new Promise<http2.IncomingHttpHeaders>((r) => get.once('response', r));
    const ended = new Promise((r) => get.once('end', r));
    const headers = await responded;
    await ended;
    assert.equal(headers[':status'], 200);
    assert.equal(JSON.parse(body).path, '/h2');
    const grpc = session.request({ ':path': '/echo.Echo/Say', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' });
    grpc.end(Buffer.from([0, 0, 0, 0, 2, 1, 2]));
    let bytes = 0;
    grpc.on('data', (c: Buffer) => { bytes += c.length; });
    const gotTrailers = new Promise<http2.IncomingHttpHeaders>((r) => grpc.once('trailers', r));
    const closed = new Promise((r) => grpc.once('close', r));
    const trailers = await gotTrailers;
    await closed;
    assert.equal(trailers['grpc-status'], '0');
    assert.equal(bytes, 7);
  } finally {
    session.close();
  }
  await waitFor(() => h.logs.some((l) => l.msg === 'request complete' && l.grpc_status === '0'), 2000, 'grpc access line');
});

/** The Service view the controller forwards for ports declared opaque (waypointServiceView). */
const declaredTcp = (name: string, port: { name?: string; appProtocol?: string }): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { ports: [{ port: 9000, ...port }] } });

test('opaque TCP passes through: a port declared tcp (by appProtocol or by name) lets the server speak first', async () => {
  clear();
  assert.deepEqual(h.applyConfig([declaredTcp('echo-v1', { appProtocol: 'tcp' }), declaredTcp('echo-v2', { name: 'mysql-main' })]), []);
  const text = await rawExchange(`${VIPS.echoV1}:9000`, '', (t) => t.includes('hello from'));
  assert.match(text, /hello from echo-v1-0/);
  const echoed = await rawExchange(`${VIPS.echoV2}:9000`, 'ping\n', (t) => t.includes('ping'));
  assert.match(echoed, /hello from echo-v2-0\nping/);
  clear();
});

test('an undeclared port waits for the client (Istio\'s protocolDetectionTimeout 0s): a client silent for 300 ms still gets HTTP routing', async () => {
  clear();
  const t = await h.tunnel(ECHO);
  const text = await new Promise<string>((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => resolve(got), 5000);
    t.on('data', (c: Buffer) => { got += c; if (got.includes('"/late"')) { clearTimeout(timer); t.end(); resolve(got); } });
    t.on('error', reject);
    setTimeout(() => t.write('GET /late HTTP/1.1\r\nhost: echo\r\n\r\n'), 300);
  });
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /"path":"\/late"/);
  await waitFor(() => h.logs.some((l) => l.msg === 'request complete' && l.path === '/late'), 2000, 'the access line of /late');
});

test('a client that never speaks is closed at the idle timeout, not held forever', async () => {
  const quiet = await startHarness({ env: { AMBIT_HTTP_IDLE_TIMEOUT_MS: '300' } });
  try {
    const t = await quiet.tunnel(ECHO);
    const started = Date.now();
    const ended = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the silent tunnel was still open after 5 s')), 5000);
      t.on('close', () => { clearTimeout(timer); resolve(Date.now() - started); });
      t.on('error', () => undefined);
      t.resume();
    });
    assert.ok(ended >= 250, `closed after ${ended} ms, before the idle timeout`);
  } finally {
    await quiet.close();
  }
});

test('mirror: the mirror destination gets a copy with -shadow host, the client gets the primary response', async () => {
  clear();
  h.applyConfig([vs('mirror', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v1' } }], mirror: { host: 'echo-v2' }, mirrorPercentage: { value: 100 } }] })]);
  const before = h.endpoints[1]!.seen.length;
  const r = await h.request(ECHO, { path: '/mirrored', method: 'POST', body: 'payload' });
  assert.equal(r.json().pod, 'echo-v1-0');
  await waitFor(() => h.endpoints[1]!.seen.length > before, 3000, 'mirrored request');
  const m = h.endpoints[1]!.seen.at(-1)!;
  assert.equal(m.path, '/mirrored');
  assert.equal(m.body, 'payload');
  assert.match(String(m.headers.host), /-shadow$/);
});

test('retries: 503 is retried by default, HTTPRoute retry codes are honoured, exhausted retries surface the code', async () => {
  clear();
  const v1 = h.endpoints[0]!;
  v1.failNext.push(503);
  const r = await h.request(`${VIPS.echoV1}:80`, { path: '/retry-default' });
  assert.equal(r.status, 200);
  assert.equal(r.json().headers['x-envoy-attempt-count'], '2');
  h.applyConfig([httpRoute('retry', { parentRefs: [{ group: '', kind: 'Service', name: 'echo-v1', port: 80 }], rules: [{ backendRefs: [{ name: 'echo-v1', port: 80 }], retry: { codes: [500], attempts: 3, backoff: '1ms' } }] })]);
  v1.failNext.push(500, 500);
  assert.equal((await h.request(`${VIPS.echoV1}:80`, { path: '/retry-500' })).status, 200);
  v1.failNext.push(503);
  assert.equal((await h.request(`${VIPS.echoV1}:80`, { path: '/no-retry-503' })).status, 503, '503 is not in codes');
  v1.failNext.push(500, 500, 500, 500);
  assert.equal((await h.request(`${VIPS.echoV1}:80`, { path: '/exhausted' })).status, 500);
  const line = h.logs.filter((l) => l.msg === 'request complete' && l.path === '/exhausted').at(-1)!;
  assert.equal(line.attempts, 4);
  assert.equal(line.response_flags, 'URX');
});

test('timeouts: request timeout answers 504 UT; 0s disables it', async () => {
  clear();
  h.applyConfig([httpRoute('timeout', { parentRefs: [echoParent], rules: [
    { matches: [{ path: { type: 'PathPrefix', value: '/slow' } }], backendRefs: [{ name: 'echo-v1', port: 80 }], timeouts: { request: '200ms' } },
    { matches: [{ path: { type: 'PathPrefix', value: '/disabled' } }], backendRefs: [{ name: 'echo-v1', port: 80 }], timeouts: { request: '0s' } },
  ] })]);
  const slow = await h.request(ECHO, { path: '/slow?delay=600' });
  assert.equal(slow.status, 504);
  assert.equal(h.logs.filter((l) => l.msg === 'request complete' && String(l.path).startsWith('/slow')).at(-1)!.response_flags, 'UT');
  assert.equal((await h.request(ECHO, { path: '/disabled?delay=300' })).status, 200);
});

test('a configuration object that fails to compile is rejected naming the field; the last good version stays', async () => {
  clear();
  assert.deepEqual(h.applyConfig([vs('reviews', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v2' } }] }] })]), []);
  assert.equal((await h.request(ECHO)).json().pod, 'echo-v2-0');
  const rejected = h.applyConfig([vs('reviews', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v1' }, weight: 150 }, { destination: { host: 'echo-v2' }, weight: 30 }] }] })]);
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.name, 'VirtualService/mesh/reviews');
  assert.equal(rejected[0]!.message, 'VirtualService mesh/reviews: spec.http[0].route[0].weight: must be an integer 0..100, got 150');
  for (let i = 0; i < 3; i++) assert.equal((await h.request(ECHO)).json().pod, 'echo-v2-0');
  const badRegex = h.applyConfig([httpRoute('bad', { parentRefs: [echoParent], rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/(unclosed' } }], backendRefs: [{ name: 'echo-v1', port: 80 }] }] })]);
  assert.match(badRegex[0]!.message, /^HTTPRoute mesh\/bad: spec\.rules\[0\]\.matches\[0\]\.path\.value: invalid RE2 regular expression/);
});

test('metrics: istio_requests_total with Istio labels and reporter="waypoint"', async () => {
  clear();
  const find = (text: string): string | undefined => text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('destination_service="echo-v2.mesh.svc.cluster.local"') && l.includes('response_code="200"'));
  const countOf = (l: string | undefined): number => (l ? Number(l.split(' ').at(-1)) : 0);
  const before = countOf(find(await h.registry.metrics()));
  await h.request(`${VIPS.echoV2}:80`, { path: '/metrics-probe' });
  const text = await h.registry.metrics();
  const line = find(text);
  assert.ok(line, text.split('\n').filter((l) => l.startsWith('istio_requests_total')).join('\n'));
  assert.equal(countOf(line), before + 1);
  assert.equal(line.slice(0, line.lastIndexOf(' ')), 'istio_requests_total{reporter="waypoint",source_workload="client",source_canonical_service="client",source_canonical_revision="v1",source_workload_namespace="mesh",source_principal="spiffe://cluster.local/ns/mesh/sa/client",source_app="client",source_version="v1",source_cluster="Kubernetes",destination_service="echo-v2.mesh.svc.cluster.local",destination_service_namespace="mesh",destination_service_name="echo-v2",destination_workload="echo-v2",destination_canonical_service="echo",destination_canonical_revision="v2",destination_workload_namespace="mesh",destination_principal="spiffe://cluster.local/ns/mesh/sa/echo-v2",destination_app="echo",destination_version="v2",destination_cluster="Kubernetes",destination_port="80",request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"}');
  assert.match(text, /istio_request_duration_milliseconds_bucket\{le="0.5",reporter="waypoint"/);
  assert.match(text, /istio_request_bytes_bucket\{le="1",reporter="waypoint"/);
  assert.match(text, /istio_response_bytes_sum\{reporter="waypoint"/);
});
