import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, register as globalRegistry } from 'prom-client';
import { TCP_METRIC_LABELS } from '@ambit/api';
import { createConnectionMetrics, deriveTrafficLabels } from './metrics.js';
import { createMesh, seriesOf } from './test-helpers.js';

test('labels come out in Istio\'s order, exactly TCP_METRIC_LABELS when no locality is known', () => {
  const { sleep, echo, echoService } = createMesh();
  const labels = deriveTrafficLabels({
    reporter: 'destination', sourceWorkload: sleep, destinationWorkload: echo, destinationService: echoService,
    securityPolicy: 'mutual_tls',
  });
  assert.deepEqual(Object.keys(labels), [...TCP_METRIC_LABELS]);
});

test('source_principal comes only from the mTLS identity, never from the source workload', () => {
  const { sleep } = createMesh();
  const labels = deriveTrafficLabels({ reporter: 'destination', sourceWorkload: sleep, securityPolicy: 'unknown' });
  assert.equal(labels.source_principal, 'unknown');
  assert.equal(labels.source_workload, 'sleep');
});

test('destination principal: the verified identity wins over the workload\'s', () => {
  const { echo } = createMesh();
  const derived = deriveTrafficLabels({ reporter: 'source', destinationWorkload: echo, securityPolicy: 'mutual_tls' });
  assert.equal(derived.destination_principal, 'spiffe://cluster.local/ns/echo/sa/echo');
  const verified = deriveTrafficLabels({
    reporter: 'source', destinationWorkload: echo, destinationIdentity: 'spiffe://td/ns/echo/sa/other', securityPolicy: 'mutual_tls',
  });
  assert.equal(verified.destination_principal, 'spiffe://td/ns/echo/sa/other');
});

test('cross-zone connection: the four locality labels follow the standard set, unknown where missing', async () => {
  const { sleep, echo } = createMesh({
    sleep: { locality: { region: 'us-east1', zone: 'us-east1-b' } },
    echo: { locality: { region: 'us-east1' } },
  });
  const labels = deriveTrafficLabels({ reporter: 'source', sourceWorkload: sleep, destinationWorkload: echo, securityPolicy: 'mutual_tls' });
  assert.deepEqual(Object.keys(labels), [...TCP_METRIC_LABELS, 'source_region', 'source_zone', 'destination_region', 'destination_zone']);
  const registry = new Registry();
  const m = createConnectionMetrics(registry);
  m.opened.inc(labels);
  const [line] = await seriesOf(registry, 'istio_tcp_connections_opened_total');
  assert.ok(
    line!.endsWith(
      'connection_security_policy="mutual_tls",source_region="us-east1",source_zone="us-east1-b",' +
        'destination_region="us-east1",destination_zone="unknown"} 1',
    ),
    line,
  );
});

test('istio_build and the family headers, on the registry passed in and not the global one', async () => {
  const registry = new Registry();
  createConnectionMetrics(registry, { tag: '1.2.3' });
  const text = await registry.metrics();
  assert.ok(text.includes('# TYPE istio_tcp_connections_opened_total counter\n'));
  assert.ok(text.includes('# TYPE istio_tcp_sockets_open gauge\n'));
  assert.deepEqual(await seriesOf(registry, 'istio_build'), ['istio_build{component="ztunnel",tag="1.2.3"} 1']);
  assert.equal(globalRegistry.getSingleMetric('istio_tcp_connections_opened_total'), undefined);
  // A second process-level registry (e.g. another test) does not collide.
  createConnectionMetrics(new Registry());
});
