import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, encodeAny, loadGrpcServices, structString,
  type Address as PbAddress, type Authorization as PbAuthorization, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse,
} from '@ambit/api';
import { createTlsCa, issueTlsCertificate } from '@ambit/pki';
import { createReadiness } from '../admin/readiness.js';
import { createStateStore } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';
import { buildXdsNode, createXdsClient, type XdsClient } from './xds-client.js';

const SLEEP = 'Kubernetes//Pod/default/sleep-1';
const ECHO = 'Kubernetes//Pod/echo/echo-1';
const ECHO_SVC = 'echo/echo.echo.svc.cluster.local';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.test-token.sig';

const ip = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const workload = (uid: string, ns: string, name: string, addr: Buffer): PbAddress => ({
  workload: { uid, name, namespace: ns, addresses: [addr], tunnel_protocol: 'HBONE', service_account: name.split('-')[0], node: 'node-1' },
});
const echoService: PbAddress = {
  service: { name: 'echo', namespace: 'echo', hostname: 'echo.echo.svc.cluster.local', addresses: [{ network: '', address: ip('10.96.0.10') }], ports: [{ service_port: 80, target_port: 8080 }] },
};
const allowSleep: PbAuthorization = {
  name: 'allow-sleep', namespace: 'echo', scope: 'NAMESPACE', action: 'ALLOW',
  groups: [{ rules: [{ matches: [{ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] }] }] }],
};

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Stream {
  readonly metadata: grpc.Metadata;
  readonly requests: DeltaDiscoveryRequest[];
  readonly call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
}

/** A delta ADS server that records requests and pushes what a test tells it to. */
interface FakeAds {
  readonly port: number;
  readonly streams: Stream[];
  push(stream: Stream, typeUrl: string, resources: Array<{ name: string; version: string; message: object }>, removed?: string[]): string;
  stop(): void;
}

async function startFakeAds(tls: { certPem: string; keyPem: string }, port = 0): Promise<FakeAds> {
  const server = new grpc.Server();
  const streams: Stream[] = [];
  let nonce = 0;
  server.addService(loadGrpcServices().ads, {
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => {
      const s: Stream = { metadata: call.metadata, requests: [], call };
      streams.push(s);
      call.on('data', (req: DeltaDiscoveryRequest) => s.requests.push(req));
      call.on('error', () => {});
    },
  });
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }], false);
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port: bound,
    streams,
    push(stream, typeUrl, resources, removed = []) {
      const n = `nonce-${++nonce}`;
      stream.call.write({
        type_url: typeUrl, nonce: n, removed_resources: removed,
        resources: resources.map((r) => ({ name: r.name, version: r.version, resource: encodeAny(typeUrl, r.message) })),
      });
      return n;
    },
    stop() {
      server.forceShutdown();
    },
  };
}

async function fixture(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-xds-client-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createTlsCa({ commonName: 'test mesh root' });
  const serverCert = await issueTlsCertificate(ca, { commonName: 'istiod', ipAddresses: ['127.0.0.1'], usages: ['server'], ttlSeconds: 3600 });
  const rootCaPath = join(dir, 'root-cert.pem');
  writeFileSync(rootCaPath, ca.certPem);
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, `${TOKEN}\n`);
  const store = createStateStore();
  const updater = createStateUpdater({ store });
  const registry = new Registry();
  const node = buildXdsNode({
    instanceIp: '10.0.0.2', podName: 'ztunnel-abcde', podNamespace: 'istio-system', nodeName: 'node-1', clusterId: 'Kubernetes',
    proxyMetadata: { CUSTOM: 'yes' },
  });
  const makeClient = (port: number, overrides: { tokenPath?: string } = {}): XdsClient => {
    const client = createXdsClient({
      address: `https://127.0.0.1:${port}`, rootCaPath, authToken: { file: overrides.tokenPath ?? tokenPath }, clusterId: 'Kubernetes',
      headers: { 'x-extra': 'on' }, node, updater, registry, logger: pino({ level: 'silent' }), backoff: { initialMs: 10, maxMs: 100 },
    });
    t.after(() => client.close());
    return client;
  };
  return { dir, serverCert, store, registry, makeClient };
}

/** The request of a type answering `nonce` (an ACK or a NACK). */
const answerTo = (s: Stream, nonce: string) => () => s.requests.find((r) => r.response_nonce === nonce);

test('delta xDS: wildcard subscribe, apply, ACK/NACK by nonce, removals, reconnect with initial_resource_versions, readiness after first sync', async (t) => {
  const { serverCert, store, registry, makeClient } = await fixture(t);
  let ads = await startFakeAds(serverCert);
  t.after(() => ads.stop());
  const client = makeClient(ads.port);
  const readiness = createReadiness();
  const done = readiness.register('xds');
  void client.synced.then((ok) => { if (ok) done(); });
  client.start();

  // Initial wildcard subscription: one request per type, empty subscribe list, nothing held yet, node and auth.
  const s1 = await waitFor('initial requests', () => ads.streams[0]?.requests.length === 2 && ads.streams[0]);
  assert.deepEqual(s1.requests.map((r) => r.type_url), [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL]);
  for (const r of s1.requests) {
    assert.deepEqual(r.resource_names_subscribe, []);
    assert.deepEqual(r.initial_resource_versions, {});
    assert.equal(r.response_nonce, '');
    assert.equal(r.node?.id, 'ztunnel~10.0.0.2~ztunnel-abcde.istio-system~istio-system.svc.cluster.local');
    assert.equal(structString(r.node?.metadata, 'NAME'), 'ztunnel-abcde');
    assert.equal(structString(r.node?.metadata, 'NAMESPACE'), 'istio-system');
    assert.equal(structString(r.node?.metadata, 'INSTANCE_IPS'), '10.0.0.2');
    assert.equal(structString(r.node?.metadata, 'NODE_NAME'), 'node-1');
    assert.equal(structString(r.node?.metadata, 'CLUSTER_ID'), 'Kubernetes');
    assert.equal(structString(r.node?.metadata, 'CUSTOM'), 'yes');
  }
  assert.deepEqual(s1.metadata.get('authorization'), [`Bearer ${TOKEN}`]);
  assert.deepEqual(s1.metadata.get('clusterid'), ['Kubernetes']);
  assert.deepEqual(s1.metadata.get('x-extra'), ['on']);
  assert.equal(readiness.isReady(), false);

  // Addresses, one of them bad: NACK names it; the others apply.
  const n1 = ads.push(s1, ADDRESS_TYPE_URL, [
    { name: SLEEP, version: 'v1', message: workload(SLEEP, 'default', 'sleep-1', ip('10.0.1.5')) },
    { name: ECHO, version: 'v1', message: workload(ECHO, 'echo', 'echo-1', ip('10.0.2.7')) },
    { name: ECHO_SVC, version: 'v1', message: echoService },
    { name: 'Kubernetes//Pod/default/broken', version: 'v1', message: { workload: { uid: 'Kubernetes//Pod/default/broken', addresses: [Buffer.from([10, 0, 1])] } } },
  ]);
  const nack = await waitFor('NACK of the Address response', answerTo(s1, n1));
  assert.equal(nack.type_url, ADDRESS_TYPE_URL);
  assert.equal(nack.error_detail?.code, 3);
  assert.match(nack.error_detail?.message ?? '', /1 resource\(s\) rejected: \[Kubernetes\/\/Pod\/default\/broken\] Address "Kubernetes\/\/Pod\/default\/broken": workload\.addresses\[0\]: 3 bytes/);
  assert.equal(store.workloadByAddress('', '10.0.1.5')?.uid, SLEEP);
  assert.equal(store.workloadByAddress('', '10.0.2.7')?.uid, ECHO);
  assert.equal(store.serviceByVip('', '10.96.0.10')?.hostname, 'echo.echo.svc.cluster.local');
  assert.equal(store.workloadByUid('Kubernetes//Pod/default/broken'), undefined);
  // Only Address has synced: not ready yet.
  assert.equal(readiness.isReady(), false);
  assert.deepEqual(readiness.pending(), ['xds']);

  const n2 = ads.push(s1, AUTHORIZATION_TYPE_URL, [{ name: 'echo/allow-sleep', version: 'v1', message: allowSleep }]);
  const ack = await waitFor('ACK of the Authorization response', answerTo(s1, n2));
  assert.equal(ack.type_url, AUTHORIZATION_TYPE_URL);
  assert.equal(ack.error_detail ?? undefined, undefined);
  assert.equal(store.policyByKey('echo/allow-sleep')?.action, 'Allow');
  await waitFor('readiness', () => readiness.isReady());
  assert.equal(client.status().synced, true);

  // A removal, and an update that breaks a good resource: the removal applies, the old sleep stays in force.
  const n3 = ads.push(s1, ADDRESS_TYPE_URL, [{ name: SLEEP, version: 'v2', message: workload(SLEEP, 'default', 'sleep-1', Buffer.from([1])) }], [ECHO]);
  const nack2 = await waitFor('NACK of the bad update', answerTo(s1, n3));
  assert.match(nack2.error_detail?.message ?? '', /\[Kubernetes\/\/Pod\/default\/sleep-1\]/);
  assert.equal(store.workloadByUid(ECHO), undefined);
  assert.equal(store.workloadByAddress('', '10.0.1.5')?.uid, SLEEP);
  const n4 = ads.push(s1, AUTHORIZATION_TYPE_URL, [], ['echo/allow-sleep']);
  await waitFor('ACK of the policy removal', answerTo(s1, n4));
  assert.equal(store.policyByKey('echo/allow-sleep'), undefined);
  const n5 = ads.push(s1, AUTHORIZATION_TYPE_URL, [{ name: 'echo/allow-sleep', version: 'v3', message: allowSleep }]);
  await waitFor('ACK of the policy re-add', answerTo(s1, n5));

  const metrics = await registry.metrics();
  assert.match(metrics, /^istio_xds_message_total\{url="type\.googleapis\.com\/istio\.workload\.Address"\} 2$/m);
  assert.match(metrics, /^istio_xds_message_total\{url="type\.googleapis\.com\/istio\.security\.Authorization"\} 3$/m);

  // The controller goes away: the state stays; the client reconnects with what it holds.
  const port = ads.port;
  ads.stop();
  await waitFor('the stream to end', () => !client.status().connected);
  await new Promise((r) => setTimeout(r, 150)); // a few reconnect attempts fail meanwhile
  assert.equal(store.workloadByAddress('', '10.0.1.5')?.uid, SLEEP);
  assert.equal(store.serviceByVip('', '10.96.0.10')?.hostname, 'echo.echo.svc.cluster.local');
  assert.equal(store.policyByKey('echo/allow-sleep')?.action, 'Allow');
  assert.equal(readiness.isReady(), true);
  assert.match(await registry.metrics(), /^istio_xds_connection_terminations_total\{reason="ConnectionError"\} [1-9]\d*$/m);

  ads = await startFakeAds(serverCert, port);
  const s2 = await waitFor('requests on the new stream', () => ads.streams[0]?.requests.length === 2 && ads.streams[0]);
  const [addr, authz] = s2.requests;
  // sleep is held at v1 (v2 was rejected), echo was removed, the broken workload was never held.
  assert.deepEqual(addr?.initial_resource_versions, { [SLEEP]: 'v1', [ECHO_SVC]: 'v1' });
  assert.deepEqual(authz?.initial_resource_versions, { 'echo/allow-sleep': 'v3' });
  assert.deepEqual(addr?.resource_names_subscribe, []);
  assert.equal(store.workloadByAddress('', '10.0.1.5')?.uid, SLEEP);

  // The new server's answer applies as usual.
  const n6 = ads.push(s2, ADDRESS_TYPE_URL, [{ name: SLEEP, version: 'v4', message: workload(SLEEP, 'default', 'sleep-1', ip('10.0.1.6')) }]);
  await waitFor('ACK on the new stream', answerTo(s2, n6));
  assert.equal(store.workloadByAddress('', '10.0.1.6')?.uid, SLEEP);
  assert.equal(store.workloadByAddress('', '10.0.1.5'), undefined);
  assert.equal(client.status().resourceVersions[ADDRESS_TYPE_URL]?.[SLEEP], 'v4');
});

test('delta xDS: an unreadable token keeps the client retrying (state untouched, not ready) until the file appears', async (t) => {
  const { dir, serverCert, store, makeClient } = await fixture(t);
  const ads = await startFakeAds(serverCert);
  t.after(() => ads.stop());
  const tokenPath = join(dir, 'later-token');
  const client = makeClient(ads.port, { tokenPath });
  client.start();
  await waitFor('a failed attempt naming the token file', () => client.status().lastError?.includes(tokenPath));
  assert.equal(ads.streams.length, 0);
  assert.equal(client.status().synced, false);
  assert.equal(store.listWorkloads().length, 0);
  writeFileSync(tokenPath, TOKEN);
  const s = await waitFor('stream after the token appears', () => ads.streams[0]?.requests.length === 2 && ads.streams[0]);
  assert.deepEqual(s.metadata.get('authorization'), [`Bearer ${TOKEN}`]);
  ads.push(s, ADDRESS_TYPE_URL, []);
  ads.push(s, AUTHORIZATION_TYPE_URL, []);
  // Empty initial responses still complete the first sync (istiod answers every initial wildcard request).
  assert.equal(await client.synced, true);
});

test('delta xDS: close before the first sync resolves synced with false and stops reconnecting', async (t) => {
  const { makeClient } = await fixture(t);
  const client = makeClient(1); // nothing listens on port 1
  client.start();
  await waitFor('a failed attempt', () => client.status().failures > 0);
  client.close();
  assert.equal(await client.synced, false);
  const failures = client.status().failures;
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(client.status().failures, failures);
});

test('the agent with XDS_ADDRESS and CA_ADDRESS runs on the xDS client and is ready only after the first sync', async (t) => {
  const { dir, serverCert } = await fixture(t);
  const ads = await startFakeAds(serverCert);
  t.after(() => ads.stop());
  const { loadConfig } = await import('../config/load.js');
  const { createApp } = await import('../app.js');
  writeFileSync(join(dir, 'token'), TOKEN);
  const config = loadConfig({
    XDS_ADDRESS: `https://127.0.0.1:${ads.port}`, XDS_ROOT_CA: join(dir, 'root-cert.pem'), CA_ADDRESS: `https://127.0.0.1:${ads.port}`,
    CA_ROOT_CA: join(dir, 'root-cert.pem'), AUTH_TOKEN: join(dir, 'token'), INSTANCE_IP: '10.0.0.2', POD_NAME: 'ztunnel-x', POD_NAMESPACE: 'istio-system',
    AMBIT_ADMIN_ADDRESS: '127.0.0.1:0', AMBIT_METRICS_ADDRESS: '127.0.0.1:0', AMBIT_READINESS_ADDRESS: '127.0.0.1:0',
    AMBIT_CNI_SOCKET: join(dir, 'cni.sock'), AMBIT_POD_SNAPSHOT: join(dir, 'pods.json'), LOG_LEVEL: 'silent',
  });
  const app = await createApp(config, { logger: pino({ level: 'silent' }), registry: new Registry(), version: 'test', exit: () => {} });
  t.after(() => app.shutdown('test end'));
  const started = app.start();
  const s = await waitFor('the agent to subscribe', () => ads.streams[0]?.requests.length === 2 && ads.streams[0]);
  assert.deepEqual(app.readiness.pending(), ['initial xDS sync', 'pod snapshot']);
  ads.push(s, ADDRESS_TYPE_URL, [{ name: SLEEP, version: 'v1', message: workload(SLEEP, 'default', 'sleep-1', ip('10.0.1.5')) }]);
  await waitFor('the workload', () => app.state.workloadByAddress('', '10.0.1.5'));
  assert.ok(app.readiness.pending().includes('initial xDS sync'));
  ads.push(s, AUTHORIZATION_TYPE_URL, []);
  await started;
  assert.equal(app.readiness.isReady(), true);
});
