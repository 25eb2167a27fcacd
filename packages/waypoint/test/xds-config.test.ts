// The waypoint's configuration objects over delta xDS: the agent's xDS client with the raw-type hook, against a
// fake ADS server (plaintext gRPC on loopback), into the config store: ACK, NACK naming the field, last good kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import {
  ADDRESS_TYPE_URL, CONFIG_OBJECT_TYPE_URL, configObjectName, encodeConfigObject, loadGrpcServices,
  type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type KubeObject,
} from '@ambit/api';
import { createStateStore, createStateUpdater, createXdsClient } from '@ambit/ztunnel';
import { createConfigStore } from '../src/state/config-store.js';
import { configObjectXdsType } from '../src/discovery/config-source.js';
import { waitFor, vs } from './harness.js';

test('configuration objects arrive over delta xDS: applied and ACKed; an invalid one is NACKed by name and field, the last good stays', async (t) => {
  const server = new grpc.Server();
  const requests: DeltaDiscoveryRequest[] = [];
  let call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> | undefined;
  server.addService(loadGrpcServices().ads, {
    DeltaAggregatedResources: (c: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => {
      call = c;
      c.on('data', (r: DeltaDiscoveryRequest) => requests.push(r));
      c.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());

  const store = createConfigStore({ domainSuffix: 'cluster.local', gatewayName: 'waypoint', gatewayNamespace: 'mesh' });
  const addresses = createStateStore();
  const client = createXdsClient({
    address: `http://127.0.0.1:${port}`, rootCaPath: '/nonexistent', authToken: { token: 'test-token' }, clusterId: 'Kubernetes',
    node: { id: 'waypoint~10.0.0.9~waypoint-abc.mesh~mesh.svc.cluster.local', metadata: {} },
    updater: createStateUpdater({ store: addresses }), logger: pino({ level: 'silent' }),
    typeUrls: [ADDRESS_TYPE_URL], rawTypes: [configObjectXdsType(store)], backoff: { initialMs: 10, maxMs: 100 },
  });
  t.after(() => client.close());
  client.start();
  await waitFor(() => requests.length >= 2, 5000, 'the two wildcard subscriptions');
  assert.deepEqual(requests.map((r) => r.type_url).sort(), [ADDRESS_TYPE_URL, CONFIG_OBJECT_TYPE_URL].sort());

  const push = (nonce: string, objects: KubeObject[]): void => {
    call!.write({
      type_url: CONFIG_OBJECT_TYPE_URL, nonce,
      resources: objects.map((o) => ({ name: configObjectName(o), version: nonce, resource: { type_url: CONFIG_OBJECT_TYPE_URL, value: encodeConfigObject(o) } })),
    });
  };
  call!.write({ type_url: ADDRESS_TYPE_URL, nonce: 'a1', resources: [] });
  const good = vs('echo', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v1' } }] }] });
  push('c1', [good]);
  assert.equal(await client.synced, true);
  await waitFor(() => requests.some((r) => r.response_nonce === 'c1'), 5000, 'the answer to c1');
  const ack = requests.find((r) => r.response_nonce === 'c1')!;
  assert.ok(ack && !ack.error_detail?.message, 'c1 is ACKed');
  assert.deepEqual([...store.objects().keys()], ['VirtualService/mesh/echo']);

  push('c2', [vs('echo', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v1' }, weight: 101 }] }] })]);
  await waitFor(() => requests.some((r) => r.response_nonce === 'c2'), 5000, 'the answer to c2');
  const nack = requests.find((r) => r.response_nonce === 'c2')!;
  assert.equal(nack.error_detail?.code, 3);
  assert.match(nack.error_detail!.message!, /\[VirtualService\/mesh\/echo\] VirtualService mesh\/echo: spec\.http\[0\]\.route\[0\]\.weight: must be an integer 0\.\.100, got 101/);
  const route = store.current().routesFor({ hostname: 'echo.mesh.svc.cluster.local', namespace: 'mesh', name: 'echo' }, 80)!;
  assert.equal(route.routes[0]!.action.kind === 'forward' && route.routes[0]!.action.destinations[0]!.weight, 100, 'the last good version stays');
  assert.equal(client.status().resourceVersions[CONFIG_OBJECT_TYPE_URL]!['VirtualService/mesh/echo'], 'c1');
});
