// charts/ambit against real Kubernetes: `helm install --dry-run=server` on a real control plane (and every rendered
// object accepted by the apiserver's server-side dry run), then a real install on a 2-node cluster-in-a-box: the
// controller Deployment and the agent DaemonSet run and become Ready on every node; `helm uninstall` leaves no
// redirection rules in any pod and nothing of the release. Root only; needs the Kubernetes binaries.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TPROXY_ROUTE_TABLE } from '@ambit/api';
import { requireRoot, requireTools } from '../root.js';
import { waitFor } from '../wait.js';
import { k8sBinaries } from '../cluster/binaries.js';
import { startControlPlane } from '../cluster/control-plane.js';
import { startCluster, type Cluster, type KubernetesObject } from '../cluster/cluster.js';
import { CHART_DIR, GATEWAY_API_VERSION, helm, profilePath, templateArgs } from './helm.js';
import { describePods, isReady, type PodView } from '../scenarios/mesh.js';

const NS = 'istio-system';
const APP_NS = 'chart-e2e-app';
const PART_OF = 'app.kubernetes.io/part-of=ambit';


async function pods(c: Cluster, namespace: string, selector?: string): Promise<PodView[]> {
  const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
  return (await c.client.find<{ items: PodView[] }>(`/api/v1/namespaces/${namespace}/pods${q}`))?.items ?? [];
}


/** The last lines of every container log of the release's pods (the kubelets write them under the node pool dir). */
function podLogTails(c: Cluster, lines = 15): string {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-chart-logs-'));
  try {
    c.collectLogs(dir);
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.includes(`${NS}_`) && p.endsWith('.log')) {
          const text = readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).join('\n    ');
          out.push(`  ${p.slice(dir.length + 1)}:\n    ${text}`);
        }
      }
    };
    walk(dir);
    return out.join('\n') || '  (no pod logs)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function applyGatewayApiCrds(kubectl: (args: string[]) => Promise<{ code: number | null; stderr: string }>): Promise<void> {
  const r = await kubectl(['apply', '--server-side', '-f', join(k8sBinaries().gatewayApiCrdsDir, 'standard')]);
  assert.equal(r.code, 0, `Gateway API CRDs: ${r.stderr}`);
  const w = await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/gatewayclasses.gateway.networking.k8s.io', 'crd/gateways.gateway.networking.k8s.io']);
  assert.equal(w.code, 0, `Gateway API CRDs established: ${w.stderr}`);
}

test('helm install --dry-run=server against a real control plane renders, validates and tells the next step', async () => {
  requireRoot('chart e2e tests');
  const cp = await startControlPlane();
  try {
    const kubeconfig = ['--kubeconfig', cp.kubeconfigPath];
    const kubectl = (args: string[], input?: string) => cp.kubectl(args, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
    const install = ['install', 'ambit', CHART_DIR, '--namespace', NS, '--create-namespace', '--dry-run=server', '-f', profilePath('default'), ...kubeconfig];

    // Without the Gateway API: installs, no GatewayClass, and NOTES says how to get waypoints.
    const bare = await helm(install);
    assert.equal(bare.code, 0, `helm install --dry-run=server: ${bare.stderr}`);
    assert.doesNotMatch(bare.stdout, /kind: GatewayClass/);
    assert.match(bare.stdout, /does not serve the Gateway API/);
    assert.match(bare.stdout, /kubectl label namespace <namespace> istio\.io\/dataplane-mode=ambient/);
    assert.match(bare.stdout, /ambitctl waypoint apply -n <namespace> --enroll-namespace --wait/);

    // With the Gateway API CRDs the server's capabilities make the chart include GatewayClass istio-waypoint.
    await applyGatewayApiCrds(kubectl);
    const withGateway = await helm(install);
    assert.equal(withGateway.code, 0, withGateway.stderr);
    assert.match(withGateway.stdout, /kind: GatewayClass\n[\s\S]*name: istio-waypoint/);
    assert.doesNotMatch(withGateway.stdout, /does not serve the Gateway API/);

    // A bad value fails before anything reaches the cluster, with the key named.
    const bad = await helm([...install, '--set', 'controller.replicas=two']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /at '\/controller\/replicas': got string, want integer/);

    // Nothing was installed by the dry runs.
    const list = await helm(['list', '--all-namespaces', '--short', ...kubeconfig]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim(), '');

    // Every object of every profile passes the apiserver's own validation (schemas of built-in kinds and CRDs,
    // RBAC rules, selectors) in a server-side dry run.
    assert.equal((await kubectl(['create', 'namespace', NS])).code, 0);
    for (const profile of ['default', 'minimal', 'demo', 'ambient'] as const) {
      const rendered = await helm(templateArgs({ profile, apiVersions: [GATEWAY_API_VERSION] }));
      assert.equal(rendered.code, 0, rendered.stderr);
      const r = await kubectl(['apply', '--dry-run=server', '--server-side', '--field-manager=helm', '-f', '-'], rendered.stdout);
      assert.equal(r.code, 0, `${profile}: the apiserver refused: ${r.stderr}`);
      assert.match(r.stdout, /daemonset\.apps\/ztunnel serverside-applied|deployment\.apps\/ambit-controller serverside-applied/);
    }
  } finally {
    await cp.stop();
  }
});

test('helm install and uninstall on a 2-node cluster-in-a-box', async (t: TestContext) => {
  requireRoot('chart e2e tests');
  requireTools(['ip', 'nsenter', 'unshare', 'iptables-save']);
  // Each node of the box has its own /etc/cni/net.d, /opt/cni/bin and /var/run/ambit (the kubelet's node roots), so
  // the chart's defaults work as on real nodes: the agent chains its CNI plugin into the node's primary conflist.
  const c = await startCluster({ nodes: 2 });
  const kubeconfig = ['--kubeconfig', c.kubeconfigPath];
  let installed = false;
  try {
    await applyGatewayApiCrds((args) => c.kubectl(args, { timeoutMs: 60_000 }));
    // An ambient namespace with one pod per node, there before Ambit (the agent finds running pods too).
    await c.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: ${APP_NS}, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: echo, namespace: ${APP_NS}}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers: [{name: echo, image: ambit/echo, ports: [{containerPort: 8080}]}]
`);
    await waitFor(async () => (await pods(c, APP_NS)).filter((p) => p.status.phase === 'Running').length === 2, { timeoutMs: 60_000, message: 'echo pods running on both nodes' });

    const install = await helm([
      'install', 'ambit', CHART_DIR, '--namespace', NS, '--create-namespace', '-f', profilePath('default'), ...kubeconfig,
    ], { timeoutMs: 120_000 });
    assert.equal(install.code, 0, `helm install: ${install.stderr}`);
    installed = true;

    // Each step is its own subtest so that a data plane that does not come up still gets its uninstall checked.
    const wait = async (what: string, selector: string, want: number, pred: (p: PodView) => boolean, timeoutMs: number) => {
      try {
        await waitFor(async () => (await pods(c, NS, selector)).filter(pred).length === want, { timeoutMs, intervalMs: 500, message: what });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n  ${describePods(await pods(c, NS))}\n${podLogTails(c)}`, { cause: err });
      }
    };
    let running = false;
    await t.test('the controller Deployment (2 replicas) and the agent DaemonSet (one pod per node) run', async () => {
      await wait('2 controller pods running', 'app=istiod', 2, (p) => p.status.phase === 'Running', 60_000);
      await wait('an agent pod running on each node', 'app=ztunnel', 2, (p) => p.status.phase === 'Running', 60_000);
      const agents = await pods(c, NS, 'app=ztunnel');
      assert.deepEqual(agents.map((p) => p.spec.nodeName).sort(), ['node-1', 'node-2']);
      running = true;
    });
    await t.test('the controller and the agents become Ready (15014 /ready, 15021 /healthz/ready)', async () => {
      assert.ok(running, 'the pods are not running (see the previous subtest)');
      await wait('2 controller pods Ready', 'app=istiod', 2, isReady, 60_000);
      await wait('both agent pods Ready', 'app=ztunnel', 2, isReady, 60_000);
      const ds = await c.get<KubernetesObject & { status: { numberReady: number; desiredNumberScheduled: number } }>({ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ztunnel', namespace: NS });
      assert.deepEqual([ds?.status.desiredNumberScheduled, ds?.status.numberReady], [2, 2]);
      // Capture of the ambient pods (informational here; the scenario tests own capture).
      for (const p of await pods(c, APP_NS)) t.diagnostic(`${p.metadata.name}: ambient.istio.io/redirection=${p.metadata.annotations?.['ambient.istio.io/redirection'] ?? '(none)'}`);
    });

    await t.test('helm uninstall leaves no redirection rules in any pod and nothing of the release', async () => {
      const uninstall = await helm(['uninstall', 'ambit', '--namespace', NS, '--wait', '--timeout', '90s', ...kubeconfig], { timeoutMs: 120_000 });
      assert.equal(uninstall.code, 0, `helm uninstall: ${uninstall.stderr}`);
      installed = false;
      await waitFor(async () => (await pods(c, NS)).length === 0, { timeoutMs: 60_000, message: `no pod left in ${NS}` });

      // No pod keeps redirection rules (Istio's chains, the TPROXY policy route) once the agents are gone.
      for (const p of await pods(c, APP_NS)) {
        const rules = await c.exec(p.metadata, ['iptables-save'], { timeoutMs: 10_000 });
        assert.equal(rules.code, 0, rules.stderr);
        assert.doesNotMatch(rules.stdout, /ISTIO_/, `${p.metadata.name} on ${p.spec.nodeName} still has redirection rules:\n${rules.stdout}`);
        const ipRules = await c.exec(p.metadata, ['ip', 'rule', 'show'], { timeoutMs: 10_000 });
        assert.doesNotMatch(ipRules.stdout, new RegExp(`lookup ${TPROXY_ROUTE_TABLE}\\b`), `${p.metadata.name} still has the TPROXY policy route`);
      }

      // Nothing of the release is left: no labelled object cluster-wide or in the namespace, no GatewayClass.
      const leftovers: string[] = [];
      const names = async (args: string[]) => {
        const r = await c.kubectl([...args, '-o', 'name']);
        assert.equal(r.code, 0, r.stderr);
        leftovers.push(...r.stdout.split('\n').filter(Boolean));
      };
      await names(['get', 'clusterroles,clusterrolebindings', '-l', PART_OF]);
      await names(['get', 'gatewayclasses.gateway.networking.k8s.io', '-l', PART_OF]);
      await names(['get', 'gatewayclass', 'istio-waypoint', '--ignore-not-found']);
      await names(['get', 'deployments,daemonsets,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets', '-n', NS, '-l', PART_OF]);
      await names(['get', 'service', 'istiod', '-n', NS, '--ignore-not-found']);
      assert.deepEqual([...new Set(leftovers)], [], 'objects of the release left after helm uninstall');
      const releases = await helm(['list', '--all-namespaces', '--all', '--short', ...kubeconfig]);
      assert.equal(releases.stdout.trim(), '', 'no release record left');
      // On each node: the agents removed their enrollment sockets, and took ambit-cni out of the node's conflist.
      for (const node of ['node-1', 'node-2']) {
        const run = c.nodeHostPath(node, '/var/run/ambit');
        const sockets = existsSync(run) ? readdirSync(run, { recursive: true }).map(String).filter((f) => f.endsWith('.sock')) : [];
        assert.deepEqual(sockets, [], `enrollment sockets left in ${node}'s /var/run/ambit`);
        const confDir = c.nodeHostPath(node, '/etc/cni/net.d');
        for (const f of readdirSync(confDir)) assert.doesNotMatch(readFileSync(join(confDir, f), 'utf8'), /ambit-cni/, `${node}'s ${f} still chains ambit-cni`);
      }
    });
  } finally {
    if (installed) await helm(['uninstall', 'ambit', '--namespace', NS, '--wait', '--timeout', '60s', ...kubeconfig], { timeoutMs: 90_000 }).catch(() => undefined);
    await c.stop();
  }
});
