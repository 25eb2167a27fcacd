import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject, Workload } from '@ambit/api';
import { ipStringify } from '../xds/ip.js';
import { translateEndpointSlice, translatePod, translateServiceEntryWorkloads, translateWorkloadEntry } from './workloads.js';
import { contextWith, namespace, pod, service, waypointGateway } from './test-fixtures.js';

function onlyWorkload(objects: KubeObject[], target: KubeObject, mesh?: Parameters<typeof contextWith>[1]): Workload {
  const { ctx } = contextWith(objects, mesh);
  const t = translatePod(target, ctx);
  assert.equal(t.workloads.length, 1);
  return t.workloads[0]!;
}

const reviews = pod('bookinfo', 'reviews-v2-5b4f8c7d9-x2k4p', {
  ip: '10.0.2.17',
  labels: { app: 'reviews', version: 'v2', 'pod-template-hash': '5b4f8c7d9' },
  serviceAccount: 'bookinfo-reviews',
  node: 'node-2',
  owner: { kind: 'ReplicaSet', name: 'reviews-v2-5b4f8c7d9' },
  ports: [{ name: 'http-web', containerPort: 9080 }],
});

test('pod workload: Istio uid, addresses, identity, node, telemetry names from the Deployment and labels', () => {
  const w = onlyWorkload([namespace('bookinfo')], reviews);
  assert.equal(w.uid, 'Kubernetes//Pod/bookinfo/reviews-v2-5b4f8c7d9-x2k4p');
  assert.equal(w.name, 'reviews-v2-5b4f8c7d9-x2k4p');
  assert.equal(w.namespace, 'bookinfo');
  assert.deepEqual(w.addresses!.map((a) => ipStringify(a)), ['10.0.2.17']);
  assert.equal(w.service_account, 'bookinfo-reviews');
  assert.equal(w.trust_domain, '', 'cluster.local is sent empty, like istiod');
  assert.equal(w.node, 'node-2');
  assert.equal(w.cluster_id, 'Kubernetes');
  assert.equal(w.workload_type, 'POD');
  assert.equal(w.workload_name, 'reviews-v2');
  assert.equal(w.canonical_name, 'reviews');
  assert.equal(w.canonical_revision, 'v2');
  assert.equal(w.status, 'HEALTHY');
  assert.equal(w.tunnel_protocol, undefined);
});

test('canonical name prefers service.istio.io/canonical-name, then app.kubernetes.io/name, then app; revision defaults to latest', () => {
  const p = pod('ns', 'p', { ip: '10.0.0.1', labels: { 'app.kubernetes.io/name': 'k8s-name', app: 'app-label', 'service.istio.io/canonical-name': 'canon' } });
  assert.equal(onlyWorkload([], p).canonical_name, 'canon');
  const q = pod('ns', 'q', { ip: '10.0.0.2', labels: { 'app.kubernetes.io/name': 'k8s-name', app: 'app-label', 'app.kubernetes.io/version': '1.2' } });
  const wq = onlyWorkload([], q);
  assert.equal(wq.canonical_name, 'k8s-name');
  assert.equal(wq.canonical_revision, '1.2');
  const bare = onlyWorkload([], pod('ns', 'bare', { ip: '10.0.0.3' }));
  assert.equal(bare.canonical_name, 'bare');
  assert.equal(bare.canonical_revision, 'latest');
  assert.equal(bare.workload_name, 'bare');
  const cron = onlyWorkload([], pod('ns', 'backup-28391840-abcde', { ip: '10.0.0.4', owner: { kind: 'Job', name: 'backup-28391840' } }));
  assert.equal(cron.workload_name, 'backup');
});

test('trust domain other than cluster.local is carried on the workload', () => {
  assert.equal(onlyWorkload([], reviews, { clusterId: 'east', trustDomain: 'corp.example' }).trust_domain, 'corp.example');
  assert.equal(onlyWorkload([], reviews, { clusterId: 'east' }).uid, 'east//Pod/bookinfo/reviews-v2-5b4f8c7d9-x2k4p');
});

test('HEALTHY only when Ready and not being deleted', () => {
  assert.equal(onlyWorkload([], pod('ns', 'a', { ip: '10.0.0.1', ready: false })).status, 'UNHEALTHY');
  assert.equal(onlyWorkload([], pod('ns', 'b', { ip: '10.0.0.2', deleting: true })).status, 'UNHEALTHY');
});

test('pods without an IP and finished pods produce no workload; dual-stack pods carry both addresses', () => {
  const { ctx } = contextWith([]);
  assert.deepEqual(translatePod(pod('ns', 'pending'), ctx).workloads, []);
  assert.deepEqual(translatePod(pod('ns', 'done', { ip: '10.0.0.9', phase: 'Succeeded' }), ctx).workloads, []);
  const w = onlyWorkload([], pod('ns', 'dual', { ips: ['10.0.0.5', 'fd00::5'] }));
  assert.deepEqual(w.addresses!.map((a) => ipStringify(a)), ['10.0.0.5', 'fd00::5']);
});

test('a malformed pod IP is an error naming the pod and field', () => {
  const { ctx } = contextWith([]);
  assert.throws(() => translatePod(pod('ns', 'bad', { ip: '10.0.0.300' }), ctx), /Pod ns\/bad: status\.podIPs\[0\]\.ip: "10\.0\.0\.300" is not an IP address/);
});

test('ambient.istio.io/redirection: enabled makes the workload HBONE; without it, plain TCP', () => {
  const captured = pod('ns', 'a', { ip: '10.0.0.1', annotations: { 'ambient.istio.io/redirection': 'enabled' } });
  assert.equal(onlyWorkload([], captured).tunnel_protocol, 'HBONE');
  const pending = pod('ns', 'b', { ip: '10.0.0.2', annotations: { 'ambient.istio.io/redirection': 'pending' } });
  assert.equal(onlyWorkload([], pending).tunnel_protocol, undefined);
});

test('hostNetwork pods are HOST_NETWORK', () => {
  assert.equal(onlyWorkload([], pod('kube-system', 'proxy', { ip: '192.168.1.10', hostNetwork: true })).network_mode, 'HOST_NETWORK');
});

test('services map: named targetPort resolved through the pod container ports; ports the pod lacks are left out', () => {
  const svc = service('bookinfo', 'reviews', {
    selector: { app: 'reviews' }, clusterIP: '10.96.0.20',
    ports: [
      { name: 'http', port: 9080, targetPort: 'http-web' },
      { name: 'metrics', port: 9090, targetPort: 'metrics' },
      { name: 'admin', port: 8081, targetPort: 18081 },
    ],
  });
  const other = service('bookinfo', 'ratings', { selector: { app: 'ratings' }, clusterIP: '10.96.0.21' });
  const w = onlyWorkload([svc, other], reviews);
  assert.deepEqual(w.services, {
    'bookinfo/reviews.bookinfo.svc.cluster.local': { ports: [{ service_port: 9080, target_port: 9080 }, { service_port: 8081, target_port: 18081 }] },
  });
});

test('headless services are still listed in the workload services map', () => {
  const headless = service('db', 'mysql', { selector: { app: 'mysql' }, clusterIP: 'None', ports: [{ name: 'tcp', port: 3306 }] });
  const w = onlyWorkload([headless], pod('db', 'mysql-0', { ip: '10.0.3.4', labels: { app: 'mysql' } }));
  assert.deepEqual(w.services, { 'db/mysql.db.svc.cluster.local': { ports: [{ service_port: 3306, target_port: 3306 }] } });
});

test('selectorless Service: the pods its EndpointSlices name back it', () => {
  const svc = service('db', 'legacy', { clusterIP: '10.96.3.3', ports: [{ name: 'sql', port: 5432, targetPort: 5432 }] });
  const slice: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'legacy-1', namespace: 'db', labels: { 'kubernetes.io/service-name': 'legacy' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.0.3.9'], targetRef: { kind: 'Pod', name: 'pg-0', namespace: 'db' } },
      { addresses: ['192.168.50.4'], conditions: { ready: true } },
    ],
    ports: [{ name: 'sql', port: 5432, protocol: 'TCP' }],
  };
  const w = onlyWorkload([svc, slice], pod('db', 'pg-0', { ip: '10.0.3.9' }));
  assert.deepEqual(Object.keys(w.services!), ['db/legacy.db.svc.cluster.local']);
  const { ctx } = contextWith([svc, slice]);
  const ext = translateEndpointSlice(slice, ctx).workloads;
  assert.equal(ext.length, 1, 'the pod endpoint comes from the Pod, only the external one from the slice');
  assert.equal(ext[0]!.uid, 'Kubernetes/discovery.k8s.io/EndpointSlice/db/legacy-1/192.168.50.4');
  assert.equal(ext[0]!.network_mode, 'HOST_NETWORK');
  assert.deepEqual(ext[0]!.services, { 'db/legacy.db.svc.cluster.local': { ports: [{ service_port: 5432, target_port: 5432 }] } });
});

const WAYPOINT_ADDRESS = { hostname: { namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' }, hbone_mtls_port: 15008 };

test('use-waypoint on the namespace binds pods when the waypoint takes workload traffic', () => {
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const p = pod('shop', 'cart-1', { ip: '10.0.1.1' });
  assert.deepEqual(onlyWorkload([ns, waypointGateway('shop', 'waypoint', { waypointFor: 'workload' })], p).waypoint, WAYPOINT_ADDRESS);
  assert.deepEqual(onlyWorkload([ns, waypointGateway('shop', 'waypoint', { waypointFor: 'all' })], p).waypoint, WAYPOINT_ADDRESS);
});

test('a service waypoint (waypoint-for default service) is not a workload waypoint', () => {
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const { ctx } = contextWith([ns, waypointGateway('shop', 'waypoint')]);
  const t = translatePod(pod('shop', 'cart-1', { ip: '10.0.1.1' }), ctx);
  assert.equal(t.workloads[0]!.waypoint, undefined);
  assert.equal(t.waypointProblem?.reason, 'UnsupportedTrafficType');
});

test('the pod label overrides the namespace; none opts out', () => {
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const gws = [waypointGateway('shop', 'waypoint', { waypointFor: 'all' }), waypointGateway('shop', 'special', { waypointFor: 'workload' })];
  const own = pod('shop', 'a', { ip: '10.0.1.2', labels: { 'istio.io/use-waypoint': 'special' } });
  assert.equal(onlyWorkload([ns, ...gws], own).waypoint?.hostname?.hostname, 'special.shop.svc.cluster.local');
  const none = pod('shop', 'b', { ip: '10.0.1.3', labels: { 'istio.io/use-waypoint': 'none' } });
  assert.equal(onlyWorkload([ns, ...gws], none).waypoint, undefined);
});

test('cross-namespace waypoint needs use-waypoint-namespace and allowedRoutes that admit the namespace', () => {
  const labels = { 'istio.io/use-waypoint': 'shared', 'istio.io/use-waypoint-namespace': 'infra' };
  const p = pod('shop', 'a', { ip: '10.0.1.2', labels });
  const { ctx } = contextWith([waypointGateway('infra', 'shared', { waypointFor: 'all' })]);
  const denied = translatePod(p, ctx);
  assert.equal(denied.workloads[0]!.waypoint, undefined);
  assert.equal(denied.waypointProblem?.reason, 'AttachmentDenied');
  const w = onlyWorkload([waypointGateway('infra', 'shared', { waypointFor: 'all', allowedFrom: 'All' })], p);
  assert.deepEqual(w.waypoint, { hostname: { namespace: 'infra', hostname: 'shared.infra.svc.cluster.local' }, hbone_mtls_port: 15008 });
});

test('a referenced Gateway that is missing, not a waypoint or has no address yet binds nothing', () => {
  const p = pod('shop', 'a', { ip: '10.0.1.2', labels: { 'istio.io/use-waypoint': 'waypoint' } });
  for (const [objects, reason] of [
    [[], 'WaypointNotFound'],
    [[waypointGateway('shop', 'waypoint', { waypointFor: 'all', className: 'istio' })], 'NotAWaypoint'],
    [[waypointGateway('shop', 'waypoint', { waypointFor: 'all', hostname: false })], 'WaypointNotReady'],
  ] as const) {
    const { ctx } = contextWith([...objects]);
    const t = translatePod(p, ctx);
    assert.equal(t.workloads[0]!.waypoint, undefined);
    assert.equal(t.waypointProblem?.reason, reason);
  }
});

test('before status addresses exist, the waypoint Service gives the address', () => {
  const p = pod('shop', 'a', { ip: '10.0.1.2', labels: { 'istio.io/use-waypoint': 'waypoint' } });
  const gw = waypointGateway('shop', 'waypoint', { waypointFor: 'all', hostname: false });
  const svc = service('shop', 'waypoint', { clusterIP: '10.96.9.9', ports: [{ name: 'mesh', port: 15008 }] });
  assert.deepEqual(onlyWorkload([gw, svc], p).waypoint, WAYPOINT_ADDRESS);
});

test('waypoint pods are workloads but never bound to a waypoint, even in a namespace that uses one', () => {
  const ns = namespace('shop', { 'istio.io/use-waypoint': 'waypoint' });
  const wpPod = pod('shop', 'waypoint-7d9f-abc', {
    ip: '10.0.1.50', serviceAccount: 'waypoint',
    labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'istio.io/dataplane-mode': 'none' },
  });
  const w = onlyWorkload([ns, waypointGateway('shop', 'waypoint', { waypointFor: 'all' })], wpPod);
  assert.equal(w.uid, 'Kubernetes//Pod/shop/waypoint-7d9f-abc');
  assert.equal(w.waypoint, undefined);
  assert.equal(w.service_account, 'waypoint');
});

test('WorkloadEntry: address, identity, weight, locality and the ServiceEntry ports by name', () => {
  const se: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'vm-svc', namespace: 'vms' },
    spec: { hosts: ['legacy.vms.internal'], addresses: ['240.0.0.10'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'legacy' } } },
  };
  const we: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm-1', namespace: 'vms' },
    spec: { address: '192.168.10.5', labels: { app: 'legacy' }, serviceAccount: 'legacy-vm', ports: { http: 8080 }, weight: 3, locality: 'us-east/1a' },
  };
  const { ctx } = contextWith([se, we]);
  const w = translateWorkloadEntry(we, ctx).workloads[0]!;
  assert.equal(w.uid, 'Kubernetes/networking.istio.io/WorkloadEntry/vms/vm-1');
  assert.deepEqual(w.addresses!.map((a) => ipStringify(a)), ['192.168.10.5']);
  assert.equal(w.service_account, 'legacy-vm');
  assert.deepEqual(w.capacity, { value: 3 });
  assert.deepEqual(w.locality, { region: 'us-east', zone: '1a', subzone: '' });
  assert.deepEqual(w.services, { 'vms/legacy.vms.internal': { ports: [{ service_port: 80, target_port: 8080 }] } });
});

test('ServiceEntry endpoints become workloads; a DNS ServiceEntry without endpoints gets one hostname workload per host', () => {
  const se: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'external', namespace: 'shop' },
    spec: { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS' },
  };
  const { ctx } = contextWith([se]);
  const implicit = translateServiceEntryWorkloads(se, ctx).workloads;
  assert.equal(implicit.length, 1);
  assert.equal(implicit[0]!.uid, 'Kubernetes/networking.istio.io/ServiceEntry/shop/external/api.example.com');
  assert.equal(implicit[0]!.hostname, 'api.example.com');
  assert.deepEqual(implicit[0]!.services, { 'shop/api.example.com': { ports: [{ service_port: 443, target_port: 443 }] } });

  const withEndpoints: KubeObject = { ...se, spec: { ...se.spec, resolution: 'STATIC', endpoints: [{ address: '203.0.113.7', ports: { https: 8443 } }] } };
  const eps = translateServiceEntryWorkloads(withEndpoints, ctx).workloads;
  assert.equal(eps[0]!.uid, 'Kubernetes/networking.istio.io/ServiceEntry/shop/external/203.0.113.7');
  assert.deepEqual(eps[0]!.services, { 'shop/api.example.com': { ports: [{ service_port: 443, target_port: 8443 }] } });
});

test('pods selected by a ServiceEntry workloadSelector back its hosts', () => {
  const se: KubeObject = {
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'mesh-svc', namespace: 'shop' },
    spec: { hosts: ['cart.internal'], addresses: ['240.0.0.20'], ports: [{ number: 80, name: 'http', targetPort: 8080 }], workloadSelector: { labels: { app: 'cart' } }, resolution: 'STATIC' },
  };
  const w = onlyWorkload([se], pod('shop', 'cart-1', { ip: '10.0.1.1', labels: { app: 'cart' } }));
  assert.deepEqual(w.services, { 'shop/cart.internal': { ports: [{ service_port: 80, target_port: 8080 }] } });
});
