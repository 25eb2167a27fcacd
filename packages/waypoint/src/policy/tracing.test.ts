import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '@ambit/api';
import {
  createZipkinExporter, customTagValues, decideSampling, extractTraceContext, injectTraceContext, newSpanId, newTraceId,
  resolveTracingConfig, startServerSpan, type Span,
} from './tracing.js';

const seq = (...v: number[]) => { let i = 0; return () => v[i++ % v.length]!; };
const T = '463ac35c9f6413ad48485a3953bb6124';
const S = 'a2fb4a1d1a96d312';

test('B3 multi headers: ids, parent, sampled and debug flags', () => {
  const r = extractTraceContext({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-parentspanid': '0020000000000001', 'x-b3-sampled': '1' });
  assert.deepEqual(r, { context: { traceId: T, spanId: S, parentSpanId: '0020000000000001', sampled: true }, sampled: true, format: 'b3' });
  assert.equal(extractTraceContext({ 'x-b3-traceid': '48485a3953bb6124', 'x-b3-spanid': S }).context?.traceId, '48485a3953bb6124', '64-bit trace id');
  assert.deepEqual(extractTraceContext({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }).context, { traceId: T, spanId: S, sampled: true, debug: true });
  assert.deepEqual(extractTraceContext({ 'x-b3-sampled': '0' }), { sampled: false }, 'decision without ids');
  assert.deepEqual(extractTraceContext({ 'x-b3-traceid': 'xyz', 'x-b3-spanid': S }), {}, 'invalid ids are ignored');
});

test('B3 single header, including deny-only and debug', () => {
  assert.deepEqual(extractTraceContext({ b3: `${T}-${S}-1-0020000000000001` }).context, { traceId: T, spanId: S, parentSpanId: '0020000000000001', sampled: true });
  assert.deepEqual(extractTraceContext({ b3: `${T}-${S}` }).context, { traceId: T, spanId: S });
  assert.deepEqual(extractTraceContext({ b3: `${T}-${S}-d` }).context, { traceId: T, spanId: S, sampled: true, debug: true });
  assert.deepEqual(extractTraceContext({ b3: '0' }), { sampled: false });
  assert.deepEqual(extractTraceContext({ b3: `${T}-${S}-x` }), {});
});

test('W3C traceparent and tracestate; B3 wins when both are present', () => {
  const tp = `00-${T}-${S}-01`;
  assert.deepEqual(extractTraceContext({ traceparent: tp, tracestate: 'congo=t61rcWkgMzE' }), {
    context: { traceId: T, spanId: S, sampled: true, tracestate: 'congo=t61rcWkgMzE' }, sampled: true, format: 'w3c',
  });
  assert.equal(extractTraceContext({ traceparent: `00-${T}-${S}-00` }).sampled, false);
  assert.deepEqual(extractTraceContext({ traceparent: `00-${'0'.repeat(32)}-${S}-01` }), {}, 'all-zero trace id is invalid');
  assert.deepEqual(extractTraceContext({ traceparent: `ff-${T}-${S}-01` }), {}, 'version ff is invalid');
  assert.equal(extractTraceContext({ traceparent: `01-${T}-${S}-01-future` }).format, 'w3c', 'future versions are read');
  const both = extractTraceContext({ traceparent: `00-${T}-${S}-00`, 'x-b3-traceid': '1'.repeat(32), 'x-b3-spanid': '2'.repeat(16), 'x-b3-sampled': '1' });
  assert.equal(both.format, 'b3');
});

test('sampling honours the incoming decision like Envoy, else draws against the percentage', () => {
  assert.equal(decideSampling({ sampled: false }, 100, () => 0), false);
  assert.equal(decideSampling({ sampled: true }, 0, () => 0.99), true);
  assert.equal(decideSampling({ sampled: false, debug: true }, 0, () => 0.99), true);
  assert.equal(decideSampling(undefined, 1, () => 0.009), true);
  assert.equal(decideSampling(undefined, 1, () => 0.011), false);
  assert.equal(decideSampling(undefined, 0, () => 0), false);
});

test('server span continues the trace with a new span id; injection writes B3 and traceparent', () => {
  const incoming = extractTraceContext({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1', tracestate: 'a=b' }).context;
  const span = startServerSpan(incoming, true, seq(0.5, 0.25));
  assert.deepEqual(span, { traceId: T, spanId: '8000000040000000', parentSpanId: S, sampled: true, tracestate: 'a=b' });
  assert.deepEqual(injectTraceContext(span), {
    'x-b3-traceid': T, 'x-b3-spanid': '8000000040000000', 'x-b3-parentspanid': S, 'x-b3-sampled': '1',
    traceparent: `00-${T}-8000000040000000-01`, tracestate: 'a=b',
  });
  const root = startServerSpan(undefined, false, seq(0.1));
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.equal(root.parentSpanId, undefined);
  assert.equal(injectTraceContext({ traceId: '48485a3953bb6124', spanId: S, sampled: false }).traceparent, `00-000000000000000048485a3953bb6124-${S}-00`);
  assert.equal(newSpanId(() => 0), '0000000000000001', 'never all zeros');
  assert.equal(newTraceId(() => 0).length, 32);
});

test('Telemetry: mesh default, namespace override, waypoint targetRef; custom tags merge; unknown provider is reported', () => {
  const tel = (name: string, namespace: string, spec: Record<string, unknown>): KubeObject => ({ kind: 'Telemetry', metadata: { name, namespace }, spec });
  const providers = { zipkin: { kind: 'zipkin' as const, url: 'http://zipkin.istio-system:9411/api/v2/spans' } };
  const objs = [
    tel('mesh-default', 'istio-system', { tracing: [{ providers: [{ name: 'zipkin' }], randomSamplingPercentage: 10, customTags: { cluster: { literal: { value: 'c1' } } } }] }),
    tel('ns', 'foo', { tracing: [{ randomSamplingPercentage: 50, customTags: { user: { header: { name: 'X-User', defaultValue: 'anon' } } } }] }),
    tel('wp', 'foo', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], tracing: [{ customTags: { pod: { environment: { name: 'POD_NAME' } } } }] }),
    tel('client-only', 'foo', { targetRefs: [{ kind: 'Gateway', name: 'waypoint' }], tracing: [{ match: { mode: 'CLIENT' }, randomSamplingPercentage: 0 }] }),
    tel('other-ns', 'bar', { tracing: [{ randomSamplingPercentage: 99 }] }),
    tel('selector', 'foo', { selector: { matchLabels: { app: 'x' } }, tracing: [{ randomSamplingPercentage: 77 }] }),
  ];
  const c = resolveTracingConfig(objs, { waypoint: { namespace: 'foo', name: 'waypoint' }, providers });
  assert.deepEqual(c.providers, ['zipkin']);
  assert.equal(c.provider, providers.zipkin);
  assert.equal(c.randomSamplingPercentage, 50);
  assert.deepEqual(c.customTags.map((t) => t.tag), ['cluster', 'user', 'pod']);
  assert.equal(c.disableSpanReporting, false);
  assert.deepEqual(customTagValues(c.customTags, { 'x-user': 'jason' }, { POD_NAME: 'waypoint-1' }), { cluster: 'c1', user: 'jason', pod: 'waypoint-1' });
  assert.deepEqual(customTagValues(c.customTags, {}), { cluster: 'c1', user: 'anon' });
  const none = resolveTracingConfig([], { waypoint: { namespace: 'foo', name: 'waypoint' }, providers });
  assert.deepEqual([none.providers, none.randomSamplingPercentage, none.disableSpanReporting], [[], 1, true]);
  const missing = resolveTracingConfig([tel('m', 'istio-system', { tracing: [{ providers: [{ name: 'jaeger' }] }] })], { waypoint: { namespace: 'foo', name: 'waypoint' }, providers });
  assert.equal(missing.disableSpanReporting, true);
  assert.match(missing.diagnostics[0]!.message, /tracing provider "jaeger" is not defined/);
  const bad = resolveTracingConfig([tel('b', 'foo', { tracing: [{ randomSamplingPercentage: 150 }] })], { waypoint: { namespace: 'foo', name: 'waypoint' }, providers });
  assert.deepEqual(bad.diagnostics.map((d) => `${d.object}: ${d.field}`), ['Telemetry foo/b: spec.tracing[0].randomSamplingPercentage']);
});

function span(i: number): Span {
  return { traceId: T, id: newSpanId(seq(i / 100 + 0.001)), name: `httpbin.foo.svc.cluster.local:8000/*`, kind: 'SERVER', timestamp: 1_700_000_000_000_000 + i, duration: 1500, localEndpoint: { serviceName: 'waypoint.foo' }, tags: { 'http.status_code': '200' } };
}

test('Zipkin exporter batches spans to a loopback collector and logs failures without throwing', async () => {
  const bodies: Span[][] = [];
  let status = 202;
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => {
      assert.equal(req.url, '/api/v2/spans');
      assert.equal(req.headers['content-type'], 'application/json');
      bodies.push(JSON.parse(data));
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/spans`;
  const warnings: object[] = [];
  const exp = createZipkinExporter({ url, batchSize: 2, maxQueue: 3, flushIntervalMs: 60_000, logger: { warn: (o) => warnings.push(o) } });
  try {
    exp.export(span(1));
    exp.export(span(2)); // full batch: sent without waiting for the timer
    exp.export(span(3));
    await exp.flush();
    assert.deepEqual(bodies.map((b) => b.length), [2, 1]);
    assert.equal(bodies[0]![0]!.name, 'httpbin.foo.svc.cluster.local:8000/*');
    assert.deepEqual(exp.stats(), { queued: 0, sent: 3, dropped: 0, failedPosts: 0 });
    status = 500;
    exp.export(span(4));
    await exp.flush();
    assert.equal(exp.stats().failedPosts, 1);
    assert.match(JSON.stringify(warnings[0]), /collector answered 500/);
  } finally {
    await exp.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  // Collector gone: the POST fails, is logged, nothing throws. The queue bound drops the oldest spans.
  const gone = createZipkinExporter({ url, batchSize: 100, maxQueue: 2, logger: { warn: (o) => warnings.push(o) } });
  gone.export(span(5)); gone.export(span(6)); gone.export(span(7));
  assert.deepEqual(gone.stats(), { queued: 2, sent: 0, dropped: 1, failedPosts: 0 });
  await gone.close();
  assert.deepEqual(gone.stats(), { queued: 0, sent: 0, dropped: 3, failedPosts: 1 });
});
