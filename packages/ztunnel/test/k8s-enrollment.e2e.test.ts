// The node agent's Kubernetes side on a real cluster-in-a-box (real kube-apiserver, controller-manager, our kubelet,
// kube-proxy): the agent runs as a hostNetwork DaemonSet pod with its own service account and RBAC, finds the API
// server through the in-cluster env and its service-account volume (AMBIT_MOUNTS), and the host's /proc and
// /var/run/netns through hostPath volumes. A pod that is already running is captured when its namespace is labelled
// ambient (rules in its netns, HBONE listener, annotation), released when the label goes, captured again, and
// released when the pod opts out with dataplane-mode=none. The CNI chain has no Ambit plugin here: every capture in
// this file goes through the watch path. Root only; needs the Kubernetes binaries.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@ambit/pki';
import { requireRoot, requireTools, startCluster, waitFor, type Cluster, type KubernetesObject } from '@ambit/e2e';

const SYSTEM_NS = 'ambit-e2e-system';
const APP_NS = 'ambit-e2e-apps';
const REDIRECTION = 'ambient.istio.io/redirection';
const POD = { apiVersion: 'v1', kind: 'Pod', name: 'echo', namespace: APP_NS };

let cluster: Cluster | undefined;
let dir: string;

interface PodObject extends KubernetesObject {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  status?: { phase?: string; podIP?: string; conditions?: Array<{ type?: string; status?: string }> };
}

function agentManifest(): string {
  return `
apiVersion: v1
kind: Namespace
metadata: {name: ${SYSTEM_NS}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ztunnel, namespace: ${SYSTEM_NS}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ambit-e2e-node-agent}
rules:
  - {apiGroups: [""], resources: [pods, namespaces], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [pods/status], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ambit-e2e-node-agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ambit-e2e-node-agent}
subjects: [{kind: ServiceAccount, name: ztunnel, namespace: ${SYSTEM_NS}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ztunnel, namespace: ${SYSTEM_NS}}
spec:
  selector: {matchLabels: {app: ztunnel}}
  template:
    metadata: {labels: {app: ztunnel}}
    spec:
      serviceAccountName: ztunnel
      hostNetwork: true
      containers:
        - name: agent
          image: ambit/ztunnel
          env:
            # The harness's apiserver is on the root netns' loopback; each node netns relays its own
            # 127.0.0.1:<port> to it (e2e/src/cluster/services.ts), and the kubernetes ClusterIP does not lead there
            # from a hostNetwork pod. The in-cluster path is otherwise the product's: token and CA from the
            # service-account volume found through AMBIT_MOUNTS.
            - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
            - {name: KUBERNETES_SERVICE_PORT, value: "${new URL(cluster!.server).port}"}
            - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
            - {name: LOCAL_XDS_PATH, value: ${join(dir, 'config.yaml')}}
            - {name: AMBIT_LOCAL_CA_CERT, value: ${join(dir, 'ca-cert.pem')}}
            - {name: AMBIT_LOCAL_CA_KEY, value: ${join(dir, 'ca-key.pem')}}
            - {name: AMBIT_CNI_SOCKET, value: ${join(dir, 'cni.sock')}}
            - {name: AMBIT_POD_SNAPSHOT, value: ${join(dir, 'pods.json')}}
            - {name: AMBIT_HOST_PROC, value: /host/proc}
            - {name: AMBIT_HOST_NETNS_DIR, value: /host/var/run/netns}
            - {name: AMBIT_RULE_CHECK_INTERVAL_SECONDS, value: "0"}
            - {name: LOG_LEVEL, value: debug}
          readinessProbe: {httpGet: {path: /healthz/ready, port: 15021}, periodSeconds: 1}
          volumeMounts:
            - {name: host-proc, mountPath: /host/proc}
            - {name: host-netns, mountPath: /host/var/run/netns}
      volumes:
        - {name: host-proc, hostPath: {path: /proc}}
        - {name: host-netns, hostPath: {path: /var/run/netns}}
`;
}

const appNamespace = (labels: Record<string, string>): KubernetesObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS, labels } });
const echoPod = (labels: Record<string, string>): KubernetesObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'echo', namespace: APP_NS, labels: { app: 'echo', ...labels } },
  spec: { containers: [{ name: 'echo', image: 'ambit/echo', ports: [{ containerPort: 8080 }] }], terminationGracePeriodSeconds: 1 },
});

/** The agent pod's log (the kubelet writes one file per container start). */
function agentLog(): string {
  const root = cluster?.nodePool?.dir;
  if (!root) return '';
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.includes(`${SYSTEM_NS}_ztunnel-`) && p.endsWith('.log')) out.push(readFileSync(p, 'utf8'));
    }
  };
  try { walk(root); } catch { /* the cluster is being torn down */ }
  return out.join('\n');
}

async function inPod(argv: string[]): Promise<string> {
  const r = await cluster!.exec({ namespace: APP_NS, name: 'echo' }, argv, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in pod echo: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const podRules = (): Promise<string> => inPod(['iptables-save']);
const listening15008 = async (): Promise<boolean> => /:15008\b/.test(await inPod(['ss', '-Hltn']));

async function waitForCapture(captured: boolean, what: string): Promise<PodObject> {
  const pod = await cluster!.waitFor<PodObject>(POD, (p) => (p.metadata?.annotations?.[REDIRECTION] === 'enabled') === captured, {
    timeoutMs: 30_000, description: `${what}: annotation ${REDIRECTION} ${captured ? 'enabled' : 'absent'}`,
  }).catch((err: Error) => { throw new Error(`${err.message}\n--- agent log (tail) ---\n${agentLog().slice(-4000)}`); });
  await waitFor(async () => {
    const rules = (await podRules()).includes('ISTIO_OUTPUT');
    const hbone = await listening15008();
    if (rules !== captured || hbone !== captured) throw new Error(`rules installed: ${rules}, 15008 listening: ${hbone}`);
    return true;
  }, {
    timeoutMs: 10_000, message: `${what}: redirection rules and the 15008 listener ${captured ? 'present' : 'gone'} in the pod netns`,
  }).catch((err: Error) => { throw new Error(`${err.message}\n--- agent log (tail) ---\n${agentLog().slice(-6000)}`); });
  return pod;
}

before(async () => {
  requireRoot();
  requireTools(['nsenter', 'iptables-save', 'iptables-restore', 'ip', 'ss']);
  dir = mkdtempSync(join(tmpdir(), 'ambit-k8s-e2e-'));
  const ca = await CertificateAuthority.create();
  writeFileSync(join(dir, 'ca-cert.pem'), ca.rootCertPem);
  writeFileSync(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'config.yaml'), 'workloads: []\nservices: []\npolicies: []\n');
  cluster = await startCluster({ nodes: 1 });
  await cluster.apply(agentManifest());
  await cluster.apply([appNamespace({}), echoPod({})]);
  await cluster.waitFor<PodObject>(POD, (p) => p.status?.phase === 'Running' && !!p.status.podIP, { timeoutMs: 60_000, description: 'running with an IP' });
  await waitFor(async () => {
    const list = await cluster!.client.find<{ items: PodObject[] }>(`/api/v1/namespaces/${SYSTEM_NS}/pods`);
    return (list?.items ?? []).some((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
  }, { timeoutMs: 60_000, message: 'the agent DaemonSet pod to become ready' }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- agent log (tail) ---\n${agentLog().slice(-4000)}`);
  });
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a running pod is captured when its namespace is labelled ambient, and annotated', async () => {
  assert.equal((await podRules()).includes('ISTIO_OUTPUT'), false, 'not captured before the label');
  await cluster!.apply(appNamespace({ 'istio.io/dataplane-mode': 'ambient' }));
  const pod = await waitForCapture(true, 'namespace labelled ambient');
  const rules = await podRules();
  // Inbound goes through mangle ISTIO_PRERT (TPROXY, @ambit/netns), outbound through the nat REDIRECT to 15001.
  assert.match(rules, /-A PREROUTING -j ISTIO_PRERT/);
  assert.match(rules, /-A ISTIO_OUTPUT .*-j REDIRECT --to-ports 15001/);
  assert.ok(agentLog().includes(`captured running pod ${APP_NS}/echo`), 'the agent logged the capture of the running pod');
  assert.ok(pod.metadata?.uid);
});

test('unlabelling the namespace releases the pod and removes the annotation', async () => {
  await cluster!.apply(appNamespace({}));
  await waitForCapture(false, 'namespace unlabelled');
});

test('labelled again it is captured again; the pod label dataplane-mode=none releases it', async () => {
  await cluster!.apply(appNamespace({ 'istio.io/dataplane-mode': 'ambient' }));
  await waitForCapture(true, 'namespace labelled ambient again');
  await cluster!.apply(echoPod({ 'istio.io/dataplane-mode': 'none' }));
  await waitForCapture(false, 'pod labelled none');
  assert.match(agentLog(), /released pod ambit-e2e-apps\/echo: the pod opts out with istio\.io\/dataplane-mode=none/);
});

test('a deleted pod is released by the agent', async () => {
  await cluster!.apply(echoPod({}));
  await waitForCapture(true, 'pod label removed');
  const uid = (await cluster!.get<PodObject>(POD))?.metadata?.uid;
  await cluster!.delete(echoPod({}), { wait: true, timeoutMs: 60_000 });
  await waitFor(() => JSON.parse(readFileSync(join(dir, 'pods.json'), 'utf8')).pods.every((p: { pod: { uid: string } }) => p.pod.uid !== uid), {
    timeoutMs: 20_000, message: 'the agent to forget the deleted pod (its snapshot still lists it)',
  });
});
