// What the translator writes must be accepted by our node agent exactly as it arrives over xDS: every stored
// resource is decoded from its Any, converted by the agent's xds-convert, validated by its state updater, and the
// resulting state then makes the decisions the objects asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, decodeAddress, decodeAuthorization,
  type Address, type Authorization, type KubeObject,
} from '@ambit/api';
import {
  authorize, convertAddressResponse, convertAuthorizationResponse, createStateStore, createStateUpdater,
  peerAuthenticationModeOf, type DecodedResource,
} from '@ambit/ztunnel';
import { createResourceStore, type ResourceStore } from '../xds/resource-store.js';
import { createMemoryIndex } from './object-index.js';
import { createTranslator } from './translator.js';
import { authorizationPolicy, MESH, namespace, peerAuthentication, pod, service, waypointGateway } from './test-fixtures.js';

const captured = { 'ambient.istio.io/redirection': 'enabled' };

const scene: KubeObject[] = [
  namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }),
  namespace('istio-system'),
  namespace('ops', { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' }),
  pod('shop', 'cart-1', { ip: '10.0.1.11', labels: { app: 'cart' }, serviceAccount: 'cart', annotations: captured, ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9100 }] }),
  pod('shop', 'cart-2', { ip: '10.0.2.12', labels: { app: 'cart' }, serviceAccount: 'cart', annotations: captured, node: 'node-2', ready: false, ports: [{ name: 'http', containerPort: 8080 }] }),
  pod('shop', 'web-1', { ip: '10.0.1.21', labels: { app: 'web' }, serviceAccount: 'web', annotations: captured }),
  pod('ops', 'tool-1', { ip: '10.0.3.31', labels: { app: 'tool' }, annotations: captured }),
  pod('ops', 'waypoint-abc', { ip: '10.0.3.40', serviceAccount: 'waypoint', labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }, annotations: captured }),
  pod('kube-system', 'node-exporter', { ip: '192.168.0.2', hostNetwork: true }),
  service('shop', 'cart', { selector: { app: 'cart' }, clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'metrics', port: 9100, targetPort: 'metrics' }] }),
  service('shop', 'cart-headless', { selector: { app: 'cart' }, clusterIP: 'None', ports: [{ name: 'http', port: 8080 }] }),
  service('ops', 'tool', { selector: { app: 'tool' }, clusterIPs: ['10.96.3.1', 'fd00:96::31'], ipFamilies: ['IPv4', 'IPv6'], trafficDistribution: 'PreferClose' }),
  service('ops', 'waypoint', { clusterIP: '10.96.3.9', labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller' }, ports: [{ name: 'mesh', port: 15008 }] }),
  waypointGateway('ops', 'waypoint', { waypointFor: 'all' }),
  {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'payments', namespace: 'shop' },
    spec: { hosts: ['payments.example.com'], addresses: ['240.240.0.1'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
  },
  {
    apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm-1', namespace: 'shop' },
    spec: { address: '192.168.10.5', labels: { app: 'cart' }, serviceAccount: 'cart-vm', ports: { http: 8080 } },
  },
  peerAuthentication('shop', 'default', { mtls: { mode: 'STRICT' } }),
  peerAuthentication('shop', 'cart-metrics', { selector: { matchLabels: { app: 'cart' } }, portLevelMtls: { 9100: { mode: 'PERMISSIVE' } } }, '2026-02-01T00:00:00Z'),
  authorizationPolicy('shop', 'cart-from-web', {
    selector: { matchLabels: { app: 'cart' } },
    rules: [
      { from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }], to: [{ operation: { ports: ['8080'] } }] },
      { from: [{ source: { namespaces: ['ops'] } }], to: [{ operation: { methods: ['GET'] } }] },
      { to: [{ operation: { ports: ['9100'] } }] },
    ],
  }),
  authorizationPolicy('istio-system', 'deny-blocked', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.66.0.0/16'] } }] }] }),
  authorizationPolicy('ops', 'waypoint-l7', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }),
];

function decodeAll<T>(store: ResourceStore, typeUrl: string, decode: (b: Uint8Array) => T): DecodedResource<T>[] {
  return store.list(typeUrl).map((r) => ({ name: r.name, message: decode(r.any.value) }));
}

test('every translated resource is accepted by the agent and yields the intended L4 decisions', () => {
  const index = createMemoryIndex();
  const store = createResourceStore();
  for (const o of scene) index.set(o);
  const translator = createTranslator({ index, store, mesh: MESH, logger: pino({ level: 'silent' }) });
  translator.resyncAll();

  const addresses = convertAddressResponse(decodeAll<Address>(store, ADDRESS_TYPE_URL, decodeAddress), []);
  const policies = convertAuthorizationResponse(decodeAll<Authorization>(store, AUTHORIZATION_TYPE_URL, decodeAuthorization), []);
  assert.deepEqual(addresses.batch.rejected, []);
  assert.deepEqual(policies.batch.rejected, []);
  assert.equal(addresses.converted.length, store.list(ADDRESS_TYPE_URL).length);

  const state = createStateStore();
  const updater = createStateUpdater({ store: state });
  assert.deepEqual(updater.applyDelta(addresses.batch).rejected, []);
  assert.deepEqual(updater.applyDelta(policies.batch).rejected, []);

  assert.deepEqual(state.listPolicies().map((p) => `${p.namespace}/${p.name}`).sort(), [
    'istio-system/deny-blocked', 'istio-system/istio_converted_static_strict',
    'shop/cart-from-web', 'shop/converted_peer_authentication_cart-metrics',
  ]);
  // Addressing: VIP -> service -> endpoints with per-endpoint target ports; headless by hostname; waypoint binding.
  const cartSvc = state.serviceByVip('', '10.96.1.1')!;
  assert.equal(cartSvc.hostname, 'cart.shop.svc.cluster.local');
  const endpoints = state.endpointsOf(cartSvc).map((e) => `${e.workload.name}:${JSON.stringify(e.ports)}`).sort();
  // The VM names only `http`, so the Service's `metrics` port (named target) is not offered on it.
  assert.deepEqual(endpoints, ['cart-1:{"80":8080,"9100":9100}', 'cart-2:{"80":8080}', 'vm-1:{"80":8080}']);
  assert.equal(state.serviceByHostname('cart-headless.shop.svc.cluster.local')?.vips.length, 0);
  assert.equal(state.serviceByVip('', 'fd00:96::31')?.waypoint?.hboneMtlsPort, 15008);
  const tool = state.workloadByAddress('', '10.0.3.31')!;
  assert.equal(tool.protocol, 'HBONE');
  assert.deepEqual(tool.waypoint?.destination, { namespace: 'ops', hostname: 'waypoint.ops.svc.cluster.local' });
  assert.equal(state.workloadByAddress('', '10.0.3.40')?.waypoint, undefined, 'the waypoint pod has no waypoint');
  assert.equal(state.workloadByAddress('', '192.168.0.2'), undefined, 'host-network pods are not looked up by IP');
  assert.equal(state.workloadByAddress('', '10.0.2.12')?.status, 'Unhealthy');
  assert.equal(state.serviceByHostname('payments.example.com')?.namespace, 'shop');

  // Policy: cart-1 is STRICT except plaintext to 9100, and only web (8080) or anyone on 9100 is allowed.
  const cart = state.workloadByAddress('', '10.0.1.11')!;
  const applicable = state.policiesFor(cart);
  assert.deepEqual(cart.authorizationPolicies, ['shop/cart-from-web', 'shop/converted_peer_authentication_cart-metrics']);
  assert.equal(peerAuthenticationModeOf(applicable), 'PERMISSIVE', 'the converted policy replaces the static one');
  const facts = (sourceIdentity: string | undefined, port: number, sourceIp = '10.0.1.21') => ({
    ...(sourceIdentity ? { sourceIdentity } : {}), sourceIp, destinationIp: '10.0.1.11', destinationPort: port,
  });
  assert.equal(authorize(facts('spiffe://cluster.local/ns/shop/sa/web', 8080), applicable).allow, true);
  assert.equal(authorize(facts(undefined, 8080), applicable).allow, false, 'plaintext on a STRICT port');
  assert.equal(authorize(facts(undefined, 9100), applicable).allow, true, 'plaintext on the PERMISSIVE port');
  assert.equal(authorize(facts('spiffe://cluster.local/ns/ops/sa/default', 8080), applicable).allow, false, 'the L7 rule for ops was dropped');
  assert.equal(authorize(facts('spiffe://cluster.local/ns/shop/sa/web', 8080, '10.66.1.1'), applicable).allow, false, 'global DENY by source IP');

  // A workload in a namespace without PeerAuthentication gets neither.
  const web = state.workloadByAddress('', '10.0.1.21')!;
  assert.deepEqual(web.authorizationPolicies, ['istio-system/istio_converted_static_strict']);
  assert.equal(peerAuthenticationModeOf(state.policiesFor(web)), 'STRICT');
  assert.deepEqual(state.workloadByAddress('', '10.0.3.31')!.authorizationPolicies, []);
});
