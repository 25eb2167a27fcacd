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
  // A live plaintext connection, opened under PERMISSIVE, is closed when STRICT arrives.
  const live = bed.connectFrom('plain-2', ip('echo-v2'), 8080);
  let liveClosed = false;
  live.on('error', () => {});
  live.on('close', () => { liveClosed = true; });
  live.resume();
  await new Promise<void>((r) => live.once('connect', () => r()));
  // PeerAuthentication STRICT as istiod converts it: a static DENY of plaintext bound to the workload.
  bed.setConfig({
    policies: [{ name: 'istio_converted_static_strict', namespace: 'istio-system', scope: 'WorkloadSelector', action: 'Deny', rules: [[[{ notPrincipals: [{ presence: true }] }]]] }],
    podPolicies: { 'echo-v2': ['istio-system/istio_converted_static_strict'] },
  });
  try {
    await waitFor(async () => (await exchange(bed.connectFrom('plain-2', ip('echo-v2'), 8080), 'strict?', 3000)).error !== undefined,
      { timeoutMs: 10_000, message: 'STRICT to refuse plaintext' });
    await waitFor(() => liveClosed, { timeoutMs: 10_000, message: 'the live plaintext connection opened under PERMISSIVE to be closed by STRICT' });
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
  const labels = [
    'reporter="source"', 'source_workload="sleep"', 'source_canonical_service="sleep"', 'source_canonical_revision="v1"',
    'source_workload_namespace="default"', 'source_principal="spiffe://cluster.local/ns/default/sa/sleep"', 'source_app="sleep"',
    'source_version="v1"', 'source_cluster="Kubernetes"', 'destination_service="unknown"', 'destination_service_namespace="unknown"',
    'destination_service_name="unknown"', 'destination_workload="echo"', 'destination_canonical_service="echo"',
    'destination_canonical_revision="v2"', 'destination_workload_namespace="default"',
    'destination_principal="spiffe://cluster.local/ns/default/sa/echo"', 'destination_app="echo"', 'destination_version="v2"',
    'destination_cluster="Kubernetes"', 'request_protocol="tcp"', 'response_flags="-"', 'connection_security_policy="mutual_tls"',
  ].join(',');
  const openedLine = (lines: string[]) => lines.find((l) => l.startsWith(`istio_tcp_connections_opened_total{${labels}} `));
  const opened = (lines: string[]) => Number(openedLine(lines)?.split(' ').pop() ?? 0);
  const base = opened(await bed.metrics(1));
  const r = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), 'metrics please');
  assert.equal(r.echo, 'metrics please');
  const banner = r.banner.length + 1;
  const agent1 = bed.agents.get(1)!;
  const agent2 = bed.agents.get(2)!;
  await waitFor(async () => opened(await bed.metrics(1)) === base + 1, { timeoutMs: 5000, message: 'source metrics' });
  const src = await bed.metrics(1);
  assert.ok(src.includes(`istio_tcp_connections_opened_total{${labels}} ${base + 1}`), `opened line missing:\n${src.filter((l) => l.startsWith('istio_tcp_connections_opened_total')).join('\n')}`);
  assert.ok(src.some((l) => l.startsWith(`istio_tcp_connections_closed_total{${labels}}`)));
  // destination side, reported by node 2's agent
  const dst = await bed.metrics(2);
  assert.ok(dst.some((l) => l.startsWith('istio_tcp_connections_opened_total{reporter="destination",source_workload="sleep"') && l.includes('connection_security_policy="mutual_tls"')));
  // one access line per connection on each side, with ztunnel's field names
  const ours = (l: Record<string, unknown>) => l.msg === 'connection complete' && l['dst.hbone_addr'] === `${ip('echo-v2')}:8080` && l.bytes_sent === 'metrics please'.length;
  await waitFor(() => bed.accessLog(agent1).some(ours), { timeoutMs: 5000, message: 'source access line' });
  const line = bed.accessLog(agent1).filter(ours).pop()!;
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

async function reaches(from: string, to: string, port = 8080): Promise<boolean> {
  const r = await exchange(bed.connectFrom(from, ip(to), port), 'knock', 5000);
  return r.echo === 'knock';
}

/** Applies policies bound to echo-v2 and waits until the agents have them (a probe decides). */
async function withPolicies(policies: unknown[], bound: string[], settled: () => Promise<boolean>, body: () => Promise<void>): Promise<void> {
  bed.setConfig({ policies, podPolicies: { 'echo-v2': bound } });
  try {
    await waitFor(settled, { timeoutMs: 10_000, message: 'the new policy to apply' });
    await body();
  } finally {
    bed.setConfig({ policies: [], podPolicies: {} });
    await waitFor(async () => (await reaches('other', 'echo-v2')) && (await reaches('sleep', 'echo-v2')), { timeoutMs: 10_000, message: 'policies to be lifted' });
  }
}

test('L4 AuthorizationPolicy: ALLOW by principal', async () => {
  const allowSleep = { name: 'allow-sleep', namespace: 'default', scope: 'WorkloadSelector', action: 'Allow', rules: [[[{ principals: ['cluster.local/ns/default/sa/sleep'] }]]] };
  await withPolicies([allowSleep], ['default/allow-sleep'], async () => !(await reaches('other', 'echo-v2')), async () => {
    assert.equal(await reaches('sleep', 'echo-v2'), true, 'sleep is allowed');
    assert.equal(await reaches('other', 'echo-v2'), false, 'other is not');
    assert.equal(await reaches('plain-2', 'echo-v2'), false, 'plaintext has no principal');
  });
});

test('L4 AuthorizationPolicy: DENY by namespace', async () => {
  const denyOther = { name: 'deny-other-ns', namespace: 'default', scope: 'WorkloadSelector', action: 'Deny', rules: [[[{ namespaces: ['other'] }]]] };
  await withPolicies([denyOther], ['default/deny-other-ns'], async () => !(await reaches('other', 'echo-v2')), async () => {
    assert.equal(await reaches('sleep', 'echo-v2'), true);
    assert.equal(await reaches('other', 'echo-v2'), false);
  });
  const line = bed.accessLog(bed.agents.get(2)!).filter((l) => l.direction === 'inbound' && String(l.reason ?? l.error ?? '').includes('deny-other-ns')).pop();
  assert.ok(line, 'a denial access line names the policy');
});

test('L4 AuthorizationPolicy: DENY by source IP and ALLOW by port', async () => {
  const denyIp = { name: 'deny-sleep-ip', namespace: 'default', scope: 'WorkloadSelector', action: 'Deny', rules: [[[{ sourceIps: [`${ip('sleep')}/32`] }]]] };
  await withPolicies([denyIp], ['default/deny-sleep-ip'], async () => !(await reaches('sleep', 'echo-v2')), async () => {
    assert.equal(await reaches('other', 'echo-v2'), true);
  });
  const allow9090 = { name: 'allow-9090', namespace: 'default', scope: 'WorkloadSelector', action: 'Allow', rules: [[[{ destinationPorts: [9090] }]]] };
  await withPolicies([allow9090], ['default/allow-9090'], async () => !(await reaches('sleep', 'echo-v2')) && !(await reaches('other', 'echo-v2')), async () => {
    assert.equal(await reaches('other', 'echo-v2', 8080), false, 'only port 9090 is allowed');
  });
});

test('a policy change closes a now-denied live connection', async () => {
  const sock = bed.connectFrom('other', ip('echo-v2'), 8080);
  sock.setEncoding('utf8');
  let data = '';
  let closed = false;
  let errorCode: string | undefined;
  sock.on('data', (c: string) => { data += c; });
  sock.on('error', (e: NodeJS.ErrnoException) => { errorCode = e.code; });
  sock.on('close', () => { closed = true; });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write('first\n');
  await waitFor(() => data.includes('first'), { timeoutMs: 5000, message: 'echo on the live connection' });
  const denyOther = { name: 'deny-other-live', namespace: 'default', scope: 'WorkloadSelector', action: 'Deny', rules: [[[{ namespaces: ['other'] }]]] };
  bed.setConfig({ policies: [denyOther], podPolicies: { 'echo-v2': ['default/deny-other-live'] } });
  try {
    await waitFor(() => closed, { timeoutMs: 10_000, message: 'the live connection to be closed by the new policy' });
    assert.equal(errorCode, 'ECONNRESET');
    await waitFor(() => bed.accessLog(bed.agents.get(2)!).some((l) => String(l.reason ?? '').includes('deny-other-live') || String(l.error ?? '').includes('deny-other-live')),
      { timeoutMs: 5000, message: 'an access line naming the policy' });
  } finally {
    bed.setConfig({ policies: [], podPolicies: {} });
    sock.destroy();
  }
});

test('the config dump lists a live connection on both agents (workloadState connections) and forgets it once closed', async () => {
  type Conn = { src: string; originalDst: string; actualDst: string; protocol: string };
  const connectionsOf = async (node: number, pod: string): Promise<{ inbound: Conn[]; outbound: Conn[] }> => {
    const dump = JSON.parse((await bed.httpGet(node, 15000, '/config_dump')).body) as { workloadState: Record<string, { name: string; connections?: { inbound: Conn[]; outbound: Conn[] } }> };
    const st = Object.values(dump.workloadState).find((w) => w.name === pod);
    assert.ok(st?.connections, `workloadState of ${pod} on node ${node} has connections: ${JSON.stringify(st)}`);
    return st.connections;
  };
  const sock = bed.connectFrom('sleep', ip('echo-v2'), 8080);
  sock.setEncoding('utf8');
  let data = '';
  sock.on('data', (c: string) => { data += c; });
  sock.on('error', () => undefined);
  try {
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('held\n');
    await waitFor(() => data.includes('held'), { timeoutMs: 5000, message: 'echo on the held connection' });
    const out = (await connectionsOf(1, 'sleep')).outbound;
    assert.deepEqual(out, [{ src: `${ip('sleep')}:${sock.localPort}`, originalDst: `${ip('echo-v2')}:8080`, actualDst: `${ip('echo-v2')}:15008`, protocol: 'HBONE' }]);
    const inbound = (await connectionsOf(2, 'echo-v2')).inbound;
    assert.equal(inbound.length, 1, JSON.stringify(inbound));
    assert.match(inbound[0]!.src, new RegExp(`^${ip('sleep').replace(/\./g, '\\.')}:\\d+$`));
    assert.deepEqual({ ...inbound[0], src: undefined }, { src: undefined, originalDst: `${ip('echo-v2')}:8080`, actualDst: `${ip('echo-v2')}:8080`, protocol: 'HBONE' });
  } finally {
    sock.destroy();
  }
  await waitFor(async () => (await connectionsOf(1, 'sleep')).outbound.length === 0 && (await connectionsOf(2, 'echo-v2')).inbound.length === 0,
    { timeoutMs: 5000, message: 'both agents to forget the closed connection' });
});

test('drifted redirection rules are found and repaired by the agent', async () => {
  const pod = bed.pod('sleep');
  // Someone flushes the pod's outbound capture chain: traffic would bypass the mesh.
  await bed.topo.execIn(pod, ['iptables', '-t', 'nat', '-F', 'ISTIO_OUTPUT'], { check: true });
  await waitFor(() => bed.allLogLines(bed.agents.get(1)!).some((l) => l.msg === 'redirection rules drifted; repaired' && l.pod === 'default/sleep'),
    { timeoutMs: 10_000, message: 'the agent to repair the rules' });
  const saved = await bed.topo.execIn(pod, ['iptables-save', '-t', 'nat'], { check: true });
  assert.match(saved.stdout, /-A ISTIO_OUTPUT .*REDIRECT --to-ports 15001/);
  // and traffic is captured again: the destination agent logs it as mTLS
  const r = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), 'after repair');
  assert.equal(r.echo, 'after repair');
  await waitFor(() => bed.accessLog(bed.agents.get(2)!).some((l) => l.direction === 'inbound' && l['src.identity'] === 'spiffe://cluster.local/ns/default/sa/sleep' && l.bytes_recv === 'after repair'.length),
    { timeoutMs: 5000, message: 'the repaired capture to carry traffic over HBONE' });
});

test('a second agent process takes over while the first drains: long-lived connection kept, new connections succeed throughout', async () => {
  // The long-lived connection: one echo round trip every 50 ms for the whole test.
  const long = bed.connectFrom('sleep', ip('echo-v2'), 8080);
  long.setEncoding('utf8');
  let got = '';
  let longClosed = false;
  long.on('data', (c: string) => { got += c; });
  long.on('error', () => {});
  long.on('close', () => { longClosed = true; });
  await new Promise<void>((r) => long.once('connect', () => r()));
  let pings = 0;
  const pingTimer = setInterval(() => { if (!longClosed) long.write(`ping-${++pings}\n`); }, 50);
  // New connections all along.
  let attempts = 0;
  const failures: string[] = [];
  let churn = true;
  const churnLoop = (async () => {
    while (churn && attempts < 2000) {
      attempts++;
      const to = attempts % 2 ? ip('echo-v2') : ip('echo-v1');
      const r = await exchange(bed.connectFrom('sleep', to, 8080), `new-${attempts}`, 5000);
      if (r.echo !== `new-${attempts}`) failures.push(`#${attempts} to ${to}: ${r.error ?? JSON.stringify(r.echo)}`);
    }
  })();
  const olds: Array<{ process: { running: boolean } }> = [];
  try {
    for (const node of [1, 2]) {
      const old = bed.agents.get(node)!;
      olds.push(old);
      const fresh = await bed.startAgent(node, { AMBIT_ADMIN_ADDRESS: '127.0.0.1:25000', AMBIT_METRICS_ADDRESS: '0.0.0.0:25020', AMBIT_READINESS_ADDRESS: '0.0.0.0:25021' });
      assert.ok(fresh.process.running);
      old.process.kill('SIGTERM');
      // Draining: the old agent keeps the long-lived connection and does not exit on a fixed deadline.
      const pingsAtTerm = pings;
      await waitFor(() => got.includes(`ping-${pingsAtTerm + 20}\n`), { timeoutMs: 10_000, message: `the long-lived connection to keep echoing after SIGTERM of agent ${node}` });
      if (node === 2) {
        assert.ok(old.process.running, 'the old destination agent still drains the long-lived connection');
      }
      // Only the new agent accepts now: a fresh connection shows up in its access log.
      const before = bed.accessLog(fresh).length;
      const r = await exchange(bed.connectFrom('sleep', ip('echo-v2'), 8080), `via-new-${node}`);
      assert.equal(r.echo, `via-new-${node}`);
      await waitFor(() => bed.accessLog(fresh).length > before, { timeoutMs: 5000, message: `agent ${node}b to serve new connections` });
    }
    assert.equal(longClosed, false);
    const lines = got.split('\n').filter((l) => l.startsWith('ping-'));
    assert.ok(lines.length >= pings - 2, `echoed ${lines.length} of ${pings} pings`);
  } finally {
    clearInterval(pingTimer);
    churn = false;
    await churnLoop;
    long.end();
  }
  assert.deepEqual(failures, [], `${failures.length} of ${attempts} new connections failed during the handover`);
  assert.ok(attempts > 10, `only ${attempts} connections tried`);
  // With the long-lived connection closed, the old agents finish draining and exit by themselves.
  await waitFor(() => longClosed, { timeoutMs: 5000, message: 'the long-lived connection to close' });
  await waitFor(() => olds.every((o) => !o.process.running), { timeoutMs: 10_000, message: 'the old agents to exit once drained' });
});
