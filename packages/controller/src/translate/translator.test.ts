import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, decodeAny,
  type Address, type Authorization, type KubeObject,
} from '@ambit/api';
import { createResourceStore, type ResourceStore } from '../xds/resource-store.js';
import { createMemoryIndex } from './object-index.js';
import { createTranslator, type StatusRef } from './translator.js';
import type { StatusCondition } from './authorization.js';
import { authorizationPolicy, MESH, namespace, peerAuthentication, pod, service, waypointGateway } from './test-fixtures.js';

function setup(objects: KubeObject[] = []) {
  const index = createMemoryIndex();
  const store = createResourceStore();
  const statusLog: { ref: StatusRef; conditions: StatusCondition[] }[] = [];
  const translator = createTranslator({
    index, store, mesh: MESH, logger: pino({ level: 'silent' }),
    onStatus: (ref, conditions) => statusLog.push({ ref, conditions }),
  });
  for (const o of objects) index.set(o);
  translator.resyncAll();
  const changes: string[] = [];
  store.onChange((cs) => { for (const [, names] of cs) changes.push(...names); });
  const apply = (o: KubeObject): void => {
    index.set(o);
    translator.changed(o.kind!, o.metadata.namespace ?? '', o.metadata.name);
  };
  const remove = (kind: string, ns: string, name: string): void => {
    index.delete(kind, ns, name);
    translator.changed(kind, ns, name);
  };
  return { index, store, translator, statusLog, changes, apply, remove };
}

function address(store: ResourceStore, name: string): Address | undefined {
  const r = store.get(ADDRESS_TYPE_URL, name);
  return r ? decodeAny<Address>(r.any) : undefined;
}
function authorization(store: ResourceStore, name: string): Authorization | undefined {
  const r = store.get(AUTHORIZATION_TYPE_URL, name);
  return r ? decodeAny<Authorization>(r.any) : undefined;
}

const cartPod = (n: number, labels: Record<string, string> = {}) => pod('shop', `cart-${n}`, { ip: `10.0.1.${n}`, labels: { app: 'cart', ...labels }, ports: [{ name: 'http', containerPort: 8080 }] });
const cartSvc = (ports = [{ name: 'http', port: 80, targetPort: 'http' as number | string }]) => service('shop', 'cart', { selector: { app: 'cart' }, clusterIP: '10.96.1.1', ports });

test('resync writes workloads under their uid, services under ns/hostname, with IP aliases', () => {
  const { store } = setup([namespace('shop'), cartPod(1), cartPod(2), cartSvc()]);
  assert.deepEqual([...store.names(ADDRESS_TYPE_URL)].sort(), [
    'Kubernetes//Pod/shop/cart-1', 'Kubernetes//Pod/shop/cart-2', 'shop/cart.shop.svc.cluster.local',
  ]);
  assert.deepEqual([...store.resolve(ADDRESS_TYPE_URL, '/10.96.1.1')].sort(), [
    'Kubernetes//Pod/shop/cart-1', 'Kubernetes//Pod/shop/cart-2', 'shop/cart.shop.svc.cluster.local',
  ]);
  const w = address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!;
  assert.deepEqual(w.services!['shop/cart.shop.svc.cluster.local']!.ports!.map((p) => [p.service_port, p.target_port]), [[80, 8080]]);
});

test('a pod change rewrites only that pod\'s workload', () => {
  const pods = Array.from({ length: 20 }, (_, i) => cartPod(i + 1));
  const { apply, changes, store } = setup([namespace('shop'), cartSvc(), ...pods]);
  apply(pod('shop', 'cart-3', { ip: '10.0.1.3', labels: { app: 'cart' }, ready: false, ports: [{ name: 'http', containerPort: 8080 }] }));
  assert.deepEqual(changes, ['Kubernetes//Pod/shop/cart-3']);
  assert.equal(address(store, 'Kubernetes//Pod/shop/cart-3')!.workload!.status, 'UNHEALTHY');
  changes.length = 0;
  apply(pod('shop', 'cart-3', { ip: '10.0.1.3', labels: { app: 'cart' }, ready: false, ports: [{ name: 'http', containerPort: 8080 }] }));
  assert.deepEqual(changes, [], 'identical content is not re-announced');
});

test('a Service change recomputes the workloads it selects before and after', () => {
  const { apply, store, remove } = setup([namespace('shop'), cartPod(1), cartPod(2, { tier: 'canary' }), cartSvc()]);
  apply(cartSvc([{ name: 'http', port: 80, targetPort: 'http' }, { name: 'admin', port: 9000, targetPort: 9001 }]));
  const ports = (uid: string) => address(store, uid)!.workload!.services!['shop/cart.shop.svc.cluster.local']?.ports!.map((p) => p.service_port);
  assert.deepEqual(ports('Kubernetes//Pod/shop/cart-1'), [80, 9000]);
  apply(service('shop', 'cart', { selector: { app: 'cart', tier: 'canary' }, clusterIP: '10.96.1.1' }));
  assert.equal(ports('Kubernetes//Pod/shop/cart-1'), undefined, 'no longer selected');
  assert.deepEqual(ports('Kubernetes//Pod/shop/cart-2'), [80]);
  remove('Service', 'shop', 'cart');
  assert.equal(address(store, 'shop/cart.shop.svc.cluster.local'), undefined);
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-2')!.workload!.services, {});
});

test('a Namespace label change binds its services and pods to the waypoint; a Gateway created later binds them too', () => {
  const { apply, store, remove, statusLog } = setup([namespace('shop'), cartPod(1), cartSvc()]);
  const svcWaypoint = () => address(store, 'shop/cart.shop.svc.cluster.local')!.service!.waypoint;
  const podWaypoint = () => address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.waypoint;
  const bound = () => statusLog.filter((s) => s.ref.kind === 'Service').at(-1)?.conditions.map((c) => `${c.type} ${c.status} ${c.reason}`);
  apply(namespace('shop', { 'istio.io/use-waypoint': 'waypoint' }));
  assert.equal(svcWaypoint(), null);
  assert.deepEqual(bound(), ['istio.io/WaypointBound False WaypointNotFound']);
  apply(waypointGateway('shop', 'waypoint', { waypointFor: 'all' }));
  assert.equal(svcWaypoint()?.hostname?.hostname, 'waypoint.shop.svc.cluster.local');
  assert.deepEqual(bound(), ['istio.io/WaypointBound True WaypointAccepted']);
  assert.equal(podWaypoint()?.hbone_mtls_port, 15008);
  apply(waypointGateway('shop', 'waypoint', { waypointFor: 'service' }));
  assert.ok(svcWaypoint());
  assert.equal(podWaypoint(), null, 'service-only waypoint unbinds the pod');
  remove('Gateway', 'shop', 'waypoint');
  assert.equal(svcWaypoint(), null);
  apply(namespace('shop'));
  assert.deepEqual(bound(), [], 'conditions cleared once nothing names a waypoint');
});

test('a selector AuthorizationPolicy is served and listed on the workloads it selects; deleting it removes both', () => {
  const { apply, store, remove, statusLog } = setup([namespace('shop'), cartPod(1), pod('shop', 'web-1', { ip: '10.0.1.99', labels: { app: 'web' } })]);
  apply(authorizationPolicy('shop', 'cart-allow', { selector: { matchLabels: { app: 'cart' } }, rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] }));
  assert.equal(authorization(store, 'shop/cart-allow')?.scope, 'WORKLOAD_SELECTOR');
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.authorization_policies, ['shop/cart-allow']);
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/web-1')!.workload!.authorization_policies, []);
  assert.deepEqual(statusLog.at(-1), {
    ref: { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'cart-allow', generation: 3 },
    conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' }],
  });
  // Relabelled to select web instead.
  apply(authorizationPolicy('shop', 'cart-allow', { selector: { matchLabels: { app: 'web' } } }));
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.authorization_policies, []);
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/web-1')!.workload!.authorization_policies, ['shop/cart-allow']);
  remove('AuthorizationPolicy', 'shop', 'cart-allow');
  assert.equal(authorization(store, 'shop/cart-allow'), undefined);
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/web-1')!.workload!.authorization_policies, []);
});

test('an invalid policy update keeps the last good version and reports InvalidValue', () => {
  const { apply, store, statusLog, translator } = setup([namespace('shop')]);
  apply(authorizationPolicy('shop', 'deny-ips', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.9.0.0/16'] } }] }] }));
  const good = store.get(AUTHORIZATION_TYPE_URL, 'shop/deny-ips')!.version;
  apply(authorizationPolicy('shop', 'deny-ips', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.9.0.0/99'] } }] }] }));
  assert.equal(store.get(AUTHORIZATION_TYPE_URL, 'shop/deny-ips')!.version, good);
  const last = statusLog.at(-1)!;
  assert.deepEqual([last.conditions[0]!.status, last.conditions[0]!.reason], ['False', 'InvalidValue']);
  assert.match(last.conditions[0]!.message, /spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[0\]: "10\.9\.0\.0\/99"/);
  assert.equal(translator.statuses().length, 1);
});

test('PeerAuthentication STRICT in a namespace: the static policy is served and the namespace\'s workloads list it', () => {
  const { apply, store, remove } = setup([namespace('shop'), namespace('other'), cartPod(1), pod('other', 'x', { ip: '10.0.9.1' })]);
  assert.equal(authorization(store, 'istio-system/istio_converted_static_strict'), undefined);
  apply(peerAuthentication('shop', 'default', { mtls: { mode: 'STRICT' } }));
  assert.equal(authorization(store, 'istio-system/istio_converted_static_strict')?.action, 'DENY');
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.authorization_policies, ['istio-system/istio_converted_static_strict']);
  assert.deepEqual(address(store, 'Kubernetes//Pod/other/x')!.workload!.authorization_policies, []);
  apply(peerAuthentication('shop', 'cart-metrics', { selector: { matchLabels: { app: 'cart' } }, portLevelMtls: { 9100: { mode: 'PERMISSIVE' } } }, '2026-03-01T00:00:00Z'));
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.authorization_policies, ['shop/converted_peer_authentication_cart-metrics']);
  assert.ok(authorization(store, 'shop/converted_peer_authentication_cart-metrics'));
  remove('PeerAuthentication', 'shop', 'cart-metrics');
  remove('PeerAuthentication', 'shop', 'default');
  assert.equal(authorization(store, 'istio-system/istio_converted_static_strict'), undefined);
  assert.equal(authorization(store, 'shop/converted_peer_authentication_cart-metrics'), undefined);
  assert.deepEqual(address(store, 'Kubernetes//Pod/shop/cart-1')!.workload!.authorization_policies, []);
});

test('two ServiceEntries declaring the same host: deleting one leaves the other\'s Service in place', () => {
  const se = (name: string, port: number): KubeObject => ({
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name, namespace: 'shop' },
    spec: { hosts: ['api.example.com'], ports: [{ number: port, name: 'p' }], resolution: 'NONE' },
  });
  const { apply, remove, store } = setup([namespace('shop')]);
  apply(se('a', 443));
  apply(se('b', 8443));
  remove('ServiceEntry', 'shop', 'b');
  assert.equal(address(store, 'shop/api.example.com')!.service!.name, 'a');
  remove('ServiceEntry', 'shop', 'a');
  assert.equal(address(store, 'shop/api.example.com'), undefined);
});

test('deleting a pod removes its workload and its IP alias', () => {
  const { remove, store } = setup([namespace('shop'), cartPod(1)]);
  remove('Pod', 'shop', 'cart-1');
  assert.equal(address(store, 'Kubernetes//Pod/shop/cart-1'), undefined);
  assert.deepEqual([...store.resolve(ADDRESS_TYPE_URL, '/10.0.1.1')], []);
});

test('a Service created before its waypoint Service exists binds once the deployer creates that Service', () => {
  const gw = waypointGateway('shop', 'waypoint', { hostname: false });
  const { apply, store } = setup([namespace('shop'), gw, service('shop', 'cart', { clusterIP: '10.96.1.1', labels: { 'istio.io/use-waypoint': 'waypoint' } })]);
  assert.equal(address(store, 'shop/cart.shop.svc.cluster.local')!.service!.waypoint, null);
  apply(service('shop', 'waypoint', { clusterIP: '10.96.1.9', labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller' }, ports: [{ name: 'mesh', port: 15008 }] }));
  assert.equal(address(store, 'shop/cart.shop.svc.cluster.local')!.service!.waypoint?.hostname?.hostname, 'waypoint.shop.svc.cluster.local');
});
