// The whole cluster-in-a-box with nodes: real control plane, our kubelets in netns nodes, the real kube-proxy
// (iptables mode) in every node and the real CoreDNS behind kube-dns 10.96.0.10. A client pod resolves a Service
// by name and reaches its replicas on other nodes through the ClusterIP; teardown leaves nothing behind, also
// when a test fails midway. Root only; needs the Kubernetes binaries (scripts/install-k8s-binaries.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot, requireTools } from '../root.js';
import { isProcessAlive, listNetns } from '../netns.js';
import { waitFor } from '../wait.js';
import { startCluster, type Cluster, type KubernetesObject } from './cluster.js';

const NS = 'svc-e2e';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: ${NS}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-1, node-2]}]}]
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: echo}}}
      containers:
        - name: echo
          image: ambit/echo:latest
          ports: [{containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${NS}}
spec:
  selector: {app: echo}
  ports: [{name: tcp, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-3}
  containers: [{name: c, image: registry.k8s.io/pause}]
---
apiVersion: v1
kind: Pod
metadata: {name: dns-check, namespace: ${NS}}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers:
    - name: c
      image: busybox
      command: [sh, -c, 'for i in $(seq 1 120); do getent hosts echo && exit 0; sleep 0.5; done; cat /etc/resolv.conf; exit 1']
`;

// One exchange with the Service by its short name through the system resolver (the pod's resolv.conf).
const CLIENT = `const dns=require('dns').promises,net=require('net');
(async()=>{const {address}=await dns.lookup(process.argv[1],{family:4});
const s=net.connect(80,address);let out='';s.setEncoding('utf8');s.on('data',(d)=>out+=d);
s.on('connect',()=>s.end('hello-via-service\\n'));
await new Promise((res,rej)=>{s.on('close',res);s.on('error',rej);setTimeout(()=>rej(new Error('timeout')),3000).unref();});
console.log(JSON.stringify({address,out}));})().catch((e)=>{console.error(e.message);process.exit(1);});`;

interface Footprint {
  prefix: string;
  pids: number[];
  dirs: string[];
}

function footprint(c: Cluster): Footprint {
  const pool = c.nodePool!;
  const pids = [
    ...c.controlPlane.processes.map((p) => p.pid),
    ...[...(c.services?.processes.values() ?? [])].map((p) => p.pid),
    ...pool.kubelets.flatMap((k) => listWorkersPids(k)),
  ];
  return { prefix: pool.topology.prefix, pids, dirs: [c.controlPlane.dir, pool.dir] };
}

// Pod PIDs are read through the pods the kubelets report, by uid.
const podUids: string[] = [];
function listWorkersPids(k: NonNullable<Cluster['nodePool']>['kubelets'][number]): number[] {
  return podUids.flatMap((uid) => k.worker(uid)?.pids() ?? []);
}

async function rememberPods(c: Cluster): Promise<void> {
  const list = await c.client.find<{ items: KubernetesObject[] }>(`/api/v1/namespaces/${NS}/pods`);
  for (const p of list?.items ?? []) podUids.push((p.metadata as { uid: string }).uid);
}

async function assertNothingLeft(f: Footprint): Promise<void> {
  await waitFor(() => f.pids.every((pid) => !isProcessAlive(pid)), { timeoutMs: 10_000, message: `processes ${f.pids.join(',')} gone` });
  assert.deepEqual(listNetns().filter((n) => n.startsWith(f.prefix)), [], 'no netns left');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(f.prefix) || l.includes('resolv-'));
  assert.deepEqual(mounts, [], 'no mount left');
  for (const d of f.dirs) assert.equal(existsSync(d), false, `${d} removed`);
}

async function readyEcho(c: Cluster): Promise<{ ip: string; node: string }[]> {
  return waitFor(async () => {
    const list = await c.client.find<{ items: { metadata: { labels?: Record<string, string> }; spec: { nodeName: string }; status: { podIP?: string; conditions?: { type: string; status: string }[] } }[] }>(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Decho`);
    const ready = (list?.items ?? []).filter((p) => p.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
    return ready.length === 2 ? ready.map((p) => ({ ip: p.status.podIP!, node: p.spec.nodeName })) : undefined;
  }, { timeoutMs: 60_000, message: '2 ready echo replicas' });
}

test('A Deployment of 2 echo replicas behind a Service answers a client pod on another node via the Service name', async () => {
  requireRoot();
  requireTools(['ip', 'nsenter', 'unshare', 'iptables']);
  const c = await startCluster({ nodes: 3 });
  let f: Footprint | undefined;
  try {
    await c.apply(MANIFEST);
    const echo = await readyEcho(c);
    assert.deepEqual(echo.map((e) => e.node).sort(), ['node-1', 'node-2']);
    const client = await c.waitFor<{ status: { podIP?: string; phase?: string } } & KubernetesObject>(
      { apiVersion: 'v1', kind: 'Pod', name: 'client', namespace: NS },
      (p) => p.status?.phase === 'Running' && !!p.status.podIP,
      { timeoutMs: 30_000, description: 'client running' },
    );
    const svc = await c.get<{ spec: { clusterIP: string } } & KubernetesObject>({ apiVersion: 'v1', kind: 'Service', name: 'echo', namespace: NS });
    const clusterIP = svc!.spec.clusterIP;
    // kube-proxy programs the Service's endpoints on node 3 once the slice has both ready replicas.
    await waitFor(async () => {
      const r = await c.nodePool!.topology.execIn(c.nodePool!.topology.node(3).netns, ['iptables-save', '-t', 'nat']);
      return echo.every((e) => r.stdout.includes(`${e.ip}:8080`));
    }, { timeoutMs: 30_000, message: 'both echo endpoints programmed on node-3' });
    // name -> CoreDNS (via 10.96.0.10) -> ClusterIP -> kube-proxy DNAT on node-3 -> replica on node-1 or node-2.
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const r = await c.exec({ namespace: NS, name: 'client' }, [process.execPath, '-e', CLIENT, 'echo'], { timeoutMs: 10_000 });
      assert.equal(r.code, 0, r.stderr);
      const { address, out } = JSON.parse(r.stdout.trim()) as { address: string; out: string };
      assert.equal(address, clusterIP, 'the name resolves to the ClusterIP');
      const m = /^AMBIT-ECHO peer=([\d.]+):\d+ local=([\d.]+):8080\nhello-via-service\n$/.exec(out);
      assert.ok(m, `banner then byte-exact echo, got ${JSON.stringify(out)}`);
      assert.equal(m[1], client.status.podIP, 'the replica sees the client pod IP (no SNAT)');
      assert.ok(echo.some((e) => e.ip === m[2]), `answered by a replica (${m[2]})`);
      seen.add(m[2]!);
    }
    assert.deepEqual([...seen].sort(), echo.map((e) => e.ip).sort(), 'both replicas, on the other nodes, answered through the Service');
    // The fully qualified name resolves too.
    const fq = await c.exec({ namespace: NS, name: 'client' }, [process.execPath, '-e', CLIENT, `echo.${NS}.svc.cluster.local`], { timeoutMs: 10_000 });
    assert.equal(fq.code, 0, fq.stderr);
    // In-cluster clients (the controller, the agents) reach the apiserver at the kubernetes Service 10.96.0.1:443:
    // kube-proxy DNATs it to 127.0.0.1:<port> on the node (the forwarder), which needs route_localnet in the node.
    const api = await c.exec({ namespace: NS, name: 'client' }, ['curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', 'https://10.96.0.1:443/version'], { timeoutMs: 10_000 });
    assert.equal(api.stdout.trim(), '200', `the apiserver answers a pod on its Service IP (/version is public): ${api.stdout} ${api.stderr}`);
    // The pod's own processes (not only exec) resolve Service names: the kubelet gives them the cluster's resolv.conf.
    await c.waitFor<{ status?: { phase?: string } } & KubernetesObject>(
      { apiVersion: 'v1', kind: 'Pod', name: 'dns-check', namespace: NS },
      (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed',
      { timeoutMs: 90_000, description: 'dns-check finished' },
    ).then((p) => assert.equal(p.status?.phase, 'Succeeded', 'a container resolves the short Service name through cluster DNS'));
    await rememberPods(c);
    f = footprint(c);
    // A failing test's artifacts: control-plane logs, pod logs per node, kube-proxy and CoreDNS logs.
    const artifacts = mkdtempSync(join(tmpdir(), 'ambit-cluster-logs-'));
    try {
      const files = c.collectLogs(artifacts);
      assert.ok(files.some((x) => x.endsWith('node-3-pods')) && files.some((x) => x.endsWith('cluster-services')), files.join(', '));
      assert.match(readFileSync(join(artifacts, 'cluster-services', 'kube-proxy-node-3.log'), 'utf8'), /SyncProxyRules complete/);
    } finally {
      rmSync(artifacts, { recursive: true, force: true });
    }
  } finally {
    await c.stop();
  }
  await assertNothingLeft(f!);
});

test('the whole cluster tears down with no namespace, process or mount left behind, also when a test fails midway', async () => {
  requireRoot();
  requireTools(['ip', 'nsenter', 'unshare', 'iptables']);
  podUids.length = 0;
  let f: Footprint | undefined;
  // A test body that fails midway, with pods running and an exec'd process still inside a pod's mount namespace.
  const body = async (c: Cluster) => {
    await c.apply(MANIFEST);
    await readyEcho(c);
    await c.waitFor({ apiVersion: 'v1', kind: 'Pod', name: 'client', namespace: NS }, (p) => (p as { status?: { phase?: string } }).status?.phase === 'Running', { timeoutMs: 30_000 });
    await rememberPods(c);
    f = footprint(c);
    const lingering = c.exec({ namespace: NS, name: 'client' }, ['sleep', '300'], { timeoutMs: 60_000 }).catch(() => undefined);
    void lingering;
    throw new Error('injected failure midway');
  };
  const c = await startCluster({ nodes: 3 });
  await assert.rejects(
    (async () => {
      try {
        await body(c);
      } finally {
        await c.stop();
      }
    })(),
    /injected failure midway/,
  );
  assert.ok(f && f.pids.length > 8, `footprint recorded (${f?.pids.length} pids)`);
  await assertNothingLeft(f);
  await c.stop(); // twice is fine
});
