import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@ambit/api';
import { ipStringify } from '../xds/ip.js';
import { translateService, translateServiceEntry } from './services.js';
import { contextWith, namespace, service, waypointGateway } from './test-fixtures.js';

test('Service: name, namespace, FQDN hostname, ClusterIPs on the mesh network, ports with target ports', () => {
  const svc = service('bookinfo', 'reviews', {
    selector: { app: 'reviews' }, clusterIPs: ['10.96.0.20', 'fd00:96::20'], ipFamilies: ['IPv4', 'IPv6'],
    ports: [{ name: 'http', port: 9080, targetPort: 'http-web', appProtocol: 'http' }, { name: 'grpc', port: 7070, targetPort: 17070, appProtocol: 'grpc' }, { name: 'raw', port: 5000 }],
  });
  const { ctx } = contextWith([svc], { clusterId: 'Kubernetes', network: 'net1' });
  const s = translateService(svc, ctx).services[0]!;
  assert.equal(s.name, 'reviews');
  assert.equal(s.namespace, 'bookinfo');
  assert.equal(s.hostname, 'reviews.bookinfo.svc.cluster.local');
  assert.deepEqual(s.addresses!.map((a) => `${a.network}/${ipStringify(a.address!)}`), ['net1/10.96.0.20', 'net1/fd00:96::20']);
  assert.deepEqual(s.ports, [
    { service_port: 9080, target_port: 0, app_protocol: 'HTTP11' },
    { service_port: 7070, target_port: 17070, app_protocol: 'GRPC' },
    { service_port: 5000, target_port: 5000 },
  ]);
  assert.equal(s.ip_families, 'DUAL');
  assert.equal(s.waypoint, undefined);
});

test('headless Service has no addresses; ExternalName is not sent; cluster domain is configurable', () => {
  const headless = service('db', 'mysql', { selector: { app: 'mysql' }, clusterIP: 'None' });
  const { ctx } = contextWith([headless], { clusterId: 'c', clusterDomain: 'corp.local' });
  const s = translateService(headless, ctx).services[0]!;
  assert.deepEqual(s.addresses, []);
  assert.equal(s.hostname, 'mysql.db.svc.corp.local');
  assert.deepEqual(translateService(service('db', 'ext', { type: 'ExternalName' }), ctx).services, []);
});

test('trafficDistribution PreferClose -> FAILOVER over network/region/zone/subzone; internalTrafficPolicy Local -> STRICT node', () => {
  const { ctx } = contextWith([]);
  const close = translateService(service('a', 's', { clusterIP: '10.96.0.1', trafficDistribution: 'PreferClose' }), ctx).services[0]!;
  assert.deepEqual(close.load_balancing, { routing_preference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'], mode: 'FAILOVER' });
  const annotated = translateService(service('a', 't', { clusterIP: '10.96.0.2', annotations: { 'networking.istio.io/traffic-distribution': 'PreferClose' } }), ctx).services[0]!;
  assert.equal(annotated.load_balancing?.mode, 'FAILOVER');
  const local = service('a', 'u', { clusterIP: '10.96.0.3' });
  local.spec.internalTrafficPolicy = 'Local';
  assert.deepEqual(translateService(local, ctx).services[0]!.load_balancing, { routing_preference: ['NODE'], mode: 'STRICT' });
});

test('service waypoint from the Service label or the namespace label, only when waypoint-for allows service traffic', () => {
  const svc = service('shop', 'cart', { selector: { app: 'cart' }, clusterIP: '10.96.1.1' });
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const expected = { hostname: { namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' }, hbone_mtls_port: 15008 };
  for (const wf of [undefined, 'service', 'all']) {
    const { ctx } = contextWith([ns, waypointGateway('shop', 'waypoint', wf ? { waypointFor: wf } : {})]);
    assert.deepEqual(translateService(svc, ctx).services[0]!.waypoint, expected, `waypoint-for ${wf ?? '(default)'}`);
  }
  for (const wf of ['workload', 'none']) {
    const { ctx } = contextWith([ns, waypointGateway('shop', 'waypoint', { waypointFor: wf })]);
    const t = translateService(svc, ctx);
    assert.equal(t.services[0]!.waypoint, undefined, `waypoint-for ${wf}`);
    assert.equal(t.waypointProblem?.reason, 'UnsupportedTrafficType');
  }
  const optOut = service('shop', 'direct', { clusterIP: '10.96.1.2', labels: { 'istio.io/use-waypoint': 'none' } });
  const { ctx } = contextWith([ns, waypointGateway('shop', 'waypoint')]);
  assert.equal(translateService(optOut, ctx).services[0]!.waypoint, undefined);
});

test('the waypoint Service itself (gateway.istio.io/managed) never gets a waypoint; ingress-use-waypoint is carried', () => {
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const wpSvc = service('shop', 'waypoint', { clusterIP: '10.96.1.9', labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller' }, ports: [{ name: 'mesh', port: 15008 }] });
  const { ctx } = contextWith([ns, waypointGateway('shop', 'waypoint')]);
  assert.equal(translateService(wpSvc, ctx).services[0]!.waypoint, undefined);
  const ingress = service('shop', 'front', { clusterIP: '10.96.1.3', labels: { 'istio.io/ingress-use-waypoint': 'true' } });
  assert.equal(translateService(ingress, ctx).services[0]!.ingress_use_waypoint, true);
});

test('a waypoint with an IP status address and no hostname is addressed by IP', () => {
  const gw = waypointGateway('shop', 'waypoint', { hostname: false });
  gw.status = { addresses: [{ type: 'IPAddress', value: '10.96.5.5' }] };
  const svc = service('shop', 'cart', { clusterIP: '10.96.1.1', labels: { 'istio.io/use-waypoint': 'waypoint' } });
  const { ctx } = contextWith([gw]);
  const w = translateService(svc, ctx).services[0]!.waypoint!;
  assert.equal(ipStringify(w.address!.address!), '10.96.5.5');
  assert.equal(w.hbone_mtls_port, 15008);
});

test('ServiceEntry: one Service per host with its addresses, ports (target defaults to the port) and SANs', () => {
  const se: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'payments', namespace: 'shop', labels: { 'istio.io/use-waypoint': 'egress' } },
    spec: {
      hosts: ['payments.example.com', 'pay.example.com'], addresses: ['240.240.0.1', '10.200.0.0/16'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }, { number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
      resolution: 'DNS', subjectAltNames: ['spiffe://cluster.local/ns/pay/sa/api'],
    },
  };
  const { ctx } = contextWith([se, waypointGateway('shop', 'egress')]);
  const ss = translateServiceEntry(se, ctx).services;
  assert.deepEqual(ss.map((s) => `${s.namespace}/${s.hostname}`), ['shop/payments.example.com', 'shop/pay.example.com']);
  const s = ss[0]!;
  assert.equal(s.name, 'payments');
  assert.deepEqual(s.addresses!.map((a) => ipStringify(a.address!)), ['240.240.0.1'], 'a CIDR range is not a VIP agents can look up');
  assert.deepEqual(s.ports, [{ service_port: 443, target_port: 443 }, { service_port: 80, target_port: 8080 }]);
  assert.deepEqual(s.subject_alt_names, ['spiffe://cluster.local/ns/pay/sa/api']);
  assert.equal(s.waypoint?.hostname?.hostname, 'egress.shop.svc.cluster.local');
});

test('ServiceEntry with a malformed address is an error naming the field', () => {
  const se: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'bad', namespace: 'shop' },
    spec: { hosts: ['x.example.com'], addresses: ['300.1.1.1'], ports: [{ number: 80, name: 'http' }] },
  };
  const { ctx } = contextWith([]);
  assert.throws(() => translateServiceEntry(se, ctx), /ServiceEntry shop\/bad: spec\.addresses\[0\]: "300\.1\.1\.1" is not an IP address or CIDR/);
});

test('UDP/SCTP ports are left out and a service port appears once (kube-dns lists 53 for TCP and UDP)', () => {
  const svc = service('kube-system', 'kube-dns', {
    clusterIP: '10.96.0.10',
    ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }, { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 }],
  });
  const { ctx } = contextWith([namespace('kube-system'), svc]);
  assert.deepEqual(translateService(svc, ctx).services[0]!.ports!.map((p) => p.service_port), [53, 9153]);
});
