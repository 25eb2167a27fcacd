// The agent installs its chained CNI plugin on each node, as istio-cni does, on a real cluster-in-a-box with two
// nodes: the agent runs as a hostNetwork DaemonSet with hostPath volumes for the node's CNI dirs (/etc/cni/net.d,
// /opt/cni/bin mounted at /host/...) and its run dir (/var/run/ambit). Each node of the box has its own directories
// for these paths (e2e/src/kubelet/volumes.ts), so each agent edits its own node's conflist. Once the agents are
// Ready the plugin is chained on both nodes; a new pod in an ambient namespace is captured by the CNI ADD before its
// container starts (the redirection rules are there when its first command runs, and its first connection goes
// through the agent); deleting the DaemonSet takes the plugin out of both nodes' conflists again, and the nodes start
// pods without it. Root only; needs the Kubernetes binaries.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@ambit/pki';
import { appPath, requireRoot, requireTools, startCluster, waitFor, type Cluster, type KubernetesObject } from '@ambit/e2e';

const SYSTEM_NS = 'ambit-e2e-cni-system';
const APP_NS = 'ambit-e2e-cni-apps';
const PLAIN_NS = 'ambit-e2e-cni-plain';
const NODES = ['node-1', 'node-2'] as const;
const PRIMARY_CONFLIST = '10-ambit.conflist';

let cluster: Cluster | undefined;
let dir: string;

interface PodObject extends KubernetesObject {
  metadata?: { name?: string; namespace?: string; uid?: string; annotations?: Record<string, string> };
  spec?: { nodeName?: string };
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
metadata: {name: ambit-e2e-cni-node-agent}
rules:
  - {apiGroups: [""], resources: [pods, namespaces], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [pods/status], verbs: [patch]}
  # istio-cni's uninstall rule: the plugin goes only when the agent's DaemonSet is gone or being deleted.
  - {apiGroups: [apps], resources: [daemonsets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ambit-e2e-cni-node-agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ambit-e2e-cni-node-agent}
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
      terminationGracePeriodSeconds: 10
      containers:
        - name: agent
          image: ambit/ztunnel
          env:
            # As in k8s-enrollment.e2e.test.ts: the apiserver is reached through each node netns' loopback relay.
            - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
            - {name: KUBERNETES_SERVICE_PORT, value: "${new URL(cluster!.server).port}"}
            - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: LOCAL_XDS_PATH, value: ${join(dir, 'config.yaml')}}
            - {name: AMBIT_LOCAL_CA_CERT, value: ${join(dir, 'ca-cert.pem')}}
            - {name: AMBIT_LOCAL_CA_KEY, value: ${join(dir, 'ca-key.pem')}}
            # The defaults, spelled out: the socket and snapshot in the node's /var/run/ambit, the CNI dirs at /host.
            - {name: AMBIT_CNI_SOCKET, value: /var/run/ambit/cni.sock}
            - {name: AMBIT_POD_SNAPSHOT, value: /var/run/ambit/pods.json}
            - {name: AMBIT_CNI_INSTALL, value: "true"}
            - {name: AMBIT_CNI_CONF_DIR, value: /host/etc/cni/net.d}
            - {name: AMBIT_CNI_BIN_DIR, value: /host/opt/cni/bin}
            - {name: AMBIT_CNI_PLUGIN_LOG_LEVEL, value: debug}
            - {name: AMBIT_HOST_PROC, value: /host/proc}
            - {name: AMBIT_HOST_NETNS_DIR, value: /host/var/run/netns}
            - {name: AMBIT_RULE_CHECK_INTERVAL_SECONDS, value: "0"}
            - {name: AMBIT_DRAIN_TIMEOUT_SECONDS, value: "1"}
            - {name: LOG_LEVEL, value: debug}
          readinessProbe: {httpGet: {path: /healthz/ready, port: 15021}, periodSeconds: 1}
          volumeMounts:
            - {name: host-proc, mountPath: /host/proc}
            - {name: host-netns, mountPath: /host/var/run/netns}
            - {name: ambit-run, mountPath: /var/run/ambit}
            - {name: cni-bin-dir, mountPath: /host/opt/cni/bin}
            - {name: cni-conf-dir, mountPath: /host/etc/cni/net.d}
      volumes:
        - {name: host-proc, hostPath: {path: /proc, type: Directory}}
        - {name: host-netns, hostPath: {path: /var/run/netns, type: DirectoryOrCreate}}
        - {name: ambit-run, hostPath: {path: /var/run/ambit, type: DirectoryOrCreate}}
        - {name: cni-bin-dir, hostPath: {path: /opt/cni/bin, type: DirectoryOrCreate}}
        - {name: cni-conf-dir, hostPath: {path: /etc/cni/net.d, type: DirectoryOrCreate}}
`;
}

const DAEMONSET: KubernetesObject = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ztunnel', namespace: SYSTEM_NS } };

const namespace = (name: string, labels: Record<string, string> = {}): KubernetesObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

/** A pod whose container's first act is to print its netns' iptables rules, then to open one connection to `echo`. */
function clientPod(name: string, nodeName: string, echoIp: string): KubernetesObject {
  const script = `iptables-save; "${process.execPath}" "${appPath('echo-client')}" --host ${echoIp} --port 8080 --message first-connection; exec sleep infinity`;
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: APP_NS, labels: { app: 'client' } },
    spec: { nodeName, restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'client', image: 'busybox', command: ['sh', '-c', script] }] },
  };
}

/** Log files of the pods whose directory name starts with `<ns>_<name>` (the kubelet writes one per container start). */
function podLogs(ns: string, name: string): string {
  const root = cluster?.nodePool?.dir;
  if (!root) return '';
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.includes(`/${ns}_${name}`) && p.endsWith('.log')) out.push(readFileSync(p, 'utf8'));
    }
  };
  try { walk(root); } catch { /* the cluster is being torn down */ }
  return out.join('\n');
}

const agentLog = (): string => podLogs(SYSTEM_NS, 'ztunnel-');
const withAgentLog = (err: Error): never => { throw new Error(`${err.message}\n--- agent log (tail) ---\n${agentLog().slice(-6000)}`); };

const conflistOf = (node: string) => JSON.parse(readFileSync(join(cluster!.nodeHostPath(node, '/etc/cni/net.d'), PRIMARY_CONFLIST), 'utf8')) as { plugins: Array<Record<string, unknown>> };
const pluginTypes = (node: string): string[] => conflistOf(node).plugins.map((p) => String(p.type));

async function agentPodsReady(): Promise<PodObject[]> {
  const list = await cluster!.client.find<{ items: PodObject[] }>(`/api/v1/namespaces/${SYSTEM_NS}/pods`);
  const ready = (list?.items ?? []).filter((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
  return ready.length === NODES.length ? ready : [];
}

before(async () => {
  requireRoot();
  requireTools(['nsenter', 'iptables-save', 'iptables-restore', 'ip', 'ss']);
  dir = mkdtempSync(join(tmpdir(), 'ambit-cni-e2e-'));
  const ca = await CertificateAuthority.create();
  writeFileSync(join(dir, 'ca-cert.pem'), ca.rootCertPem);
  writeFileSync(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'config.yaml'), 'workloads: []\nservices: []\npolicies: []\n');
  cluster = await startCluster({ nodes: 2 });
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('nodes of the box have their own CNI directories: only the primary plugin before the agent runs', () => {
  const [one, two] = NODES.map((n) => cluster!.nodeHostPath(n, '/etc/cni/net.d'));
  assert.notEqual(one, two);
  for (const node of NODES) {
    assert.deepEqual(pluginTypes(node), ['ambit-bridge']);
    assert.equal(existsSync(join(cluster!.nodeHostPath(node, '/opt/cni/bin'), 'ambit-cni')), false);
  }
  assert.equal(cluster!.nodeHostPath('node-1', '/proc'), '/proc', 'host-global paths stay shared');
});

test('once the agent DaemonSet is Ready on both nodes, each node\'s conflist chains ambit-cni with that node\'s socket', async () => {
  await cluster!.apply(agentManifest());
  await waitFor(async () => (await agentPodsReady()).length > 0, { timeoutMs: 90_000, message: 'the agent DaemonSet pods to become Ready on both nodes' }).catch(withAgentLog);
  for (const node of NODES) {
    assert.deepEqual(pluginTypes(node), ['ambit-bridge', 'ambit-cni'], `${node}: chained after the primary plugin`);
    const entry = conflistOf(node).plugins[1]!;
    assert.equal(entry.agentSocket, cluster!.nodeHostPath(node, '/var/run/ambit/cni.sock'), `${node}: the socket of this node's agent`);
    assert.deepEqual(entry.excludeNamespaces, ['kube-system', SYSTEM_NS], 'kube-system and the agent\'s own namespace pass through');
    assert.equal(entry.logLevel, 'debug');
    const binary = join(cluster!.nodeHostPath(node, '/opt/cni/bin'), 'ambit-cni');
    assert.ok((statSync(binary).mode & 0o111) !== 0, `${node}: ${binary} is executable`);
    assert.ok(statSync(cluster!.nodeHostPath(node, '/var/run/ambit/cni.sock')).isSocket(), `${node}: the agent's socket is in the node's run dir`);
  }
});

test('a new pod in an ambient namespace is captured by the CNI ADD before its container starts, on each node', async () => {
  await cluster!.apply([namespace(PLAIN_NS), namespace(APP_NS, { 'istio.io/dataplane-mode': 'ambient' })]);
  const echo: KubernetesObject = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'echo', namespace: PLAIN_NS },
    spec: { nodeName: 'node-1', terminationGracePeriodSeconds: 1, containers: [{ name: 'echo', image: 'ambit/echo', ports: [{ containerPort: 8080 }] }] },
  };
  await cluster!.apply(echo);
  const echoPod = await cluster!.waitFor<PodObject>({ apiVersion: 'v1', kind: 'Pod', name: 'echo', namespace: PLAIN_NS }, (p) => p.status?.phase === 'Running' && !!p.status.podIP, { timeoutMs: 60_000, description: 'running with an IP' });
  const echoIp = echoPod.status!.podIP!;
  for (const [i, node] of NODES.entries()) {
    const name = `client-${i + 1}`;
    await cluster!.apply(clientPod(name, node, echoIp));
    const pod = await cluster!.waitFor<PodObject>({ apiVersion: 'v1', kind: 'Pod', name, namespace: APP_NS }, (p) => p.status?.phase === 'Running' && !!p.status.podIP, {
      timeoutMs: 60_000, description: 'running with an IP',
    }).catch(withAgentLog);
    const ip = pod.status!.podIP!;
    // The container's first command printed its netns' rules; then the echo client printed one JSON result line.
    const result = await waitFor(() => {
      const line = podLogs(APP_NS, name).split('\n').find((l) => l.startsWith('{'));
      return line ? JSON.parse(line) as { ok: boolean; error?: string } : undefined;
    }, { timeoutMs: 20_000, message: `${name}: the echo client's result in its log` }).catch(withAgentLog);
    const log = podLogs(APP_NS, name);
    const firstRules = log.slice(0, log.indexOf('{'));
    // The rules were there when the container's first command ran: they were installed during the CNI ADD.
    assert.match(firstRules, /-A ISTIO_OUTPUT .*-j REDIRECT --to-ports 15001/, `${name} on ${node}: redirection rules present at container start; its log:\n${log.slice(0, 3000)}`);
    assert.equal(result.ok, true, `${name}: the echo through the agent worked: ${result.error ?? ''}`);
    assert.match(agentLog(), new RegExp(`captured pod ${APP_NS}/${name}\\b`), `${name}: captured through the CNI ADD`);
    assert.doesNotMatch(agentLog(), new RegExp(`captured running pod ${APP_NS}/${name}\\b`), `${name}: not by the watch of running pods`);
    // Its first outbound connection went through the node's agent: one access-log line from the pod's address.
    await waitFor(() => agentLog().split('\n').some((l) => l.includes('connection complete') && l.includes(`"src.addr":"${ip}:`) && l.includes(`"dst.addr":"${echoIp}:8080"`)), {
      timeoutMs: 20_000, message: `${name}: an access-log line for its connection ${ip} -> ${echoIp}:8080`,
    }).catch(withAgentLog);
    await cluster!.delete(clientPod(name, node, echoIp), { wait: true, timeoutMs: 60_000 });
  }
});

test('deleting the DaemonSet removes ambit-cni from both nodes\' conflists and the executable; new pods start without it', async () => {
  await cluster!.delete(DAEMONSET);
  // The agent takes the conflist entries out first, then the executable: wait for both.
  await waitFor(() => NODES.every((n) => !pluginTypes(n).includes('ambit-cni') && !existsSync(join(cluster!.nodeHostPath(n, '/opt/cni/bin'), 'ambit-cni'))),
    { timeoutMs: 60_000, message: 'ambit-cni removed from both conflists and bin dirs' }).catch(withAgentLog);
  for (const node of NODES) {
    assert.deepEqual(pluginTypes(node), ['ambit-bridge']);
    assert.equal(existsSync(join(cluster!.nodeHostPath(node, '/opt/cni/bin'), 'ambit-cni')), false, `${node}: executable removed`);
  }
  assert.match(agentLog(), /removing the CNI plugin: DaemonSet ambit-e2e-cni-system\/ztunnel is (gone|being deleted)/);
  // With the agents gone and the plugin out, the nodes start pods of the ambient namespace again (uncaptured).
  const late: KubernetesObject = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'late', namespace: APP_NS },
    spec: { nodeName: 'node-2', terminationGracePeriodSeconds: 1, containers: [{ name: 'sleep', image: 'registry.k8s.io/pause' }] },
  };
  await cluster!.apply(late);
  await cluster!.waitFor<PodObject>({ apiVersion: 'v1', kind: 'Pod', name: 'late', namespace: APP_NS }, (p) => p.status?.phase === 'Running', { timeoutMs: 60_000, description: 'running without the Ambit plugin' });
});
