// ambitctl against a real cluster-in-a-box (kube-apiserver, controller-manager, scheduler, one node run by our
// kubelet) with the controller's waypoint deployer running in this process: every waypoint verb, istioctl's
// warnings, --wait succeeding and timing out with the reason, and analyze on cluster objects. The waypoint image is
// a stand-in that only answers the readiness probe (traffic through a real waypoint is tested elsewhere). Root only.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { parse } from 'yaml';
import {
  createImageRegistry, defaultImages, k8sBinaries, parseManifest, requireRoot, startCluster, type Cluster, type KubernetesObject,
} from '@ambit/e2e';
import { createWaypointDeployer, type WaypointDeployer } from '@ambit/controller';
import { main, ANALYZE_FOUND_ISSUES_EXIT } from '../src/index.js';
import { captureIo } from './io-capture.js';

const NS = 'ctl-e2e';
const NS_NO_ROOT = 'ctl-e2e-stuck';
const STAND_IN = 'ambit-test/waypoint-stand-in';
const CRD_DIR = fileURLToPath(new URL('../../../../charts/ambit/crds/', import.meta.url));

let cluster: Cluster | undefined;
let deployer: WaypointDeployer | undefined;
let kubeconfig = '';

async function ctl(...argv: string[]) {
  const io = captureIo({});
  const code = await main([...argv, '--kubeconfig', kubeconfig], io);
  return { code, out: io.stdout, err: io.stderr };
}

before(async () => {
  requireRoot('the ambitctl e2e tests');
  const imageRegistry = createImageRegistry({ [STAND_IN]: { ...defaultImages()['ambit/http-echo']!, cmd: ['--port', '15021'] } });
  cluster = await startCluster({ nodes: 1, services: false, imageRegistry });
  kubeconfig = cluster.controlPlane.kubeconfigPath;
  deployer = createWaypointDeployer({
    kubeConfig: await cluster.controlPlane.loadKubeConfig(),
    logger: pino({ level: 'silent' }),
    settings: { image: STAND_IN, clusterId: 'Kubernetes', trustDomain: 'cluster.local', controllerNamespace: 'istio-system', imagePullPolicy: 'IfNotPresent' },
    retry: { minMs: 200, maxMs: 1000 },
  });
  await deployer.start();
  // Both namespaces exist; only the first has the root-cert ConfigMap the waypoint pod mounts, so a waypoint in
  // the second can never become ready (what --wait must time out on).
  await cluster.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ${NS_NO_ROOT}, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio-ca-root-cert, namespace: ${NS}}
data: {root-cert.pem: "stand-in"}
`);
});

after(async () => {
  await deployer?.stop();
  await cluster?.stop();
});

async function installGatewayCrds(): Promise<void> {
  const dir = join(k8sBinaries().gatewayApiCrdsDir, 'standard');
  const crds = readdirSync(dir).filter((f) => f.endsWith('.yaml')).flatMap((f) => parseManifest(readFileSync(join(dir, f), 'utf8'))).filter((o) => o.kind === 'CustomResourceDefinition');
  await cluster!.apply(crds);
  for (const crd of ['gateways', 'gatewayclasses']) {
    await cluster!.waitForCondition({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: `${crd}.gateway.networking.k8s.io` }, 'Established');
  }
}

test('waypoint apply refuses clearly while the Gateway API CRDs are missing', async () => {
  const r = await ctl('waypoint', 'apply', '-n', NS);
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: missing Kubernetes Gateway CRDs need to be installed before applying a waypoint/m);
});

test('waypoint apply --enroll-namespace --wait: the Gateway becomes Programmed and the namespace is labelled; list, status, overwrite, delete', async () => {
  await installGatewayCrds();
  let r = await ctl('waypoint', 'apply', '-n', NS, '--enroll-namespace', '--wait', '--waypoint-timeout', '120s');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: namespace is not enrolled in ambient/, 'istioctl warns about a namespace that is not ambient');
  assert.match(r.out, new RegExp(`waypoint ${NS}/waypoint applied\\n`));
  assert.match(r.out, new RegExp(`namespace ${NS} labeled with "istio.io/use-waypoint: waypoint"\\n`));
  assert.match(r.out, new RegExp(`waypoint ${NS}/waypoint programmed\\n`));
  const ns = await cluster!.get<KubernetesObject & { metadata: { labels?: Record<string, string> } }>({ apiVersion: 'v1', kind: 'Namespace', name: NS });
  assert.equal(ns?.metadata.labels?.['istio.io/use-waypoint'], 'waypoint');
  const gw = await cluster!.get<KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }>({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', namespace: NS });
  assert.equal(gw?.status?.conditions?.find((c) => c.type === 'Programmed')?.status, 'True');

  r = await ctl('waypoint', 'list', '-n', NS);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^NAME\s+REVISION\s+TRAFFIC TYPE\s+PROGRAMMED\nwaypoint\s+default\s+service\s+True\n$/);
  r = await ctl('waypoint', 'list', '-A', '-o', 'json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as KubernetesObject[]).map((g) => `${g.metadata?.namespace}/${g.metadata?.name}`), [`${NS}/waypoint`]);
  r = await ctl('waypoint', 'status', '-n', NS);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /waypoint ctl-e2e\/waypoint programmed/);

  // A second waypoint does not take over the namespace label without --overwrite.
  r = await ctl('waypoint', 'apply', '-n', NS, '--name', 'other', '--for', 'all', '--enroll-namespace');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /already has the label istio\.io\/use-waypoint=waypoint; not changing it\. Use --overwrite/);
  r = await ctl('waypoint', 'apply', '-n', NS, '--name', 'other', '--for', 'all', '--enroll-namespace', '--overwrite');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /labeled with "istio\.io\/use-waypoint: other"/);
  const gen = await ctl('waypoint', 'generate', '-n', NS, '--name', 'other', '--for', 'all');
  assert.equal(parse(gen.out).metadata.labels['istio.io/waypoint-for'], 'all');

  r = await ctl('waypoint', 'delete', '-n', NS, 'nope');
  assert.equal(r.code, 1);
  assert.match(r.err, /waypoint ctl-e2e\/nope not found/);
  r = await ctl('waypoint', 'delete', '-n', NS, '--all');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /waypoint ctl-e2e\/other deleted\n/);
  assert.match(r.out, /waypoint ctl-e2e\/waypoint deleted\n/);
  r = await ctl('waypoint', 'list', '-n', NS);
  assert.match(r.out, /No waypoints found in namespace ctl-e2e\./);
});

test('waypoint apply --wait times out with the reason when the waypoint cannot become ready', async () => {
  const started = Date.now();
  const r = await ctl('waypoint', 'apply', '-n', NS_NO_ROOT, '--wait', '--waypoint-timeout', '8s');
  assert.equal(r.code, 1, r.out);
  assert.doesNotMatch(r.err, /not enrolled in ambient/, 'the namespace is ambient: no warning');
  assert.match(r.err, /waiting for waypoint ctl-e2e-stuck\/waypoint to be programmed \(\d+s\)\.\.\./, 'progress is shown');
  assert.match(r.err, /error: timed out after 8s waiting for waypoint ctl-e2e-stuck\/waypoint to be programmed: (Programmed=False \(\w+\): .+|no Programmed condition yet.+)\n/);
  assert.ok(Date.now() - started < 30_000, 'bounded by --waypoint-timeout');
});

test('analyze: a VirtualService naming a subset no DestinationRule defines is an error (exit 79), in the cluster and in files', async () => {
  for (const f of readdirSync(CRD_DIR).filter((x) => x.endsWith('.yaml'))) await cluster!.apply(parseManifest(readFileSync(join(CRD_DIR, f), 'utf8')));
  await cluster!.waitForCondition({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'virtualservices.networking.istio.io' }, 'Established');
  await cluster!.waitForCondition({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'destinationrules.networking.istio.io' }, 'Established');
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: ${NS}}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: ${NS}}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: ${NS}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v4}
      weight: 10
`;
  await cluster!.apply(yaml);
  let r = await ctl('analyze', '-n', NS);
  assert.equal(r.code, ANALYZE_FOUND_ISSUES_EXIT, r.out + r.err);
  assert.match(r.out, /^Error \[IST0101\] \(VirtualService reviews\.ctl-e2e\) .*reviews\+v4/m);
  r = await ctl('analyze', '-n', NS, '-o', 'json');
  const diags = JSON.parse(r.out) as { code: string; severity: string; kind: string }[];
  assert.ok(diags.some((d) => d.code === 'IST0101' && d.severity === 'Error' && d.kind === 'VirtualService'), r.out);

  // The same files without the cluster; fixing the subset clears the error.
  const dir = mkdtempSync(join(tmpdir(), 'ambitctl-analyze-'));
  try {
    writeFileSync(join(dir, 'bad.yaml'), yaml);
    r = await ctl('analyze', '--use-kube=false', join(dir, 'bad.yaml'));
    assert.equal(r.code, ANALYZE_FOUND_ISSUES_EXIT, r.out + r.err);
    writeFileSync(join(dir, 'bad.yaml'), yaml.replace('subset: v4', 'subset: v1'));
    r = await ctl('analyze', '--use-kube=false', dir);
    assert.equal(r.code, 0, r.out + r.err);
    assert.doesNotMatch(r.out, /IST0101/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
