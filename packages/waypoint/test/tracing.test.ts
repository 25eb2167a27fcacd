// Telemetry tracing through the request path: the provider table from AMBIT_TRACING_PROVIDERS (Istio's
// meshConfig.extensionProviders), a Telemetry choosing it, B3 and W3C propagation to the backend, and Zipkin v2
// spans POSTed to a loopback collector.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '@ambit/api';
import { NS, startHarness, VIPS, waitFor, type Harness } from './harness.js';

interface ZipkinSpan { traceId: string; id: string; parentId?: string; name: string; kind: string; timestamp: number; duration: number; localEndpoint: { serviceName: string }; tags: Record<string, string> }

let h: Harness;
let collector: http.Server;
const spans: ZipkinSpan[] = [];
const posts: string[] = [];

before(async () => {
  collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c; });
    req.on('end', () => {
      posts.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      spans.push(...(JSON.parse(body) as ZipkinSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const port = (collector.address() as AddressInfo).port;
  h = await startHarness({
    env: { AMBIT_TRACING_PROVIDERS: JSON.stringify({ zipkin: { zipkin: { service: '127.0.0.1', port } } }) },
    environment: { CLUSTER_NAME: 'loopback' },
    spanFlushIntervalMs: 50,
  });
});
after(async () => {
  await h?.close();
  collector?.closeAllConnections();
  collector?.close();
});

const ECHO = `${VIPS.echo}:80`;
const T = '463ac35c9f6413ad48485a3953bb6124';
const S = 'a2fb4a1d1a96d312';
const telemetry = (tracing: Record<string, unknown>): KubeObject => ({
  apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'tracing', namespace: NS }, spec: { tracing: [tracing] },
});

test('no Telemetry and no default provider: tracing is off; trace headers pass through untouched, no span', async () => {
  const r = await h.request(ECHO, { path: '/untraced', headers: { traceparent: `00-${T}-${S}-01` } });
  const seen = r.json().headers;
  assert.equal(seen.traceparent, `00-${T}-${S}-01`);
  assert.equal(seen['x-b3-traceid'], undefined);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(spans.length, 0);
});

test('Telemetry with the zipkin provider at 100%: the backend gets B3 and traceparent of the waypoint span; the span goes to the collector', async () => {
  assert.deepEqual(h.applyConfig([telemetry({
    providers: [{ name: 'zipkin' }], randomSamplingPercentage: 100,
    customTags: { team: { literal: { value: 'mesh' } }, user: { header: { name: 'x-user', defaultValue: 'anonymous' } }, cluster: { environment: { name: 'CLUSTER_NAME' } } },
  })]), []);
  const r = await h.request(ECHO, { path: '/traced?q=1', headers: { traceparent: `00-${T}-${S}-01`, 'x-user': 'alice' } });
  assert.equal(r.status, 200);
  const seen = r.json().headers;
  assert.equal(seen['x-b3-traceid'], T, 'the trace continues');
  assert.equal(seen['x-b3-parentspanid'], S, 'the caller span is the parent');
  const spanId = seen['x-b3-spanid']!;
  assert.match(spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(spanId, S);
  assert.equal(seen['x-b3-sampled'], '1');
  assert.equal(seen.traceparent, `00-${T}-${spanId}-01`);
  await waitFor(() => spans.some((s) => s.id === spanId), 3000, 'the waypoint span at the collector');
  const span = spans.find((s) => s.id === spanId)!;
  assert.equal(span.traceId, T);
  assert.equal(span.parentId, S);
  assert.equal(span.kind, 'SERVER');
  assert.equal(span.name, `echo.${NS}.svc.cluster.local:80/*`);
  assert.equal(span.localEndpoint.serviceName, `waypoint.${NS}`);
  assert.ok(span.duration > 0 && span.timestamp > Date.UTC(2020, 0, 1) * 1000);
  assert.equal(span.tags['http.method'], 'GET');
  assert.equal(span.tags['http.url'], 'http://echo/traced?q=1');
  assert.equal(span.tags['http.status_code'], '200');
  assert.equal(span.tags.upstream_cluster, `outbound|80||echo.${NS}.svc.cluster.local`);
  assert.equal(span.tags['guid:x-request-id'], seen['x-request-id']);
  assert.equal(span.tags.team, 'mesh');
  assert.equal(span.tags.user, 'alice');
  assert.equal(span.tags.cluster, 'loopback');
  assert.match(posts[0]!, /^POST \/api\/v2\/spans application\/json$/);
});

test('B3 in, not sampled (x-b3-sampled: 0): the decision is honoured, propagated, and no span is reported', async () => {
  const before = spans.length;
  const r = await h.request(ECHO, { path: '/not-sampled', headers: { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0' } });
  const seen = r.json().headers;
  assert.equal(seen['x-b3-traceid'], T);
  assert.equal(seen['x-b3-sampled'], '0');
  assert.equal(seen.traceparent, `00-${T}-${seen['x-b3-spanid']}-00`);
  // A sampled request after it is exported: the unsampled one would have been in the same or an earlier batch.
  const marker = await h.request(ECHO, { path: '/sampled-marker' });
  const markerSpan = marker.json().headers['x-b3-spanid']!;
  await waitFor(() => spans.some((s) => s.id === markerSpan), 3000, 'the marker span');
  assert.equal(spans.slice(before).filter((s) => s.tags['http.url']?.includes('/not-sampled')).length, 0);
});

test('no incoming context: a new trace starts; a local reply (404 NR) gets a span too', async () => {
  const r = await h.request(ECHO, { path: '/fresh' });
  const seen = r.json().headers;
  assert.match(seen['x-b3-traceid']!, /^[0-9a-f]{32}$/);
  assert.equal(seen['x-b3-parentspanid'], undefined);
  const unknown = await h.request('10.96.9.9:80', { path: '/nowhere' });
  assert.equal(unknown.status, 404);
  await waitFor(() => spans.some((s) => s.tags['http.url'] === 'http://echo/nowhere'), 3000, 'the span of the 404');
  const span = spans.find((s) => s.tags['http.url'] === 'http://echo/nowhere')!;
  assert.equal(span.tags['http.status_code'], '404');
  assert.equal(span.tags.response_flags, 'NR');
  assert.equal(span.parentId, undefined);
});

test('randomSamplingPercentage 0: headers still propagate (sampled 0), nothing is reported', async () => {
  assert.deepEqual(h.applyConfig([telemetry({ providers: [{ name: 'zipkin' }], randomSamplingPercentage: 0 })]), []);
  const before = spans.length;
  const r = await h.request(ECHO, { path: '/zero' });
  assert.equal(r.json().headers['x-b3-sampled'], '0');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(spans.length, before);
});
