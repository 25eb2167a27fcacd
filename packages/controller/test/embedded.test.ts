// Embedded mode end to end: a directory of YAML -> the controller (loopback, no Kubernetes) -> the node agent's
// real xDS client over TLS, verified with the root the controller generated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createStateStore, createStateUpdater, createXdsClient, StateStore } from '@ambit/ztunnel';
import { createApp, loadSettings, type App } from '../src/index.js';
import { waitFor } from './harness.js';

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: {istio.io/dataplane-mode: ambient}
`;
function pod(name: string, ip: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: demo, labels: {app: web}}
spec: {nodeName: node1, serviceAccountName: web, containers: [{name: app, image: echo}]}
status:
  phase: Running
  podIP: ${ip}
  podIPs: [{ip: ${ip}}]
  conditions: [{type: Ready, status: "True"}]
`;
}
const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20]
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`;

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

test('embedded mode: Namespace, Pod and Service from a directory reach an xDS client; edits and deletions follow; bad YAML keeps the last good objects', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-embedded-'));
  let app: App | undefined;
  let client: ReturnType<typeof createXdsClient> | undefined;
  try {
    writeFileSync(join(dir, 'namespace.yaml'), NAMESPACE);
    writeFileSync(join(dir, 'workloads.yaml'), `${pod('web-1', '10.0.1.5')}---\n${SERVICE}`);
    const settings = loadSettings({ AMBIT_CONFIG_DIR: dir, AMBIT_XDS_PORT: '0', AMBIT_MONITORING_PORT: '0', POD_NAME: 'embedded' });
    app = createApp(settings, { logger: pino({ level: 'silent' }), registry: new Registry() });
    await app.start();
    assert.equal(app.ready(), true);
    assert.equal((await httpGet(app.monitoringPort(), '/ready')).status, 200);

    const store: StateStore = createStateStore();
    client = createXdsClient({
      address: `https://127.0.0.1:${app.xdsPort()}`,
      rootCaPath: join(dir, '.ambit', 'root-cert.pem'),
      authToken: { token: 'unused-in-embedded-mode' },
      clusterId: 'Kubernetes',
      node: { id: 'ztunnel~10.0.1.1~ztunnel-a.istio-system~istio-system.svc.cluster.local', metadata: { NODE_NAME: 'node1' } },
      updater: createStateUpdater({ store }),
      logger: pino({ level: 'silent' }),
      backoff: { initialMs: 10, maxMs: 200 },
    });
    client.start();
    assert.equal(await client.synced, true);

    const workload = await waitFor('workload web-1', () => store.workloadByAddress('', '10.0.1.5'), 5000);
    assert.equal(workload.name, 'web-1');
    assert.equal(workload.namespace, 'demo');
    assert.equal(workload.serviceAccount, 'web');
    const service = await waitFor('service web', () => store.serviceByVip('', '10.96.0.20'), 5000);
    assert.equal(service.hostname, 'web.demo.svc.cluster.local');
    assert.deepEqual(store.endpointsOf(service).map((e) => e.workload.name), ['web-1']);

    // A second replica appears; the first file becomes invalid (its objects stay); then the Service is deleted.
    writeFileSync(join(dir, 'more.yaml'), pod('web-2', '10.0.1.6'));
    await waitFor('workload web-2', () => store.workloadByAddress('', '10.0.1.6'), 5000);
    assert.equal(store.endpointsOf(service).length, 2);

    writeFileSync(join(dir, 'workloads.yaml'), `${pod('web-1', '10.0.1.5')}---\nkind: Service\nmetadata:\n  name: web\n  name: twice\n`);
    const errors = await waitFor('file error', () => app!.directory()!.errors()['workloads.yaml'], 5000);
    assert.match(errors, /^workloads.yaml:\d+:\d+: Map keys must be unique/);
    assert.ok(store.serviceByVip('', '10.96.0.20'), 'the last good Service stays while its file is invalid');

    unlinkSync(join(dir, 'workloads.yaml'));
    await waitFor('service and web-1 removed', () => (store.serviceByVip('', '10.96.0.20') === undefined && store.workloadByAddress('', '10.0.1.5') === undefined) || undefined, 5000);
    assert.ok(store.workloadByAddress('', '10.0.1.6'), 'web-2 from the other file stays');

    const syncz = JSON.parse((await httpGet(app.monitoringPort(), '/debug/syncz')).body) as { clients: { proxy: string; caller: string }[] };
    assert.deepEqual(syncz.clients.map((c) => [c.proxy, c.caller]), [['ztunnel~10.0.1.1~ztunnel-a.istio-system~istio-system.svc.cluster.local', 'anonymous']]);
    const metrics = (await httpGet(app.monitoringPort(), '/metrics')).body;
    assert.match(metrics, /^pilot_xds\{version="0\.1\.0"\} 1$/m);
    assert.match(metrics, /^pilot_xds_pushes\{type="wads"\} [1-9]\d*$/m);
  } finally {
    client?.close();
    await app?.stop('test done');
    rmSync(dir, { recursive: true, force: true });
  }
});
