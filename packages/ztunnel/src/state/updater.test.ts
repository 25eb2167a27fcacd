import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStateStore, type StateChange } from './store.js';
import { createStateUpdater } from './updater.js';
import type { AuthorizationInput, ServiceInput, WorkloadInput } from './types.js';

const HOST = 'echo.echo.svc.cluster.local';

function setup() {
  const store = createStateStore();
  const updater = createStateUpdater({ store });
  return { store, updater };
}
function pod(name: string, ns: string, ip: string, extra: Partial<WorkloadInput> = {}): WorkloadInput {
  return { uid: `Kubernetes//Pod/${ns}/${name}`, name, namespace: ns, workloadIps: [ip], protocol: 'HBONE', ...extra };
}
const echoSvc = (extra: Partial<ServiceInput> = {}): ServiceInput => ({
  name: 'echo', namespace: 'echo', hostname: HOST,
  vips: [{ network: '', address: '10.96.0.20' }], ports: [{ servicePort: 80, targetPort: 8080 }], ...extra,
});
const policy = (name: string, ns: string, extra: Partial<AuthorizationInput> = {}): AuthorizationInput => ({
  name, namespace: ns, scope: 'Namespace', action: 'Allow', rules: [], ...extra,
});

test('workload is found by address, uid, and defaults are filled in', () => {
  const { store, updater } = setup();
  const r = updater.applyDelta({ workloads: [pod('sleep-1', 'default', '10.0.1.10')] });
  assert.deepEqual(r.rejected, []);
  const w = store.workloadByAddress('', '10.0.1.10');
  assert.equal(w?.uid, 'Kubernetes//Pod/default/sleep-1');
  assert.equal(store.workloadByUid('Kubernetes//Pod/default/sleep-1'), w);
  assert.equal(w?.trustDomain, 'cluster.local');
  assert.equal(w?.serviceAccount, 'default');
  assert.equal(w?.capacity, 1);
  assert.equal(w?.status, 'Healthy');
  assert.equal(w?.clusterId, 'Kubernetes');
  assert.ok(Object.isFrozen(w));
});

test('lookup by address is per network', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('a', 'default', '10.0.1.10', { network: 'net-a' })] });
  assert.equal(store.workloadByAddress('net-a', '10.0.1.10')?.name, 'a');
  assert.equal(store.workloadByAddress('', '10.0.1.10'), undefined);
});

test('ipv6 lookups match whatever the spelling', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('a', 'default', 'FD00:0::0:1')] });
  assert.equal(store.workloadByAddress('', 'fd00::1')?.name, 'a');
  assert.equal(store.workloadByAddress('', 'fd00:0:0:0:0:0:0:1')?.name, 'a');
});

test('host-network workloads are not looked up by ip', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('h', 'default', '192.168.0.5', { networkMode: 'HostNetwork' })] });
  assert.equal(store.workloadByAddress('', '192.168.0.5'), undefined);
  assert.ok(store.workloadByUid('Kubernetes//Pod/default/h'));
});

test('address shared by two workloads prefers the hbone pod', () => {
  const { store, updater } = setup();
  updater.applyDelta({
    workloads: [
      { uid: 'Kubernetes/networking.istio.io/WorkloadEntry/default/we', name: 'we', namespace: 'default', workloadIps: ['10.0.0.9'], protocol: 'HBONE' },
      pod('p-tcp', 'default', '10.0.0.9', { protocol: 'TCP' }),
      pod('p-hbone', 'default', '10.0.0.9', { uid: 'Kubernetes//Pod/default/p-hbone' }),
    ],
  });
  assert.equal(store.workloadByAddress('', '10.0.0.9')?.name, 'p-hbone');
});

test('service by vip, hostname and key; endpoints from workload services map', () => {
  const { store, updater } = setup();
  updater.applyDelta({
    services: [echoSvc()],
    workloads: [
      pod('echo-1', 'echo', '10.0.2.20', { services: { [`echo/${HOST}`]: { '80': 8080 } } }),
      pod('other', 'echo', '10.0.2.99'),
    ],
  });
  const s = store.serviceByVip('', '10.96.0.20');
  assert.equal(s?.hostname, HOST);
  assert.equal(store.serviceByHostname(HOST), s);
  assert.equal(store.serviceByKey(`echo/${HOST}`), s);
  assert.deepEqual(store.endpointsOf(s!).map((e) => e.workload.name), ['echo-1']);
  assert.deepEqual(store.servicesOf(store.workloadByUid('Kubernetes//Pod/echo/echo-1')!).map((x) => x.name), ['echo']);
});

test('workloads that arrive before their service become its endpoints', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('echo-1', 'echo', '10.0.2.20', { services: { [`echo/${HOST}`]: { '80': 8080 } } })] });
  updater.applyDelta({ services: [echoSvc()] });
  assert.equal(store.endpointsOf(`echo/${HOST}`).length, 1);
});

test('hostname lookup prefers the caller namespace, then canonical', () => {
  const { store, updater } = setup();
  updater.applyDelta({
    services: [
      { name: 'g', namespace: 'a', hostname: 'example.com', vips: [], ports: [] },
      { name: 'g', namespace: 'b', hostname: 'example.com', vips: [], ports: [], canonical: true },
    ],
  });
  assert.equal(store.serviceByHostname('example.com', 'a')?.namespace, 'a');
  assert.equal(store.serviceByHostname('example.com', 'zzz')?.namespace, 'b');
});

test('rejected workload keeps the previous version', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('sleep-1', 'default', '10.0.1.10')] });
  const before = store.version;
  const r = updater.applyDelta({ workloads: [pod('sleep-1', 'default', '10.0.1.x')] });
  assert.equal(r.rejected.length, 1);
  assert.equal(r.rejected[0]!.kind, 'workload');
  assert.equal(r.rejected[0]!.name, 'Kubernetes//Pod/default/sleep-1');
  assert.equal(
    r.rejected[0]!.message,
    'workload "default/sleep-1" (uid Kubernetes//Pod/default/sleep-1): workloadIps[0] "10.0.1.x" is not an IP address',
  );
  assert.equal(store.workloadByAddress('', '10.0.1.10')?.name, 'sleep-1');
  assert.equal(store.version, before, 'nothing changed, so no new version');
});

test('one bad entry does not stop the good ones in the same batch', () => {
  const { store, updater } = setup();
  const r = updater.applyDelta({
    workloads: [pod('good', 'default', '10.0.1.1'), pod('bad', 'default', '10.0.1.2', { protocol: 'QUIC' as never })],
    policies: [policy('p', 'default', { scope: 'Sometimes' as never })],
  });
  assert.deepEqual(r.rejected.map((x) => x.name).sort(), ['Kubernetes//Pod/default/bad', 'default/p']);
  assert.match(r.rejected.find((x) => x.kind === 'workload')!.message, /protocol "QUIC" is not one of HBONE, TCP/);
  assert.match(r.rejected.find((x) => x.kind === 'policy')!.message, /^policy "default\/p": scope "Sometimes" is not one of/);
  assert.ok(store.workloadByUid('Kubernetes//Pod/default/good'));
});

test('validation names nested policy fields', () => {
  const { updater } = setup();
  const r = updater.applyDelta({
    policies: [
      policy('cidr', 'ns', { rules: [[[{ sourceIps: ['10.0.0.0/40'] }]]] }),
      policy('principal', 'ns', { rules: [[[{ principals: [{ exact: 'spiffe://cluster.local/ns/a/sa/b' }] }]]] }),
      policy('port', 'ns', { rules: [[[{ destinationPorts: [70000] }]]] }),
    ],
  });
  const byName = new Map(r.rejected.map((x) => [x.name, x.message]));
  assert.match(byName.get('ns/cidr')!, /rules\[0\]\[0\]\[0\]\.sourceIps\[0\] "10\.0\.0\.0\/40" has an invalid prefix length/);
  assert.match(byName.get('ns/principal')!, /principals\[0\]\.exact .* must not start with "spiffe:\/\/"/);
  assert.match(byName.get('ns/port')!, /destinationPorts\[0\] 70000 is not a port number/);
});

test('removal by address name removes a workload or a service', () => {
  const { store, updater } = setup();
  updater.applyDelta({ services: [echoSvc()], workloads: [pod('a', 'echo', '10.0.2.20')] });
  updater.applyDelta({ removedAddresses: ['Kubernetes//Pod/echo/a', `echo/${HOST}`] });
  assert.equal(store.workloadByAddress('', '10.0.2.20'), undefined);
  assert.equal(store.serviceByVip('', '10.96.0.20'), undefined);
  assert.equal(store.serviceByHostname(HOST), undefined);
});

test('updating a workload re-indexes its addresses', () => {
  const { store, updater } = setup();
  updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.1')] });
  updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.2')] });
  assert.equal(store.workloadByAddress('', '10.0.0.1'), undefined);
  assert.equal(store.workloadByAddress('', '10.0.0.2')?.name, 'a');
});

test('snapshot replace removes what is gone but keeps rejected entries at their last good version', () => {
  const { store, updater } = setup();
  updater.replaceAll({ workloads: [pod('a', 'default', '10.0.0.1'), pod('b', 'default', '10.0.0.2')], policies: [policy('p', 'default')] });
  const r = updater.replaceAll({ workloads: [pod('a', 'default', 'not-an-ip')] });
  assert.equal(r.rejected.length, 1);
  assert.equal(store.workloadByAddress('', '10.0.0.1')?.name, 'a', 'a keeps its last good version');
  assert.equal(store.workloadByUid('Kubernetes//Pod/default/b'), undefined, 'b is gone from the snapshot');
  assert.equal(store.policyByKey('default/p'), undefined);
  assert.deepEqual(r.change?.workloads, ['Kubernetes//Pod/default/b']);
  assert.deepEqual(r.change?.policies, ['default/p']);
});

test('entries the source could not decode are reported and kept', () => {
  const { store, updater } = setup();
  updater.replaceAll({ policies: [policy('p', 'default')] });
  const r = updater.replaceAll({ rejected: [{ kind: 'policy', name: 'default/p', message: 'policy "default/p": unknown field "x"' }] });
  assert.equal(r.rejected.length, 1);
  assert.ok(store.policyByKey('default/p'));
});

test('duplicate uid in one batch: first wins, second is rejected', () => {
  const { store, updater } = setup();
  const r = updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.1'), pod('a', 'default', '10.0.0.2')] });
  assert.equal(r.rejected.length, 1);
  assert.match(r.rejected[0]!.message, /defined twice/);
  assert.equal(store.workloadByAddress('', '10.0.0.1')?.name, 'a');
});

test('policiesFor: global, own namespace, and selector-bound, nothing else', () => {
  const { store, updater } = setup();
  updater.applyDelta({
    policies: [
      policy('global', 'istio-system', { scope: 'Global' }),
      policy('ns-echo', 'echo'),
      policy('ns-other', 'other'),
      policy('selected', 'echo', { scope: 'WorkloadSelector' }),
      policy('not-selected', 'echo', { scope: 'WorkloadSelector' }),
    ],
    workloads: [pod('echo-1', 'echo', '10.0.2.20', { authorizationPolicies: ['echo/selected', 'echo/not-yet-known'] })],
  });
  const w = store.workloadByUid('Kubernetes//Pod/echo/echo-1')!;
  assert.deepEqual(store.policiesFor(w).map((p) => `${p.namespace}/${p.name}`).sort(), ['echo/ns-echo', 'echo/selected', 'istio-system/global']);
  assert.deepEqual(store.missingPoliciesFor(w), ['echo/not-yet-known']);
});

test('a policy that changes scope moves between indexes', () => {
  const { store, updater } = setup();
  updater.applyDelta({ policies: [policy('p', 'echo')], workloads: [pod('e', 'echo', '10.0.2.20')] });
  const w = store.workloadByUid('Kubernetes//Pod/echo/e')!;
  assert.equal(store.policiesFor(w).length, 1);
  updater.applyDelta({ policies: [policy('p', 'echo', { scope: 'WorkloadSelector' })] });
  assert.equal(store.policiesFor(w).length, 0);
});

test('listeners hear one change per batch naming what changed, and not for no-op batches', () => {
  const { store, updater } = setup();
  const seen: StateChange[] = [];
  const off = store.onChange((c) => seen.push(c));
  updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.1')], policies: [policy('p', 'default')] });
  updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.1')] }); // identical
  updater.applyDelta({ removedPolicies: ['default/p'] });
  off();
  updater.applyDelta({ removedAddresses: ['Kubernetes//Pod/default/a'] });
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0], { version: 1, workloads: ['Kubernetes//Pod/default/a'], services: [], policies: ['default/p'] });
  assert.deepEqual(seen[1], { version: 2, workloads: [], services: [], policies: ['default/p'] });
});

test('a throwing listener does not break the update', () => {
  const errors: unknown[] = [];
  const store = createStateStore({ logger: { error: (obj) => errors.push(obj) } });
  const updater = createStateUpdater({ store });
  store.onChange(() => { throw new Error('boom'); });
  const r = updater.applyDelta({ workloads: [pod('a', 'default', '10.0.0.1')] });
  assert.equal(r.version, 1);
  assert.equal(errors.length, 1);
  assert.ok(store.workloadByUid('Kubernetes//Pod/default/a'));
});

test('vip shared by two services falls back to the other when the owner goes', () => {
  const { store, updater } = setup();
  updater.applyDelta({ services: [echoSvc(), echoSvc({ name: 'echo2', hostname: 'echo2.echo.svc.cluster.local' })] });
  assert.equal(store.serviceByVip('', '10.96.0.20')?.name, 'echo2');
  updater.applyDelta({ removedAddresses: ['echo/echo2.echo.svc.cluster.local'] });
  assert.equal(store.serviceByVip('', '10.96.0.20')?.name, 'echo');
});
