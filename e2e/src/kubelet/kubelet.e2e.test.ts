// Our kubelet against a real kube-apiserver, controller-manager and scheduler: nodes register and go Ready,
// Deployments and DaemonSets get pods that run as processes in pod namespaces, EndpointSlices follow readiness,
// deletion removes namespaces and processes, and bad input (unknown image, failing CNI plugin) is reported, not
// fatal. Needs the Kubernetes binaries from scripts/install-k8s-binaries.sh.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1DaemonSet, V1Deployment, V1Pod, V1PodList, CoreV1EventList, V1Node, V1Service } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../cluster/control-plane.js';
import { createTopology, type Topology } from '../topology.js';
import { requireRoot, requireTools } from '../root.js';
import { isProcessAlive, listNetns, netnsInode, pidsInNetns } from '../netns.js';
import { waitFor } from '../wait.js';
import { connectionFromKubeconfig, createKubeApi, isApiStatus, type KubeApi } from './kube-api.js';
import { startKubelet, type Kubelet } from './kubelet.js';

const BIN_DIR = fileURLToPath(new URL('../../../bin', import.meta.url));
const NS = 'kubelet-e2e';

let cp: ControlPlane;
let topo: Topology;
let dir: string;
let api: KubeApi;
const kubelets: Kubelet[] = [];
const logLines: string[] = [];

function writeConf(node: number, extra: object[] = []): string {
  const d = join(dir, `cni-n${node}`);
  mkdirSync(d, { recursive: true });
  const n = topo.node(node);
  writeFileSync(join(d, '10-ambit.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'ambit',
    plugins: [{ type: 'ambit-bridge', bridge: n.bridge, hostNetns: n.netns, ipam: { subnet: n.podCidr, gateway: n.bridgeIp, dataDir: join(dir, 'ipam', `n${node}`) } }, ...extra],
  }));
  return d;
}

async function pods(selector: string): Promise<V1Pod[]> {
  return (await api.request<V1PodList>('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(selector)}`)).items;
}

const ready = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

before(async () => {
  requireRoot();
  requireTools(['ip', 'nsenter', 'bridge']);
  dir = mkdtempSync(join(tmpdir(), 'ambit-kubelet-api-e2e-'));
  cp = await startControlPlane();
  api = createKubeApi(connectionFromKubeconfig(cp.kubeconfig));
  topo = await createTopology({ nodes: 3 });
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'fail-add'), `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","code":100,"msg":"injected CNI failure"}'; exit 1; fi\n`);
  chmodSync(join(dir, 'bin', 'fail-add'), 0o755);
  for (const n of [1, 2, 3]) {
    // Node 3's chain ends in a plugin that fails every ADD: the bad-input node.
    const confDir = writeConf(n, n === 3 ? [{ type: 'fail-add' }] : []);
    kubelets.push(await startKubelet({
      kubeConfig: cp.kubeconfig,
      nodeName: `node-${n}`,
      nodeIndex: n,
      topology: topo,
      cniConfDir: confDir,
      cniBinDir: [BIN_DIR, join(dir, 'bin')],
      logDir: join(dir, `logs-n${n}`),
      labels: n === 3 ? { 'ambit.dev/broken-cni': 'true' } : {},
      restartBackoff: { baseMs: 500, maxMs: 5000 },
      log: (l) => logLines.push(l),
    }));
  }
  // Node 3 only takes the pods that ask for it.
  await api.request('PATCH', '/api/v1/nodes/node-3', { spec: { taints: [{ key: 'ambit.dev/broken-cni', effect: 'NoSchedule' }] } }, 'application/merge-patch+json');
  await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await waitFor(async () => (await api.request<{ items: unknown[] }>('GET', `/api/v1/namespaces/${NS}/serviceaccounts`)).items.length > 0, { timeoutMs: 30_000, message: 'default ServiceAccount in the test namespace' });
});

after(async () => {
  for (const k of kubelets) await k.stop().catch(() => undefined);
  api?.close();
  await cp?.stop();
  await topo?.destroy();
  if (process.env.AMBIT_E2E_KEEP) process.stderr.write(`kubelet e2e files kept in ${dir}\n${logLines.slice(-50).join('\n')}\n`);
  else if (dir) rmSync(dir, { recursive: true, force: true });
});

test('nodes register Ready with podCIDR, InternalIP and a lease', async () => {
  for (const n of [1, 2]) {
    const node = await waitFor(async () => {
      const o = await api.request<V1Node>('GET', `/api/v1/nodes/node-${n}`);
      return o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? o : undefined;
    }, { timeoutMs: 20_000, message: `node-${n} Ready` });
    assert.equal(node.spec?.podCIDR, `10.0.${n}.0/24`);
    assert.deepEqual(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, `10.255.0.${n}`);
    const lease = await api.request<{ spec: { holderIdentity: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-${n}`);
    assert.equal(lease.spec.holderIdentity, `node-${n}`);
  }
});

test('a Deployment of 2 echo replicas runs on 2 nodes and answers a client pod via pod IP', async () => {
  const deploy: V1Deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'echo', namespace: NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo' } },
        spec: {
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'echo' } } }],
          containers: [{ name: 'echo', image: 'ambit/echo:latest', ports: [{ containerPort: 8080 }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }],
        },
      },
    },
  };
  await api.request('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, deploy);
  const running = await waitFor(async () => {
    const ps = (await pods('app=echo')).filter(ready);
    return ps.length === 2 ? ps : undefined;
  }, { timeoutMs: 60_000, message: '2 ready echo pods' });
  assert.deepEqual(running.map((p) => p.spec?.nodeName).sort(), ['node-1', 'node-2']);
  for (const p of running) {
    const n = p.spec!.nodeName === 'node-1' ? 1 : 2;
    assert.match(p.status?.podIP ?? '', new RegExp(`^10\\.0\\.${n}\\.\\d+$`));
    assert.equal(p.status?.hostIP, `10.255.0.${n}`);
    assert.equal(p.status?.phase, 'Running');
    assert.ok(p.status?.containerStatuses?.[0]?.state?.running);
  }
  // A client pod on node 1 talks to both replicas by pod IP; exit 0 only for a byte-exact echo.
  for (const [i, target] of running.entries()) {
    const client: V1Pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: `client-${i}`, namespace: NS, labels: { app: 'client' } },
      spec: { restartPolicy: 'Never', nodeSelector: { 'kubernetes.io/hostname': 'node-1' }, containers: [{ name: 'c', image: 'ambit/echo-client', args: ['--host', target.status!.podIP!, '--port', '8080', '--message', 'via-pod-ip'] }] },
    };
    await api.request('POST', `/api/v1/namespaces/${NS}/pods`, client);
    const done = await waitFor(async () => {
      const p = await api.request<V1Pod>('GET', `/api/v1/namespaces/${NS}/pods/client-${i}`);
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    }, { timeoutMs: 30_000, message: `client-${i} finished` });
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.containerStatuses));
    assert.equal(done.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
    // A finished pod releases its sandbox (netns, address) for good and keeps its podIP in the status.
    const worker = kubelets[0]!.worker(done.metadata!.uid!)!;
    await waitFor(() => worker.sandbox === undefined, { timeoutMs: 10_000, message: `client-${i} sandbox released` });
    assert.ok(done.status?.podIP);
  }
  // Finished clients do not get their sandbox back on later syncs: only the echo replica has a netns on node 1.
  assert.deepEqual(listNetns().filter((n) => n.startsWith(`${topo.prefix}-n1p`)), [kubelets[0]!.worker(running.find((p) => p.spec?.nodeName === 'node-1')!.metadata!.uid!)!.sandbox!.netns]);
});

test('a DaemonSet gets one pod per schedulable node', async () => {
  const ds: V1DaemonSet = {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'agent' } },
      template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] } },
    },
  };
  await api.request('POST', `/apis/apps/v1/namespaces/${NS}/daemonsets`, ds);
  const ps = await waitFor(async () => {
    const list = (await pods('app=agent')).filter(ready);
    return list.length === 2 ? list : undefined;
  }, { timeoutMs: 60_000, message: 'a ready agent pod on node-1 and node-2' });
  assert.deepEqual(ps.map((p) => p.spec?.nodeName).sort(), ['node-1', 'node-2']);
  const status = await waitFor(async () => {
    const d = await api.request<V1DaemonSet>('GET', `/apis/apps/v1/namespaces/${NS}/daemonsets/agent`);
    return d.status?.numberReady === 2 ? d : undefined;
  }, { timeoutMs: 30_000, message: 'DaemonSet numberReady 2' });
  assert.equal(status.status?.desiredNumberScheduled, 2);
});

test('EndpointSlices follow pod readiness', async () => {
  const flag = join(dir, 'web-ready');
  await api.request('POST', `/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
  } satisfies V1Service);
  await api.request('POST', `/api/v1/namespaces/${NS}/pods`, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: NS, labels: { app: 'web' } },
    spec: { containers: [{ name: 'web', image: 'ambit/http-echo', readinessProbe: { exec: { command: ['test', '-e', flag] }, periodSeconds: 1, failureThreshold: 1 } }] },
  } satisfies V1Pod);
  type Slice = { endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] };
  const endpoints = async () => (await api.request<{ items: Slice[] }>('GET', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb`)).items.flatMap((s) => s.endpoints ?? []);
  const pod = await waitFor(async () => {
    const p = await api.request<V1Pod>('GET', `/api/v1/namespaces/${NS}/pods/web`);
    return p.status?.podIP && p.status.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, { timeoutMs: 30_000, message: 'web pod running' });
  const ip = pod.status!.podIP!;
  await waitFor(async () => (await endpoints()).some((e) => e.addresses.includes(ip) && e.conditions?.ready === false), { timeoutMs: 30_000, message: `unready endpoint ${ip}` });
  writeFileSync(flag, '');
  await waitFor(async () => (await endpoints()).some((e) => e.addresses.includes(ip) && e.conditions?.ready === true), { timeoutMs: 30_000, message: `ready endpoint ${ip}` });
  rmSync(flag);
  await waitFor(async () => (await endpoints()).some((e) => e.addresses.includes(ip) && e.conditions?.ready === false), { timeoutMs: 30_000, message: `endpoint ${ip} unready again` });
});

test('deleting a pod stops its processes, runs CNI DEL and removes its netns', async () => {
  await api.request('POST', `/api/v1/namespaces/${NS}/pods`, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'doomed', namespace: NS },
    spec: { terminationGracePeriodSeconds: 3, containers: [{ name: 'echo', image: 'ambit/echo' }] },
  } satisfies V1Pod);
  const p = await waitFor(async () => {
    const o = await api.request<V1Pod>('GET', `/api/v1/namespaces/${NS}/pods/doomed`);
    return ready(o) ? o : undefined;
  }, { timeoutMs: 30_000, message: 'doomed pod ready' });
  const kubelet = kubelets.find((k) => k.nodeName === p.spec?.nodeName)!;
  const worker = kubelet.worker(p.metadata!.uid!)!;
  const netns = worker.sandbox!.netns;
  const inode = netnsInode(netns)!;
  const pids = worker.pids();
  assert.equal(pids.length, 1);
  assert.equal(p.status?.containerStatuses?.[0]?.containerID, `ambit://${pids[0]}`);
  await api.request('DELETE', `/api/v1/namespaces/${NS}/pods/doomed`);
  await waitFor(async () => {
    try {
      await api.request('GET', `/api/v1/namespaces/${NS}/pods/doomed`);
      return false;
    } catch (err) {
      return isApiStatus(err, 404);
    }
  }, { timeoutMs: 30_000, message: 'pod object gone after the kubelet finished the deletion' });
  assert.equal(listNetns().includes(netns), false);
  assert.equal(pids.some(isProcessAlive), false);
  assert.deepEqual(pidsInNetns(new Set([inode])), []);
});

test('an unknown image gives an ErrImagePull-like status, not a crash', async () => {
  await api.request('POST', `/api/v1/namespaces/${NS}/pods`, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'noimage', namespace: NS },
    spec: { containers: [{ name: 'c', image: 'example.com/nothing/here:1.0' }] },
  } satisfies V1Pod);
  const p = await waitFor(async () => {
    const o = await api.request<V1Pod>('GET', `/api/v1/namespaces/${NS}/pods/noimage`);
    const reason = o.status?.containerStatuses?.[0]?.state?.waiting?.reason;
    return reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? o : undefined;
  }, { timeoutMs: 30_000, message: 'noimage waiting with ErrImagePull/ImagePullBackOff' });
  assert.equal(p.status?.phase, 'Pending');
  assert.match(p.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /example\.com\/nothing\/here/);
  // The kubelet is still serving: another pod on the same node still starts.
  assert.ok(kubelets.every((k) => k.worker(p.metadata!.uid!) === undefined || k.nodeName === p.spec?.nodeName));
});

test('a failing CNI plugin leaves the pod not running with the error in its events', async () => {
  await api.request('POST', `/api/v1/namespaces/${NS}/pods`, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nonet', namespace: NS },
    spec: {
      nodeSelector: { 'ambit.dev/broken-cni': 'true' },
      tolerations: [{ key: 'ambit.dev/broken-cni', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [{ name: 'c', image: 'registry.k8s.io/pause' }],
    },
  } satisfies V1Pod);
  const ev = await waitFor(async () => {
    const list = await api.request<CoreV1EventList>('GET', `/api/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent('involvedObject.name=nonet')}`);
    return list.items.find((e) => e.reason === 'FailedCreatePodSandBox');
  }, { timeoutMs: 30_000, message: 'FailedCreatePodSandBox event for nonet' });
  assert.match(ev.message ?? '', /fail-add.*injected CNI failure/);
  assert.equal(ev.type, 'Warning');
  const p = await api.request<V1Pod>('GET', `/api/v1/namespaces/${NS}/pods/nonet`);
  assert.equal(p.spec?.nodeName, 'node-3');
  assert.notEqual(p.status?.phase, 'Running');
  // The kubelet retries with backoff; between attempts nothing of the failed ADDs is left (no netns builds up).
  await waitFor(() => listNetns().filter((n) => n.startsWith(`${topo.prefix}-n3p`)).length === 0, { timeoutMs: 10_000, intervalMs: 10, message: 'no netns left on node 3 between sandbox retries' });
});
