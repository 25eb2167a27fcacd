import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../config-objects.js';
import { analyze } from './analyze.js';
import { documentationUrl, formatDiagnostic, hasSeverity, type Diagnostic } from './diagnostic.js';

const meta = (name: string, namespace = 'default', labels?: Record<string, string>): KubeObject['metadata'] => ({
  name, namespace, ...(labels ? { labels } : {}),
});
const service = (name: string, selector: Record<string, string>, namespace = 'default'): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: meta(name, namespace), spec: { selector, ports: [{ port: 9080 }] } });
const pod = (name: string, labels: Record<string, string>, namespace = 'default'): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: meta(name, namespace, labels) });
const namespace = (name: string, labels?: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } });
const vs = (spec: unknown, name = 'reviews'): KubeObject => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta(name), spec });
const dr = (spec: unknown, name = 'reviews'): KubeObject => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: meta(name), spec });
const lines = (ds: Diagnostic[]): string[] => ds.map(formatDiagnostic);

const BOOKINFO: KubeObject[] = [
  namespace('default'),
  service('reviews', { app: 'reviews' }),
  service('ratings', { app: 'ratings' }),
  pod('reviews-v1', { app: 'reviews', version: 'v1' }),
  pod('reviews-v2', { app: 'reviews', version: 'v2' }),
  pod('ratings-v1', { app: 'ratings', version: 'v1' }),
  dr({ host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
];

test('a consistent set of objects analyses clean', () => {
  const ds = analyze([...BOOKINFO, vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, weight: 50 }] }] })]);
  assert.deepEqual(lines(ds), []);
});

test('a subset no DestinationRule defines is IST0101 ReferencedResourceNotFound, formatted like istioctl analyze', () => {
  const ds = analyze([...BOOKINFO, vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] })]);
  assert.deepEqual(lines(ds), ['Error [IST0101] (VirtualService reviews.default) Referenced host+subset in destinationrule not found: "reviews+v3"']);
  assert.equal(ds[0]!.field, 'spec.http[0].route[0].destination.subset');
  assert.equal(ds[0]!.name, 'ReferencedResourceNotFound');
  assert.equal(documentationUrl(ds[0]!.code), 'https://istio.io/latest/docs/reference/config/analysis/ist0101/');
});

test('a destination host that matches no Service or ServiceEntry is IST0101; a ServiceEntry host (also wildcard) resolves it', () => {
  const route = vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'details' } }], mirror: { host: 'api.example.com' } }] });
  assert.deepEqual(lines(analyze([...BOOKINFO, route])), [
    'Error [IST0101] (VirtualService reviews.default) Referenced host not found: "details"',
    'Error [IST0101] (VirtualService reviews.default) Referenced mirror host not found: "api.example.com"',
  ]);
  const se: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: meta('ext'), spec: { hosts: ['*.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'NONE' } };
  assert.deepEqual(lines(analyze([...BOOKINFO, route, se, service('details', { app: 'details' })])), []);
});

test('a subset that selects no pods is IST0173, an unknown DestinationRule host IST0174', () => {
  const ds = analyze([...BOOKINFO, dr({ host: 'ratings', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v4', labels: { version: 'v4' } }] }, 'ratings'), dr({ host: 'reveiws' }, 'typo')]);
  assert.deepEqual(lines(ds), [
    'Error [IST0173] (DestinationRule ratings.default) The Subset v4 defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).',
    'Warning [IST0174] (DestinationRule typo.default) The host reveiws defined in the DestinationRule does not match any services in the mesh.',
  ]);
});

test('an AuthorizationPolicy selecting no workloads is IST0127; a missing targetRef and source namespace are IST0101', () => {
  const ap = (name: string, spec: unknown): KubeObject => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta(name), spec });
  const ds = analyze([
    ...BOOKINFO,
    ap('by-selector', { selector: { matchLabels: { app: 'productpage' } }, rules: [{ from: [{ source: { namespaces: ['default', 'prod-*', 'missing'] } }] }] }),
    ap('by-waypoint', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{}] }),
    ap('matches', { selector: { matchLabels: { app: 'reviews' } }, rules: [{ from: [{ source: { namespaces: ['default'] } }] }] }),
  ]);
  assert.deepEqual(lines(ds), [
    'Error [IST0101] (AuthorizationPolicy by-selector.default) Referenced namespace not found: "prod-*"',
    'Error [IST0101] (AuthorizationPolicy by-selector.default) Referenced namespace not found: "missing"',
    'Error [IST0101] (AuthorizationPolicy by-waypoint.default) Referenced gateway not found: "default/waypoint"',
    'Warning [IST0127] (AuthorizationPolicy by-selector.default) No matching workloads for this resource with the following labels: app=productpage',
  ]);
  assert.ok(hasSeverity(ds, 'Error'));
});

test('istio.io/use-waypoint naming a missing or non-waypoint Gateway is IST0101 on the labelled object', () => {
  const waypoint: KubeObject = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: meta('waypoint'), spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } };
  const ingress: KubeObject = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: meta('ingress'), spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } };
  const objects = [
    namespace('default', { 'istio.io/use-waypoint': 'waypoint' }),
    namespace('shop', { 'istio.io/use-waypoint': 'missing' }),
    namespace('opt-out', { 'istio.io/use-waypoint': 'none' }),
    { ...service('cart', { app: 'cart' }, 'shop'), metadata: meta('cart', 'shop', { 'istio.io/use-waypoint': 'ingress', 'istio.io/use-waypoint-namespace': 'default' }) },
    waypoint, ingress,
  ];
  const ds = analyze(objects);
  assert.deepEqual(lines(ds), [
    'Error [IST0101] (Namespace shop) Referenced waypoint not found: "shop/missing"',
    'Error [IST0101] (Service cart.shop) Referenced waypoint not found: "default/ingress" (Gateway default/ingress has gatewayClassName "istio", not istio-waypoint)',
  ]);
  assert.equal(ds[0]!.field, 'metadata.labels["istio.io/use-waypoint"]');
});

test('HTTPRoute parents and backends must exist', () => {
  const route: KubeObject = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: meta('reviews'), spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }, { group: '', kind: 'Service', name: 'gone' }],
    rules: [{ backendRefs: [{ name: 'reviews', port: 9080 }, { name: 'reviews-v9', port: 9080 }] }],
  } };
  assert.deepEqual(lines(analyze([...BOOKINFO, route])), [
    'Error [IST0101] (HTTPRoute reviews.default) Referenced parent service not found: "default/gone"',
    'Error [IST0101] (HTTPRoute reviews.default) Referenced backend service not found: "default/reviews-v9"',
  ]);
});

test('schema errors come first with the per-object validation, and assumeComplete=false skips checks on kinds not given', () => {
  const bad = vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v9' }, weight: -1 }] }] });
  const ds = analyze([bad]);
  assert.deepEqual(lines(ds), [
    'Error [IST0101] (VirtualService reviews.default) Referenced host not found: "reviews"',
    'Error [IST0101] (VirtualService reviews.default) Referenced host+subset in destinationrule not found: "reviews+v9"',
    'Error [IST0106] (VirtualService reviews.default) Schema validation error: spec.http[0].route[0].weight: weight -1 < 0; weights must be 0 or more',
  ]);
  assert.deepEqual(lines(analyze([bad], { assumeComplete: false })), [
    'Error [IST0106] (VirtualService reviews.default) Schema validation error: spec.http[0].route[0].weight: weight -1 < 0; weights must be 0 or more',
  ]);
});
