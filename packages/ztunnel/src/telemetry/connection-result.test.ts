import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createConnectionMetrics } from './metrics.js';
import { createConnectionTelemetry, type ConnectionOpenFacts } from './connection-result.js';
import { captureLogger, createMesh, seriesOf, type Mesh } from './test-helpers.js';

const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';
const ECHO_ID = 'spiffe://cluster.local/ns/echo/sa/echo';

function setup(level = 'info') {
  const registry = new Registry();
  const metrics = createConnectionMetrics(registry, { tag: '0.1.0' });
  const { logger, lines } = captureLogger(level);
  const clock = { t: 1000 };
  const telemetry = createConnectionTelemetry({ metrics, logger, now: () => clock.t });
  return { registry, metrics, telemetry, lines, clock, mesh: createMesh() };
}

/** sleep -> echo.echo.svc:80 as the destination agent sees it: HBONE on 15008, peer cert of sleep. */
const inbound = (m: Mesh): ConnectionOpenFacts => ({
  reporter: 'destination',
  source: { addr: '10.0.1.5:43210', workload: m.sleep, identity: SLEEP_ID },
  destination: { addr: '10.0.2.7:8080', hboneAddr: '10.0.2.7:8080', service: m.echoService, workload: m.echo },
  securityPolicy: 'mutual_tls',
});

/** The same flow as the source agent sees it: next hop echo's 15008, authority the pod's target port. */
const outbound = (m: Mesh): ConnectionOpenFacts => ({
  reporter: 'source',
  source: { addr: '10.0.1.5:43210', workload: m.sleep, identity: SLEEP_ID },
  destination: { addr: '10.0.2.7:15008', hboneAddr: '10.0.2.7:8080', service: m.echoService, workload: m.echo },
  securityPolicy: 'mutual_tls',
});

const INBOUND_LABELS =
  'reporter="destination",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="v1",' +
  'source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_app="sleep",' +
  'source_version="v1",source_cluster="Kubernetes",destination_service="echo.echo.svc.cluster.local",' +
  'destination_service_namespace="echo",destination_service_name="echo",destination_workload="echo",' +
  'destination_canonical_service="echo",destination_canonical_revision="v2",destination_workload_namespace="echo",' +
  'destination_principal="spiffe://cluster.local/ns/echo/sa/echo",destination_app="echo",destination_version="v2",' +
  'destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"';
const OUTBOUND_LABELS = INBOUND_LABELS.replace('reporter="destination"', 'reporter="source"');

test('finished inbound mTLS connection: exact exposition lines for all five TCP families', async () => {
  const { registry, telemetry, mesh } = setup();
  const conn = telemetry.open(inbound(mesh));
  // Inbound: this agent sent the response (2000 bytes) back to the source and received the request (100).
  conn.finish({ bytesSent: 2000, bytesRecv: 100 });

  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_opened_total'), [
    `istio_tcp_connections_opened_total{${INBOUND_LABELS}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_closed_total'), [
    `istio_tcp_connections_closed_total{${INBOUND_LABELS}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), [
    `istio_tcp_sent_bytes_total{${INBOUND_LABELS}} 2000`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_received_bytes_total'), [
    `istio_tcp_received_bytes_total{${INBOUND_LABELS}} 100`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_failed_total'), []);
});

test('finished outbound connection: exact exposition lines, bytes flipped to the destination view', async () => {
  const { registry, telemetry, mesh } = setup();
  const conn = telemetry.open(outbound(mesh));
  // Outbound: this agent sent the request (100 bytes) to echo and received the response (2000).
  conn.finish({ bytesSent: 100, bytesRecv: 2000 });

  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_opened_total'), [
    'istio_tcp_connections_opened_total{reporter="source",source_workload="sleep",source_canonical_service="sleep",' +
      'source_canonical_revision="v1",source_workload_namespace="default",' +
      'source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_app="sleep",source_version="v1",' +
      'source_cluster="Kubernetes",destination_service="echo.echo.svc.cluster.local",destination_service_namespace="echo",' +
      'destination_service_name="echo",destination_workload="echo",destination_canonical_service="echo",' +
      'destination_canonical_revision="v2",destination_workload_namespace="echo",' +
      'destination_principal="spiffe://cluster.local/ns/echo/sa/echo",destination_app="echo",destination_version="v2",' +
      'destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"} 1',
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_closed_total'), [
    `istio_tcp_connections_closed_total{${OUTBOUND_LABELS}} 1`,
  ]);
  // istio#32399: on the source reporter, received = what the destination received = the request bytes.
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_received_bytes_total'), [
    `istio_tcp_received_bytes_total{${OUTBOUND_LABELS}} 100`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), [
    `istio_tcp_sent_bytes_total{${OUTBOUND_LABELS}} 2000`,
  ]);
});

test('one flow reports the same byte counters on the source and destination reporters', async () => {
  const { registry, telemetry, mesh } = setup();
  telemetry.open(outbound(mesh)).finish({ bytesSent: 100, bytesRecv: 2000 });
  telemetry.open(inbound(mesh)).finish({ bytesSent: 2000, bytesRecv: 100 });
  const received = await seriesOf(registry, 'istio_tcp_received_bytes_total');
  const sent = await seriesOf(registry, 'istio_tcp_sent_bytes_total');
  assert.deepEqual(received.map((l) => l.split(' ').pop()), ['100', '100']);
  assert.deepEqual(sent.map((l) => l.split(' ').pop()), ['2000', '2000']);
});

test('access log un-flips: each reporter logs bytes from its own side', () => {
  const { telemetry, lines, mesh } = setup();
  telemetry.open(outbound(mesh)).finish({ bytesSent: 100, bytesRecv: 2000 });
  telemetry.open(inbound(mesh)).finish({ bytesSent: 2000, bytesRecv: 100 });
  assert.deepEqual(lines.map((l) => [l.direction, l.bytes_sent, l.bytes_recv]), [
    ['outbound', 100, 2000],
    ['inbound', 2000, 100],
  ]);
});

test('outbound connection complete: one access-log line with exactly ztunnel\'s fields', () => {
  const { telemetry, lines, clock, mesh } = setup();
  const conn = telemetry.open(outbound(mesh));
  clock.t += 250.7;
  conn.finish({ bytesSent: 100, bytesRecv: 2000 });
  assert.deepEqual(lines, [
    {
      level: 30,
      'src.addr': '10.0.1.5:43210',
      'src.workload': 'sleep-7d9c4b5f6-abcde',
      'src.namespace': 'default',
      'src.identity': SLEEP_ID,
      'src.cluster': 'Kubernetes',
      'dst.addr': '10.0.2.7:15008',
      'dst.hbone_addr': '10.0.2.7:8080',
      'dst.service': 'echo.echo.svc.cluster.local',
      'dst.workload': 'echo-5b4f8d7c9-xyz12',
      'dst.namespace': 'echo',
      'dst.identity': ECHO_ID,
      'dst.cluster': 'Kubernetes',
      direction: 'outbound',
      bytes_sent: 100,
      bytes_recv: 2000,
      duration: '250ms',
      msg: 'connection complete',
    },
  ]);
});

test('connection opened is logged at debug only when debug is on', () => {
  const quiet = setup('info');
  quiet.telemetry.open(inbound(quiet.mesh));
  assert.equal(quiet.lines.length, 0);
  const loud = setup('debug');
  loud.telemetry.open(inbound(loud.mesh));
  assert.equal(loud.lines.length, 1);
  assert.equal(loud.lines[0]!.msg, 'connection opened');
  assert.equal(loud.lines[0]!.level, 20);
  assert.equal(loud.lines[0]!.direction, 'inbound');
});

test('outbound connect failure: closed and failed carry response_flags CONNECT, log at error', async () => {
  const { registry, telemetry, lines, mesh } = setup();
  const conn = telemetry.open(outbound(mesh));
  conn.setResponseFlags('CONNECT');
  conn.finish({ bytesSent: 0, bytesRecv: 0, error: new Error('connect ECONNREFUSED 10.0.2.7:15008') });

  const failedLabels = OUTBOUND_LABELS.replace('response_flags="-"', 'response_flags="CONNECT"');
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_opened_total'), [
    `istio_tcp_connections_opened_total{${OUTBOUND_LABELS}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_closed_total'), [
    `istio_tcp_connections_closed_total{${failedLabels}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_failed_total'), [
    `istio_tcp_connections_failed_total{${failedLabels}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), []);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 50);
  assert.equal(lines[0]!.msg, 'connection complete');
  assert.equal(lines[0]!.error, 'connect ECONNREFUSED 10.0.2.7:15008');
});

test('inbound denied by policy: DENY flag, policy and reason in the log line', async () => {
  const { registry, telemetry, lines, mesh } = setup();
  const conn = telemetry.open(inbound(mesh));
  conn.deny({ policy: 'echo/deny-sleep', reason: 'denied by DENY policy "echo/deny-sleep"' });
  conn.finish();

  const denyLabels = INBOUND_LABELS.replace('response_flags="-"', 'response_flags="DENY"');
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_failed_total'), [
    `istio_tcp_connections_failed_total{${denyLabels}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_closed_total'), [
    `istio_tcp_connections_closed_total{${denyLabels}} 1`,
  ]);
  assert.equal(lines.length, 1);
  const l = lines[0]!;
  assert.equal(l.level, 50);
  assert.equal(l.policy, 'echo/deny-sleep');
  assert.equal(l.reason, 'denied by DENY policy "echo/deny-sleep"');
  assert.equal(l.error, 'connection denied: denied by DENY policy "echo/deny-sleep"');
  assert.equal(l.direction, 'inbound');
});

test('finish twice counts once and logs once', async () => {
  const { registry, telemetry, lines, mesh } = setup();
  const conn = telemetry.open(inbound(mesh));
  assert.equal(conn.finish({ bytesSent: 10, bytesRecv: 20 }), true);
  assert.equal(conn.finish({ bytesSent: 999, bytesRecv: 999, error: new Error('late') }), false);
  assert.equal(conn.finished, true);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_closed_total'), [
    `istio_tcp_connections_closed_total{${INBOUND_LABELS}} 1`,
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_failed_total'), []);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${INBOUND_LABELS}} 10`]);
  assert.equal(lines.length, 1);
});

test('bytes of a long-lived connection show at scrape time, and finish adds only the remainder', async () => {
  const { registry, telemetry, mesh } = setup();
  const conn = telemetry.open(inbound(mesh));
  conn.addSent(300);
  conn.addRecv(40);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${INBOUND_LABELS}} 300`]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_received_bytes_total'), [`istio_tcp_received_bytes_total{${INBOUND_LABELS}} 40`]);
  conn.addSent(200);
  conn.finish({ bytesSent: 700, bytesRecv: 40 });
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${INBOUND_LABELS}} 700`]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_received_bytes_total'), [`istio_tcp_received_bytes_total{${INBOUND_LABELS}} 40`]);
});

test('istio_tcp_sockets_open counts open connections per reporter', async () => {
  const { registry, telemetry, mesh } = setup();
  const a = telemetry.open(inbound(mesh));
  telemetry.open(inbound(mesh));
  telemetry.open(outbound(mesh));
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sockets_open'), [
    'istio_tcp_sockets_open{reporter="source"} 1',
    'istio_tcp_sockets_open{reporter="destination"} 2',
  ]);
  a.finish();
  a.finish();
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_sockets_open'), [
    'istio_tcp_sockets_open{reporter="source"} 1',
    'istio_tcp_sockets_open{reporter="destination"} 1',
  ]);
});

test('plaintext inbound from an unknown client: principal unknown, no identities in the log', async () => {
  const { registry, telemetry, lines, mesh } = setup();
  telemetry
    .open({
      reporter: 'destination',
      source: { addr: '192.168.9.9:5555' },
      destination: { addr: '10.0.2.7:8080', workload: mesh.echo },
      securityPolicy: 'unknown',
    })
    .finish({ bytesSent: 1, bytesRecv: 2 });
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_opened_total'), [
    'istio_tcp_connections_opened_total{reporter="destination",source_workload="unknown",source_canonical_service="unknown",' +
      'source_canonical_revision="unknown",source_workload_namespace="unknown",source_principal="unknown",source_app="unknown",' +
      'source_version="unknown",source_cluster="unknown",destination_service="unknown",destination_service_namespace="unknown",' +
      'destination_service_name="unknown",destination_workload="echo",destination_canonical_service="echo",' +
      'destination_canonical_revision="v2",destination_workload_namespace="echo",' +
      'destination_principal="spiffe://cluster.local/ns/echo/sa/echo",destination_app="echo",destination_version="v2",' +
      'destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",connection_security_policy="unknown"} 1',
  ]);
  assert.deepEqual(lines[0], {
    level: 30,
    'src.addr': '192.168.9.9:5555',
    'dst.addr': '10.0.2.7:8080',
    'dst.workload': 'echo-5b4f8d7c9-xyz12',
    'dst.namespace': 'echo',
    'dst.cluster': 'Kubernetes',
    direction: 'inbound',
    bytes_sent: 1,
    bytes_recv: 2,
    duration: '0ms',
    msg: 'connection complete',
  });
});

test('source known only from baggage (cross-network): labels from the baggage facts', async () => {
  const { registry, telemetry, mesh } = setup();
  telemetry
    .open({
      ...inbound(mesh),
      source: {
        addr: '10.9.0.1:40000',
        identity: SLEEP_ID,
        // k8s.cluster.name=east, k8s.namespace.name=default, k8s.deployment.name=sleep, service.name=sleep, service.version=v1
        workload: { clusterId: 'east', namespace: 'default', workloadName: 'sleep', canonicalName: 'sleep', canonicalRevision: 'v1' },
      },
    })
    .finish();
  const [line] = await seriesOf(registry, 'istio_tcp_connections_opened_total');
  assert.ok(line!.includes('source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="v1",source_workload_namespace="default"'));
  assert.ok(line!.includes('source_cluster="east"'));
});

test('early denial: one warn line with minimal fields, no metrics', async () => {
  const { registry, telemetry, lines } = setup();
  telemetry.earlyDeny({
    reporter: 'destination', srcAddr: '10.0.1.5:43210', dstAddr: '10.0.2.99:15008',
    error: new Error('unknown destination workload 10.0.2.99'),
  });
  assert.deepEqual(lines, [
    {
      level: 40,
      'src.addr': '10.0.1.5:43210',
      'dst.addr': '10.0.2.99:15008',
      direction: 'inbound',
      error: 'unknown destination workload 10.0.2.99',
      msg: 'connection failed',
    },
  ]);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_opened_total'), []);
  assert.deepEqual(await seriesOf(registry, 'istio_tcp_connections_failed_total'), []);
});
