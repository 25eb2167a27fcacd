// The node agent end to end, as root, in network namespaces: real agent processes, real iptables capture, real
// CNI plugin, real HBONE between nodes. One testbed for the file (agents take a second to start); each test
// cleans up what it changes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoServer, waitFor } from '@ambit/e2e';
import { Testbed, bannerLocal, bannerPeer, exchange, type PodDef } from './testbed.js';

const ECHO_SVC = 'default/echo.default.svc.cluster.local';
const VIP = '10.96.0.10';

// node 1: sleep (captured client), echo-v1 (captured server), plain-1 (uncaptured)
// node 2: echo-v2 (captured server), other (captured client in namespace "other"), plain-2 (uncaptured)
const PODS: PodDef[] = [
  { node: 1, index: 2, name: 'sleep', namespace: 'default', serviceAccount: 'sleep', captured: true, app: 'sleep', version: 'v1' },
  { node: 1, index: 3, name: 'echo-v1', namespace: 'default', serviceAccount: 'echo', captured: true, app: 'echo', version: 'v1', services: { [ECHO_SVC]: { 80: 8080 } } },
  { node: 1, index: 4, name: 'plain-1', namespace: 'legacy', serviceAccount: 'plain', captured: false },
  { node: 2, index: 2, name: 'echo-v2', namespace: 'default', serviceAccount: 'echo', captured: true, app: 'echo', version: 'v2', services: { [ECHO_SVC]: { 80: 8080 } } },
  { node: 2, index: 3, name: 'other', namespace: 'other', serviceAccount: 'other', captured: true, app: 'other' },
  { node: 2, index: 4, name: 'plain-2', namespace: 'legacy', serviceAccount: 'plain', captured: false },
];
const SERVICES = [{ name: 'echo', namespace: 'default', hostname: 'echo.default.svc.cluster.local', vips: [`/${VIP}`], ports: { 80: 8080 } }];

let bed: Testbed;

before(async () => {
  bed = await Testbed.create(PODS, { nodes: 2, services: SERVICES });
  for (const name of ['echo-v1', 'echo-v2', 'plain-1', 'plain-2']) await startEchoServer(bed.topo, bed.pod(name), { port: 8080 });
  await bed.startAgent(1);
  await bed.startAgent(2);
  await bed.enrollAll();
});

after(async () => {
  await bed?.close();
});

function ip(name: string): string {
  return bed.pod(name).ip;
}

test('captured client to captured server on the same node', async () => {
  const r = await exchange(bed.connectFrom('sleep', ip('echo-v1'), 8080), 'hello same node');
  assert.equal(r.error, undefined);
  assert.equal(r.echo, 'hello same node');
  assert.equal(bannerPeer(r.banner), ip('sleep'), 'the server sees the client pod IP (source preserved)');
});

test('captured client to captured server across nodes, no plaintext on the node link', async () => {
  const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
  const cap = await bed.topo.capture(bed.topo.node(1), bed.topo.node(1).uplink, 'tcp');
  const r = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), `${marker} across nodes`);
  const captured = await cap.stop();
  assert.equal(r.error, undefined);
  assert.equal(r.echo, `${marker} across nodes`);
  assert.equal(bannerPeer(r.banner), ip('sleep'));
  assert.equal(captured.contains(marker), false, 'the marker crossed the node link in plaintext');
  const ports = new Set(captured.packets.filter((p) => p.src === ip('sleep') || p.dst === ip('sleep')).flatMap((p) => [p.srcPort, p.dstPort]));
  assert.ok(ports.has(15008), `HBONE port 15008 seen on the link (ports: ${[...ports].join(',')})`);
  assert.ok(!ports.has(8080), 'the app port never appears on the link');
});

test('captured client to uncaptured server passes through', async () => {
  const r = await exchange(bed.connectFrom('sleep', ip('plain-2'), 8080), 'to legacy');
  assert.equal(r.error, undefined);
  assert.equal(r.echo, 'to legacy');
  assert.equal(bannerPeer(r.banner), ip('sleep'));
});

test('uncaptured client to captured server: PERMISSIVE works, STRICT is refused', async () => {
  const ok = await exchange(bed.connectFrom('plain-2', ip('echo-v2'), 8080), 'plaintext in');
  assert.equal(ok.error, undefined);
  assert.equal(ok.echo, 'plaintext in');
  assert.equal(bannerPeer(ok.banner), ip('plain-2'));
  // PeerAuthentication STRICT as istiod converts it: a static DENY of plaintext bound to the workload.
  bed.setConfig({
    policies: [{ name: 'istio_converted_static_strict', namespace: 'istio-system', scope: 'WorkloadSelector', action: 'Deny', rules: [[[{ notPrincipals: [{ presence: true }] }]]] }],
    podPolicies: { 'echo-v2': ['istio-system/istio_converted_static_strict'] },
  });
  try {
    await waitFor(async () => (await exchange(bed.connectFrom('plain-2', ip('echo-v2'), 8080), 'strict?', 3000)).error !== undefined,
      { timeoutMs: 10_000, message: 'STRICT to refuse plaintext' });
    // mTLS from a captured client still works under STRICT
    const mtls = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), 'mtls under strict');
    assert.equal(mtls.echo, 'mtls under strict');
  } finally {
    bed.setConfig({ policies: [], podPolicies: {} });
  }
});

test('a service VIP spreads over 2 endpoints on 2 nodes', async () => {
  const seen = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const r = await exchange(bed.connectFrom('sleep', VIP, 80), `vip ${i}`);
    assert.equal(r.error, undefined, `request ${i}`);
    assert.equal(r.echo, `vip ${i}`);
    const local = bannerLocal(r.banner)!;
    seen.set(local, (seen.get(local) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), [ip('echo-v1'), ip('echo-v2')].sort(), `endpoints used: ${JSON.stringify([...seen])}`);
});

function metricLine(lines: string[], name: string, labels: Record<string, string>): string | undefined {
  return lines.find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
}

test('exact metric lines and access-log fields for a cross-node mTLS connection', async () => {
  const before1 = await bed.metrics(1);
  const opened = (lines: string[]) => Number(metricLine(lines, 'istio_tcp_connections_opened_total', { reporter: 'source', source_workload: 'sleep', destination_workload: 'echo' })?.split(' ').pop() ?? 0);
  const base = opened(before1);
  const r = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), 'metrics please');
  assert.equal(r.echo, 'metrics please');
  const banner = r.banner.length + 1;
  const agent1 = bed.agents.get(1)!;
  const agent2 = bed.agents.get(2)!;
  await waitFor(async () => opened(await bed.metrics(1)) === base + 1, { timeoutMs: 5000, message: 'source metrics' });
  const src = await bed.metrics(1);
  const labels = [
    'reporter="source"', 'source_workload="sleep"', 'source_canonical_service="sleep"', 'source_canonical_revision="v1"',
    'source_workload_namespace="default"', 'source_principal="spiffe://cluster.local/ns/default/sa/sleep"', 'source_app="sleep"',
    'source_version="v1"', 'source_cluster="Kubernetes"', 'destination_service="unknown"', 'destination_service_namespace="unknown"',
    'destination_service_name="unknown"', 'destination_workload="echo"', 'destination_canonical_service="echo"',
    'destination_canonical_revision="v2"', 'destination_workload_namespace="default"',
    'destination_principal="spiffe://cluster.local/ns/default/sa/echo"', 'destination_app="echo"', 'destination_version="v2"',
    'destination_cluster="Kubernetes"', 'request_protocol="tcp"', 'response_flags="-"', 'connection_security_policy="mutual_tls"',
  ].join(',');
  assert.ok(src.includes(`istio_tcp_connections_opened_total{${labels}} ${base + 1}`), `opened line missing:\n${src.filter((l) => l.startsWith('istio_tcp_connections_opened_total')).join('\n')}`);
  assert.ok(src.some((l) => l.startsWith(`istio_tcp_connections_closed_total{${labels}}`)));
  // destination side, reported by node 2's agent
  const dst = await bed.metrics(2);
  assert.ok(dst.some((l) => l.startsWith('istio_tcp_connections_opened_total{reporter="destination",source_workload="sleep"') && l.includes('connection_security_policy="mutual_tls"')));
  // one access line per connection on each side, with ztunnel's field names
  await waitFor(() => bed.accessLog(agent1).some((l) => l.msg === 'connection complete' && l['dst.hbone_addr'] === `${ip('echo-v2')}:8080`), { timeoutMs: 5000, message: 'source access line' });
  const line = bed.accessLog(agent1).filter((l) => l.msg === 'connection complete' && l['dst.hbone_addr'] === `${ip('echo-v2')}:8080`).pop()!;
  assert.equal(line['src.identity'], 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.equal(line['dst.addr'], `${ip('echo-v2')}:15008`);
  assert.equal(line['dst.workload'], 'echo-v2');
  assert.equal(line['dst.namespace'], 'default');
  assert.equal(line['dst.identity'], 'spiffe://cluster.local/ns/default/sa/echo');
  assert.equal(line.direction, 'outbound');
  assert.equal(line.bytes_sent, 'metrics please'.length);
  assert.equal(line.bytes_recv, banner + 'metrics please'.length);
  assert.match(String(line.duration), /^\d+ms$/);
  assert.match(String(line['src.addr']), new RegExp(`^${ip('sleep').replace(/\./g, '\\.')}:\\d+$`));
  await waitFor(() => bed.accessLog(agent2).some((l) => l.msg === 'connection complete' && l.direction === 'inbound' && l['src.identity'] === 'spiffe://cluster.local/ns/default/sa/sleep'), { timeoutMs: 5000, message: 'destination access line' });
});
