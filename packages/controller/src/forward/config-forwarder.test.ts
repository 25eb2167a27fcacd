import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { CONFIG_OBJECT_TYPE_URL, decodeConfigObject, type KubeObject } from '@ambit/api';
import { createResourceStore, type ChangeSet } from '../xds/resource-store.js';
import { createConfigForwarder, VALIDATION_CONDITION_TYPE, type ConfigObjectRef, type ConfigStatus } from './config-forwarder.js';

function setup() {
  const store = createResourceStore();
  const changes: ChangeSet[] = [];
  store.onChange((c) => changes.push(c));
  const logLines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line));
      cb();
    },
  });
  const statuses: { ref: ConfigObjectRef; status: ConfigStatus }[] = [];
  const forwarder = createConfigForwarder({ store, logger: pino({ level: 'debug' }, sink), onStatus: (ref, status) => statuses.push({ ref, status }) });
  return { store, changes, logLines, statuses, forwarder };
}

function virtualService(generation: number, weight: unknown, subset = 'v1'): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default', generation, resourceVersion: String(100 + generation) },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset }, weight }, { destination: { host: 'reviews', subset: 'v2' }, weight: 50 }] }] },
    status: { observed: 'not forwarded' },
  };
}
const NAME = 'VirtualService/default/reviews';
const served = (store: ReturnType<typeof createResourceStore>): KubeObject | undefined => {
  const r = store.get(CONFIG_OBJECT_TYPE_URL, NAME);
  return r ? decodeConfigObject(r.any.value) : undefined;
};

test('valid, then invalid, then valid: the invalid version never reaches the store and its status names the field', () => {
  const { store, changes, logLines, statuses, forwarder } = setup();

  const r1 = forwarder.update(virtualService(1, 50));
  assert.equal(r1.action, 'stored');
  assert.deepEqual(r1.diagnostics, []);
  const stored = store.get(CONFIG_OBJECT_TYPE_URL, NAME)!;
  assert.equal(stored.any.type_url, CONFIG_OBJECT_TYPE_URL);
  const first = served(store)!;
  assert.equal(first.metadata.generation, 1);
  assert.equal(first.status, undefined, 'status is not forwarded');
  assert.equal(changes.length, 1);
  assert.equal(statuses.length, 1);
  assert.deepEqual(statuses[0]!.ref, { kind: 'VirtualService', namespace: 'default', name: 'reviews', generation: 1 });
  assert.deepEqual(statuses[0]!.status.conditions.map((c) => [c.type, c.status, c.reason]), [[VALIDATION_CONDITION_TYPE, 'True', 'Accepted']]);
  assert.deepEqual(statuses[0]!.status.validationMessages, []);

  const r2 = forwarder.update(virtualService(2, 'abc'));
  assert.equal(r2.action, 'rejected');
  assert.equal(r2.serving, true);
  assert.equal(served(store)!.metadata.generation, 1, 'the last valid version stays');
  assert.equal(store.get(CONFIG_OBJECT_TYPE_URL, NAME)!.version, stored.version);
  assert.equal(changes.length, 1, 'nothing pushed for the invalid version');
  const warn = logLines.filter((l) => l.level === 40);
  assert.ok(warn.some((l) => l.object === 'VirtualService default/reviews' && l.field === 'spec.http[0].route[0].weight' && /IST0106/.test(l.msg)), JSON.stringify(warn));
  assert.ok(warn.some((l) => /last valid version stays in force/.test(l.msg)));
  const invalid = statuses.at(-1)!;
  assert.equal(statuses.length, 2);
  assert.equal(invalid.ref.generation, 2);
  const cond = invalid.status.conditions[0]!;
  assert.deepEqual([cond.type, cond.status, cond.reason, cond.observedGeneration], [VALIDATION_CONDITION_TYPE, 'False', 'Invalid', 2]);
  assert.match(cond.message, /Error \[IST0106\] \(VirtualService reviews\.default\) Schema validation error: spec\.http\[0\]\.route\[0\]\.weight: must be an integer, got string "abc"/);
  assert.match(cond.message, /last valid version \(generation 1\) is still served/);
  assert.deepEqual(invalid.status.validationMessages[0], {
    type: { code: 'IST0106', name: 'SchemaValidationError' },
    level: 'ERROR',
    documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0106/',
    description: 'Schema validation error: spec.http[0].route[0].weight: must be an integer, got string "abc"',
  });
  assert.equal(forwarder.diagnostics().length, r2.diagnostics.length);

  // The same invalid object again (e.g. our own status write echoing back) reports nothing new.
  forwarder.update(virtualService(2, 'abc'));
  assert.equal(statuses.length, 2);

  const r3 = forwarder.update(virtualService(3, 10, 'v3'));
  assert.equal(r3.action, 'stored');
  assert.equal(served(store)!.metadata.generation, 3);
  assert.equal(served(store)!.spec.http[0].route[0].destination.subset, 'v3');
  assert.equal(changes.length, 2);
  assert.deepEqual(statuses.at(-1)!.status.conditions.map((c) => [c.status, c.reason, c.observedGeneration]), [['True', 'Accepted', 3]]);
  assert.deepEqual(statuses.at(-1)!.status.validationMessages, [], 'a valid version clears the messages');
  assert.deepEqual(forwarder.diagnostics(), []);

  // Re-sending identical content (a resync) changes nothing in the store.
  assert.equal(forwarder.update(virtualService(3, 10, 'v3')).action, 'unchanged');
  assert.equal(changes.length, 2);
});

test('an object that was never valid is not served at all, and warnings alone do not block it', () => {
  const { store, statuses, forwarder } = setup();
  const bad: KubeObject = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny', namespace: 'shop', generation: 1 }, spec: { action: 'DENY' } };
  const r = forwarder.update(bad);
  assert.deepEqual([r.action, r.serving], ['rejected', false]);
  assert.equal(store.get(CONFIG_OBJECT_TYPE_URL, 'AuthorizationPolicy/shop/deny'), undefined);
  assert.match(statuses.at(-1)!.status.conditions[0]!.message, /spec\.rules: DENY action without `rules`.*\n?.*nothing is served/s);

  // A selector policy with HTTP rules is valid but ineffective at ztunnel: served, with the warning in status.
  const ineffective: KubeObject = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'get-only', namespace: 'shop', generation: 1 }, spec: { selector: { matchLabels: { app: 'cart' } }, rules: [{ to: [{ operation: { methods: ['GET'] } }] }] } };
  const r2 = forwarder.update(ineffective);
  assert.equal(r2.action, 'stored');
  assert.ok(store.get(CONFIG_OBJECT_TYPE_URL, 'AuthorizationPolicy/shop/get-only'));
  const st = statuses.at(-1)!.status;
  assert.equal(st.conditions[0]!.status, 'True');
  assert.deepEqual(st.validationMessages.map((m) => [m.type.code, m.level]), [['IST0167', 'WARNING']]);
});

test('deleting removes the object from the store and forgets its diagnostics', () => {
  const { store, changes, forwarder } = setup();
  forwarder.update(virtualService(1, 50));
  forwarder.update({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v1' }] } });
  assert.equal(forwarder.diagnostics().length, 1);
  forwarder.remove('VirtualService', 'default', 'reviews');
  forwarder.remove('DestinationRule', 'default', 'reviews');
  assert.equal(store.get(CONFIG_OBJECT_TYPE_URL, NAME), undefined);
  assert.deepEqual([...store.names(CONFIG_OBJECT_TYPE_URL)], []);
  assert.deepEqual(forwarder.diagnostics(), []);
  assert.deepEqual(changes.map((c) => [...c.get(CONFIG_OBJECT_TYPE_URL)!]), [[NAME], [NAME]]);
  forwarder.remove('VirtualService', 'default', 'reviews'); // deleting twice is harmless
  assert.equal(changes.length, 2);
});

test('kinds that are not L7 configuration are ignored', () => {
  const { store, changes, statuses, forwarder } = setup();
  for (const o of [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'reviews', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 9080 }] } },
    { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode: 'BOGUS' } } },
    { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm', namespace: 'default' }, spec: {} },
  ] as KubeObject[]) {
    assert.deepEqual(forwarder.update(o), { action: 'ignored', diagnostics: [], serving: false });
    forwarder.remove(o.kind!, o.metadata.namespace!, o.metadata.name);
  }
  assert.equal(changes.length, 0);
  assert.equal(statuses.length, 0);
  assert.deepEqual([...store.names(CONFIG_OBJECT_TYPE_URL)], []);
});

test('a Service reaches waypoints as the ports it declares opaque only, without status; it leaves when it stops declaring them', () => {
  const { store, statuses, forwarder } = setup();
  const svc = (ports: Record<string, unknown>[]): KubeObject => ({
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: 'db', namespace: 'shop', uid: 'u1', resourceVersion: '7', labels: { app: 'db' }, annotations: { big: 'x'.repeat(100) } },
    spec: { clusterIP: '10.96.0.9', selector: { app: 'db' }, ports },
    status: { loadBalancer: {} },
  });
  const NAME_DB = 'Service/shop/db';
  const sent = (): KubeObject | undefined => { const r = store.get(CONFIG_OBJECT_TYPE_URL, NAME_DB); return r ? decodeConfigObject(r.any.value) : undefined; };
  assert.equal(forwarder.update(svc([{ name: 'http', port: 80 }, { name: 'grpc-api', port: 90 }])).action, 'ignored', 'nothing opaque: not sent');
  assert.equal(sent(), undefined);
  const r = forwarder.update(svc([{ name: 'http', port: 80 }, { name: 'mysql-main', port: 3306, targetPort: 3307 }, { port: 6379, appProtocol: 'redis' },
    { name: 'tcp-dns', port: 53, protocol: 'UDP' }, { name: 'web', port: 8080, appProtocol: 'TCP' }]));
  assert.equal(r.action, 'stored');
  assert.deepEqual(sent(), {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'shop' },
    spec: { ports: [{ name: 'mysql-main', port: 3306 }, { port: 6379, appProtocol: 'redis' }, { name: 'web', port: 8080, appProtocol: 'TCP' }] },
  });
  assert.equal(forwarder.update({ ...svc([{ name: 'mysql-main', port: 3306 }, { port: 6379, appProtocol: 'redis' }, { name: 'web', port: 8080, appProtocol: 'TCP' }]), metadata: { name: 'db', namespace: 'shop', resourceVersion: '8' } }).action, 'unchanged',
    'a change the waypoint does not see is no push');
  assert.equal(forwarder.update(svc([{ name: 'http', port: 80 }])).action, 'ignored');
  assert.equal(sent(), undefined, 'no opaque port any more: removed');
  forwarder.update(svc([{ name: 'tcp', port: 5000 }]));
  assert.ok(sent());
  forwarder.remove('Service', 'shop', 'db');
  assert.equal(sent(), undefined);
  assert.equal(statuses.length, 0, 'no status is written on Services');
});

test('every L7 kind is forwarded under its resource name', () => {
  const { store, forwarder } = setup();
  const objects: KubeObject[] = [
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'r', namespace: 'a' }, spec: { host: 'r' } },
    { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'ext', namespace: 'a' }, spec: { hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'a' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'r' }], rules: [{ backendRefs: [{ name: 'r', port: 80 }] }] } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'g', namespace: 'a' }, spec: { rules: [{ backendRefs: [{ name: 'g', port: 50051 }] }] } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'a' }, spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } },
    { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'a' }, spec: { jwtRules: [{ issuer: 'https://issuer' }] } },
    { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'a' }, spec: { accessLogging: [{ providers: [{ name: 'envoy' }] }] } },
  ];
  for (const o of objects) assert.equal(forwarder.update(o).action, 'stored', `${o.kind}: ${JSON.stringify(forwarder.update(o).diagnostics)}`);
  assert.deepEqual([...store.names(CONFIG_OBJECT_TYPE_URL)].sort(), objects.map((o) => `${o.kind}/a/${o.metadata.name}`).sort());
});
