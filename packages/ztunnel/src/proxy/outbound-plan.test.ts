import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyLocalConfigText } from '../discovery/local-config.js';
import { createStateStore } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';
import { planOutbound } from './outbound-plan.js';

const CONFIG = `
workloads:
  - { uid: w/sleep, name: sleep, namespace: default, serviceAccount: sleep, workloadIps: [10.0.1.2], protocol: HBONE, services: {} }
  - uid: w/echo-1
    name: echo-1
    namespace: default
    serviceAccount: echo
    workloadIps: [10.0.2.2]
    protocol: HBONE
    services: { default/echo.default.svc.cluster.local: { 80: 8080 } }
  - { uid: w/legacy, name: legacy, namespace: legacy, workloadIps: [10.0.2.9], protocol: TCP, services: {} }
  - uid: w/waypoint
    name: waypoint-abc
    namespace: default
    serviceAccount: waypoint
    workloadIps: [10.0.3.3]
    protocol: HBONE
    services: { default/waypoint.default.svc.cluster.local: { 15008: 15008 } }
services:
  - { name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: [/10.96.0.10], ports: { 80: 8080 }, subjectAltNames: [spiffe://cluster.local/ns/default/sa/extra] }
  - name: reviews
    namespace: default
    hostname: reviews.default.svc.cluster.local
    vips: [/10.96.0.20]
    ports: { 9080: 9080 }
    waypoint: { destination: default/waypoint.default.svc.cluster.local, hboneMtlsPort: 15008 }
  - { name: waypoint, namespace: default, hostname: waypoint.default.svc.cluster.local, vips: [/10.96.0.99], ports: { 15008: 15008 } }
  - { name: empty, namespace: default, hostname: empty.default.svc.cluster.local, vips: [/10.96.0.30], ports: { 80: 80 } }
`;

function state() {
  const store = createStateStore({});
  const r = applyLocalConfigText(CONFIG, 'test.yaml', createStateUpdater({ store }));
  assert.equal(r.rejected.length, 0, JSON.stringify(r.rejected));
  return store;
}

const base = { network: '', trustDomain: 'cluster.local', source: undefined, random: () => 0 };

test('service VIP resolves to an HBONE endpoint with target port and the service SANs', () => {
  const plan = planOutbound({ ...base, state: state(), destination: { address: '10.96.0.10', port: 80 } });
  assert.equal(plan.kind, 'hbone');
  if (plan.kind !== 'hbone') return;
  assert.deepEqual(plan.nextHop, { host: '10.0.2.2', port: 15008 });
  assert.equal(plan.authority, '10.0.2.2:8080');
  assert.deepEqual(plan.identities, ['spiffe://cluster.local/ns/default/sa/echo', 'spiffe://cluster.local/ns/default/sa/extra']);
  assert.equal(plan.viaWaypoint, false);
});

test('a workload IP goes straight to its 15008 with the original port', () => {
  const plan = planOutbound({ ...base, state: state(), destination: { address: '10.0.2.2', port: 9000 } });
  assert.equal(plan.kind, 'hbone');
  if (plan.kind === 'hbone') assert.equal(plan.authority, '10.0.2.2:9000');
});

test('a service bound to a waypoint goes to the waypoint with the original VIP as authority', () => {
  const plan = planOutbound({ ...base, state: state(), destination: { address: '10.96.0.20', port: 9080 } });
  assert.equal(plan.kind, 'hbone');
  if (plan.kind !== 'hbone') return;
  assert.deepEqual(plan.nextHop, { host: '10.0.3.3', port: 15008 });
  assert.equal(plan.authority, '10.96.0.20:9080');
  assert.deepEqual(plan.identities, ['spiffe://cluster.local/ns/default/sa/waypoint']);
  assert.equal(plan.viaWaypoint, true);
});

test('uncaptured workloads and unknown addresses pass through; a service without endpoints fails with a reason', () => {
  const s = state();
  const legacy = planOutbound({ ...base, state: s, destination: { address: '10.0.2.9', port: 5432 } });
  assert.equal(legacy.kind, 'passthrough');
  const unknown = planOutbound({ ...base, state: s, destination: { address: '192.0.2.1', port: 443 } });
  assert.equal(unknown.kind, 'passthrough');
  if (unknown.kind === 'passthrough') assert.match(unknown.reason, /not a known service or workload/);
  const empty = planOutbound({ ...base, state: s, destination: { address: '10.96.0.30', port: 80 } });
  assert.equal(empty.kind, 'fail');
  const wrongPort = planOutbound({ ...base, state: s, destination: { address: '10.96.0.10', port: 81 } });
  assert.equal(wrongPort.kind, 'fail');
  if (wrongPort.kind === 'fail') assert.match(wrongPort.reason, /has no port 81/);
});
