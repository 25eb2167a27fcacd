// The waypoint deployer against a real cluster-in-a-box (kube-apiserver, controller-manager with its garbage
// collector, scheduler, one node run by our kubelet). The deployer starts before the Gateway API CRDs exist, so it
// must wait for them; then a waypoint Gateway becomes a ServiceAccount, Deployment and Service owned by it, with
// Accepted/Programmed status and an address once the pod is Ready. The waypoint image is a stand-in that only answers
// the readiness probe on 15021 (the real waypoint's traffic is not under test here). Root only; needs the Kubernetes
// binaries (scripts/install-k8s-binaries.sh).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import {
  createImageRegistry, defaultImages, k8sBinaries, parseManifest, requireRoot, startCluster,
  type Cluster, type KubernetesObject, type ObjectRef,
} from '@ambit/e2e';
import { createWaypointDeployer, type WaypointDeployer } from '../src/waypoints/index.js';

const NS = 'waypoint-e2e';
const STAND_IN = 'ambit-test/waypoint-stand-in';
const GW_API = 'gateway.networking.k8s.io/v1';

interface Meta { [key: string]: unknown; name: string; namespace?: string; uid: string; generation?: number; ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[]; labels?: Record<string, string> }
interface Obj extends KubernetesObject { metadata: Meta; spec?: any; status?: any }
interface Condition { type: string; status: string; reason: string; message: string; observedGeneration?: number }

let cluster: Cluster | undefined;
let deployer: WaypointDeployer | undefined;
const logLines: Record<string, unknown>[] = [];

const gatewayRef = (name: string): ObjectRef => ({ apiVersion: GW_API, kind: 'Gateway', name, namespace: NS });
const ref = (apiVersion: string, kind: string, name: string): ObjectRef => ({ apiVersion, kind, name, namespace: NS });
const conditionOf = (obj: Obj | undefined, type: string): Condition | undefined => (obj?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
const listenerCondition = (gw: Obj, index: number, type: string): Condition | undefined => (gw.status?.listeners?.[index]?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

function waypointGateway(name: string, listeners: unknown[]): KubernetesObject {
  return { apiVersion: GW_API, kind: 'Gateway', metadata: { name, namespace: NS, labels: { 'istio.io/waypoint-for': 'service' } }, spec: { gatewayClassName: 'istio-waypoint', listeners } };
}

before(async () => {
  requireRoot('the waypoint deployer e2e tests');
  // A stand-in waypoint: the http-echo app on 15021 answers GET /healthz/ready with 200.
  const imageRegistry = createImageRegistry({ [STAND_IN]: { ...defaultImages()['ambit/http-echo']!, cmd: ['--port', '15021'] } });
  cluster = await startCluster({ nodes: 1, services: false, imageRegistry });
  const kubeConfig = await cluster.controlPlane.loadKubeConfig();
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
  deployer = createWaypointDeployer({
    kubeConfig,
    logger,
    settings: { image: STAND_IN, clusterId: 'Kubernetes', trustDomain: 'cluster.local', controllerNamespace: 'istio-system', imagePullPolicy: 'IfNotPresent' },
    retry: { minMs: 200, maxMs: 1000 },
  });
  await deployer.start();
  // The CRDs arrive after the deployer started: it must notice them without a restart.
  await waitForLog((l) => l.watch === 'Gateways' && String(l.msg).includes('are not served'), 'the deployer to report missing Gateway CRDs');
  const crdDir = join(k8sBinaries().gatewayApiCrdsDir, 'standard');
  const crds = readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).flatMap((f) => parseManifest(readFileSync(join(crdDir, f), 'utf8'))).filter((o) => o.kind === 'CustomResourceDefinition');
  await cluster.apply(crds);
  for (const crd of ['gateways', 'gatewayclasses']) {
    await cluster.waitForCondition({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: `${crd}.gateway.networking.k8s.io` }, 'Established');
  }
  // The namespace and the root-cert ConfigMap the controller's publisher would create (the pod mounts it).
  await cluster.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio-ca-root-cert, namespace: ${NS}}
data: {root-cert.pem: "not a real certificate; the stand-in does not read it"}
`);
});

after(async () => {
  await deployer?.stop();
  await cluster?.stop();
});

async function waitForLog(pred: (l: Record<string, unknown>) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!logLines.some(pred)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log: ${logLines.map((l) => l.msg).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('missing Gateway CRDs are reported once, then picked up without a restart; istio-waypoint class created and accepted', async () => {
  const gc = await cluster!.waitForCondition<Obj>({ apiVersion: GW_API, kind: 'GatewayClass', name: 'istio-waypoint' }, 'Accepted', { timeoutMs: 30_000 });
  assert.equal(gc.spec.controllerName, 'istio.io/mesh-controller');
  assert.equal(gc.spec.description, 'The default Istio waypoint GatewayClass');
  const accepted = conditionOf(gc, 'Accepted')!;
  assert.equal(accepted.reason, 'Accepted');
  assert.equal(accepted.observedGeneration, gc.metadata.generation);
  const notServed = logLines.filter((l) => l.watch === 'Gateways' && String(l.msg).includes('are not served'));
  assert.equal(notServed.length, 1, 'the missing CRD is logged once, not on every retry');
  assert.ok(logLines.some((l) => l.watch === 'Gateways' && String(l.msg).includes('works again')));
});

test('a waypoint Gateway becomes an owned ServiceAccount, Deployment and Service, then Programmed with an address', async () => {
  const c = cluster!;
  await c.apply(waypointGateway('waypoint', [{ name: 'mesh', port: 15008, protocol: 'HBONE' }]));
  const gw = await c.waitForCondition<Obj>(gatewayRef('waypoint'), 'Programmed', { timeoutMs: 90_000 });
  const owner = { apiVersion: GW_API, kind: 'Gateway', name: 'waypoint', uid: gw.metadata.uid };

  const sa = (await c.get<Obj>(ref('v1', 'ServiceAccount', 'waypoint')))!;
  const dep = (await c.get<Obj>(ref('apps/v1', 'Deployment', 'waypoint')))!;
  const svc = (await c.get<Obj>(ref('v1', 'Service', 'waypoint')))!;
  for (const o of [sa, dep, svc]) {
    assert.deepEqual(o.metadata.ownerReferences, [owner], `${o.kind} owner`);
    assert.equal(o.metadata.labels!['gateway.istio.io/managed'], 'istio.io-mesh-controller');
    assert.equal(o.metadata.labels!['gateway.networking.k8s.io/gateway-name'], 'waypoint');
  }
  const pod = dep.spec.template;
  assert.equal(pod.metadata.labels['istio.io/dataplane-mode'], 'none');
  assert.equal(pod.spec.serviceAccountName, 'waypoint');
  assert.equal(pod.spec.containers[0].image, STAND_IN);
  assert.ok(dep.status.availableReplicas >= 1);
  assert.deepEqual(svc.spec.ports.map((p: { name: string; port: number; appProtocol: string }) => `${p.name}:${p.port}:${p.appProtocol}`), ['status-port:15021:tcp', 'mesh:15008:hbone']);

  // The pod the Deployment made is Ready, in the Gateway's namespace, with the waypoint's labels.
  const pods = await c.client.request<{ items: Obj[] }>('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent('gateway.networking.k8s.io/gateway-name=waypoint')}`);
  assert.ok(pods.items.some((p) => (p.status?.conditions as Condition[] | undefined)?.some((x) => x.type === 'Ready' && x.status === 'True')), 'a Ready waypoint pod');

  assert.deepEqual(gw.status.addresses, [
    { type: 'IPAddress', value: svc.spec.clusterIP },
    { type: 'Hostname', value: `waypoint.${NS}.svc.cluster.local` },
  ]);
  const accepted = conditionOf(gw, 'Accepted')!;
  const programmed = conditionOf(gw, 'Programmed')!;
  assert.deepEqual([accepted.status, accepted.reason], ['True', 'Accepted']);
  assert.deepEqual([programmed.reason, programmed.message], ['Programmed', `Resource programmed, assigned to service(s) waypoint.${NS}.svc.cluster.local:15008`]);
  assert.equal(programmed.observedGeneration, gw.metadata.generation);
  assert.equal(gw.status.listeners.length, 1);
  assert.equal(gw.status.listeners[0].name, 'mesh');
  assert.equal(listenerCondition(gw, 0, 'Accepted')!.status, 'True');
  // Status updates of the Deployment re-run the reconcile; the cached objects must read as up to date (no re-apply).
  assert.deepEqual(logLines.filter((l) => String(l.msg).includes('restored to the waypoint')).map((l) => `${String(l.msg)} at ${String(l.difference)}`), []);
});

test('a deleted Deployment is recreated and an edited Service is put back', async () => {
  const c = cluster!;
  const before = (await c.get<Obj>(ref('apps/v1', 'Deployment', 'waypoint')))!;
  await c.client.delete(`/apis/apps/v1/namespaces/${NS}/deployments/waypoint`);
  const recreated = await c.waitFor<Obj>(ref('apps/v1', 'Deployment', 'waypoint'), (d) => d.metadata.uid !== before.metadata.uid, { timeoutMs: 30_000, description: 'recreated with a new uid' });
  assert.equal(recreated.metadata.ownerReferences![0]!.name, 'waypoint');
  // Programmed follows the new Deployment back to True once its pod is Ready again.
  await c.waitFor<Obj>(gatewayRef('waypoint'), (g) => conditionOf(g, 'Programmed')?.status === 'True', { timeoutMs: 90_000, description: 'Programmed again' });
  await c.waitFor<Obj>(ref('apps/v1', 'Deployment', 'waypoint'), (d) => (d.status?.availableReplicas ?? 0) >= 1, { timeoutMs: 90_000, description: 'available again' });

  await c.client.request('PATCH', `/api/v1/namespaces/${NS}/services/waypoint`, { spec: { selector: { 'gateway.networking.k8s.io/gateway-name': 'someone-else' } } }, 'application/merge-patch+json');
  const svc = await c.waitFor<Obj>(ref('v1', 'Service', 'waypoint'), (s) => s.spec.selector['gateway.networking.k8s.io/gateway-name'] === 'waypoint', { timeoutMs: 30_000, description: 'selector restored' });
  assert.deepEqual(svc.spec.selector, { 'gateway.networking.k8s.io/gateway-name': 'waypoint' });
});

test('a Gateway without an HBONE listener is not accepted, says why, and gets nothing deployed', async () => {
  const c = cluster!;
  await c.apply(waypointGateway('not-a-waypoint', [{ name: 'http', port: 80, protocol: 'HTTP' }]));
  const gw = await c.waitForCondition<Obj>(gatewayRef('not-a-waypoint'), 'Accepted', { status: 'False', timeoutMs: 30_000 });
  const accepted = conditionOf(gw, 'Accepted')!;
  assert.equal(accepted.reason, 'ListenersNotValid');
  assert.equal(accepted.message, `Gateway ${NS}/not-a-waypoint: a waypoint needs a listener on port 15008 with protocol HBONE; found spec.listeners[0] "http" (port 80, protocol HTTP)`);
  assert.deepEqual([conditionOf(gw, 'Programmed')!.status, conditionOf(gw, 'Programmed')!.reason], ['False', 'Invalid']);
  const listener = listenerCondition(gw, 0, 'Accepted')!;
  assert.deepEqual([listener.status, listener.reason, listener.message], ['False', 'UnsupportedProtocol', 'Expected a single listener on port 15008 with protocol "HBONE"']);
  assert.equal(gw.status.addresses, undefined);
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ServiceAccount']] as const) {
    assert.equal(await c.get(ref(apiVersion, kind, 'not-a-waypoint')), undefined, `no ${kind} for a rejected Gateway`);
  }

  // Fixing the listener deploys it; breaking it again removes what was deployed.
  await c.apply(waypointGateway('not-a-waypoint', [{ name: 'mesh', port: 15008, protocol: 'HBONE' }]));
  await c.waitForCondition(gatewayRef('not-a-waypoint'), 'Accepted', { timeoutMs: 30_000 });
  await c.waitFor(ref('apps/v1', 'Deployment', 'not-a-waypoint'), () => true, { timeoutMs: 30_000, description: 'deployed after the fix' });
  await c.apply(waypointGateway('not-a-waypoint', [{ name: 'http', port: 80, protocol: 'HTTP' }]));
  await c.waitForCondition(gatewayRef('not-a-waypoint'), 'Accepted', { status: 'False', timeoutMs: 30_000 });
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ServiceAccount']] as const) {
    await c.controlPlane.waitUntil(`${kind} not-a-waypoint removed`, async () => ((await c.get(ref(apiVersion, kind, 'not-a-waypoint'))) === undefined ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
  }
});

test('a stopped deployer (leadership lost) leaves the cluster alone; started again it repairs', async () => {
  const c = cluster!;
  await deployer!.stop();
  await c.client.delete(`/apis/apps/v1/namespaces/${NS}/deployments/waypoint`);
  // The garbage collector removes the old ReplicaSet; by then a running deployer would long have recreated the Deployment.
  const rsPath = `/apis/apps/v1/namespaces/${NS}/replicasets?labelSelector=${encodeURIComponent('gateway.networking.k8s.io/gateway-name=waypoint')}`;
  await c.controlPlane.waitUntil('old ReplicaSets garbage-collected', async () => ((await c.client.request<{ items: unknown[] }>('GET', rsPath)).items.length === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 250 });
  assert.equal(await c.get(ref('apps/v1', 'Deployment', 'waypoint')), undefined, 'nothing recreated the Deployment while the deployer was stopped');
  await deployer!.start();
  await c.waitFor<Obj>(ref('apps/v1', 'Deployment', 'waypoint'), (d) => (d.status?.availableReplicas ?? 0) >= 1, { timeoutMs: 90_000, description: 'recreated and available after restart' });
  await c.waitForCondition(gatewayRef('waypoint'), 'Programmed', { timeoutMs: 60_000 });
});

test('deleting the Gateway lets the garbage collector remove everything it owned', async () => {
  const c = cluster!;
  await c.delete({ apiVersion: GW_API, kind: 'Gateway', metadata: { name: 'waypoint', namespace: NS } }, { wait: true });
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ServiceAccount']] as const) {
    await c.controlPlane.waitUntil(`${kind} ${NS}/waypoint garbage-collected`, async () => ((await c.get(ref(apiVersion, kind, 'waypoint'))) === undefined ? true : undefined), { timeoutMs: 60_000, intervalMs: 250 });
  }
});
