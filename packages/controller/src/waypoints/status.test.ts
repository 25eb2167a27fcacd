import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateWaypointGateway, type GatewayObject } from './manifests.js';
import { buildGatewayStatus, conditionTime, gatewayClassStatusUpdate, gatewayStatusChanged, withTransitions, type ObservedWaypoint } from './status.js';
import { firstDifference } from './deployer.js';

const T0 = new Date('2026-01-01T00:00:00.123Z');
const T1 = new Date('2026-01-01T00:05:00Z');

function gateway(listeners = [{ name: 'mesh', port: 15008, protocol: 'HBONE' }], status?: unknown): GatewayObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'bookinfo', uid: 'u', generation: 2 },
    spec: { gatewayClassName: 'istio-waypoint', listeners },
    ...(status ? { status } : {}),
  };
}

const ready: ObservedWaypoint = { service: { spec: { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'] } }, deployment: { spec: { replicas: 1 }, status: { availableReplicas: 1 } } };

function statusOf(gw: GatewayObject, observed: ObservedWaypoint, now = T0) {
  return buildGatewayStatus(gw, evaluateWaypointGateway(gw), observed, 'cluster.local', now);
}

test('condition times are whole-second RFC 3339', () => {
  assert.equal(conditionTime(T0), '2026-01-01T00:00:00Z');
});

test('ready waypoint: Accepted and Programmed True with Istio\'s message, IP then hostname addresses', () => {
  const s = statusOf(gateway(), ready);
  assert.deepEqual(s.conditions, [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' },
    { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'Resource programmed, assigned to service(s) waypoint.bookinfo.svc.cluster.local:15008', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' },
  ]);
  assert.deepEqual(s.addresses, [{ type: 'IPAddress', value: '10.96.0.20' }, { type: 'Hostname', value: 'waypoint.bookinfo.svc.cluster.local' }]);
  assert.equal(s.listeners.length, 1);
  assert.equal(s.listeners[0]!.name, 'mesh');
  assert.equal(s.listeners[0]!.attachedRoutes, 0);
  assert.deepEqual(s.listeners[0]!.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Accepted=True/Accepted', 'Programmed=True/Programmed', 'Conflicted=False/NoConflicts', 'ResolvedRefs=True/ResolvedRefs']);
});

test('no available replica: Programmed False Pending, address already reported', () => {
  const s = statusOf(gateway(), { service: ready.service, deployment: { spec: { replicas: 1 }, status: {} } });
  const p = s.conditions.find((c) => c.type === 'Programmed')!;
  assert.equal(p.status, 'False');
  assert.equal(p.reason, 'Pending');
  assert.equal(p.message, 'Waiting for Deployment bookinfo/waypoint to have an available replica (0 of 1 replica(s) available)');
  assert.equal(s.addresses!.length, 2);
  assert.equal(s.listeners[0]!.conditions.find((c) => c.type === 'Programmed')!.reason, 'Pending');
});

test('no Service address yet: Programmed False AddressNotAssigned, no addresses', () => {
  const s = statusOf(gateway(), { service: { spec: {} } });
  const p = s.conditions.find((c) => c.type === 'Programmed')!;
  assert.equal(p.reason, 'AddressNotAssigned');
  assert.equal(s.addresses, undefined);
});

test('a name taken by an unmanaged object is reported in Programmed', () => {
  const s = statusOf(gateway(), { ...ready, conflict: 'Service bookinfo/waypoint already exists and is not managed' });
  const p = s.conditions.find((c) => c.type === 'Programmed')!;
  assert.equal(p.status, 'False');
  assert.equal(p.reason, 'Invalid');
  assert.match(p.message, /already exists and is not managed/);
});

test('not accepted: Programmed False Invalid, the listener rejected with UnsupportedProtocol, no addresses', () => {
  const s = statusOf(gateway([{ name: 'http', port: 80, protocol: 'HTTP' }]), {});
  assert.deepEqual(s.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Accepted=False/ListenersNotValid', 'Programmed=False/Invalid']);
  assert.deepEqual(s.listeners[0]!.conditions.slice(0, 2).map((c) => `${c.type}=${c.status}/${c.reason}: ${c.message}`), [
    'Accepted=False/UnsupportedProtocol: Expected a single listener on port 15008 with protocol "HBONE"',
    'Programmed=False/Invalid: Expected a single listener on port 15008 with protocol "HBONE"',
  ]);
  assert.equal(s.addresses, undefined);
});

test('lastTransitionTime moves only when a condition flips', () => {
  const first = statusOf(gateway(), { service: ready.service, deployment: { status: {} } }, T0);
  const second = statusOf(gateway(undefined, first), ready, T1);
  assert.equal(second.conditions.find((c) => c.type === 'Accepted')!.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(second.conditions.find((c) => c.type === 'Programmed')!.lastTransitionTime, '2026-01-01T00:05:00Z');
  assert.deepEqual(withTransitions([{ type: 'A', status: 'True', reason: 'r', message: 'm' }], undefined, undefined, T1), [{ type: 'A', status: 'True', reason: 'r', message: 'm', lastTransitionTime: '2026-01-01T00:05:00Z' }]);
});

test('the address stays while the Service is recreated', () => {
  const first = statusOf(gateway(), ready);
  const during = statusOf(gateway(undefined, first), {}, T1);
  assert.deepEqual(during.addresses, first.addresses);
});

test('gatewayStatusChanged ignores timestamps and foreign conditions but sees real changes', () => {
  const s = statusOf(gateway(), ready, T0);
  const later = statusOf(gateway(undefined, s), ready, T1);
  assert.equal(gatewayStatusChanged(s, later), false);
  const withForeign = { ...s, conditions: [...s.conditions, { type: 'example.com/Extra', status: 'True', reason: 'X', message: '', lastTransitionTime: 'x' }] };
  assert.equal(gatewayStatusChanged(withForeign, later), false);
  assert.equal(gatewayStatusChanged(undefined, later), true);
  // The API server's initial "Waiting for controller" status differs.
  const pending = { conditions: [{ type: 'Accepted', status: 'Unknown', reason: 'Pending', message: 'Waiting for controller', lastTransitionTime: '1970-01-01T00:00:00Z' }] };
  assert.equal(gatewayStatusChanged(pending, later), true);
  const notReady = statusOf(gateway(undefined, s), { service: ready.service, deployment: { status: {} } }, T1);
  assert.equal(gatewayStatusChanged(s, notReady), true);
});

test('GatewayClass: ours gets Accepted once per generation; other controllers are left alone', () => {
  const gc = { metadata: { name: 'istio-waypoint', generation: 1 }, spec: { controllerName: 'istio.io/mesh-controller' } };
  const update = gatewayClassStatusUpdate(gc, T0)!;
  assert.deepEqual(update.conditions.map((c) => `${c.type}=${c.status}/${c.reason}@${c.observedGeneration}`), ['Accepted=True/Accepted@1']);
  assert.equal(gatewayClassStatusUpdate({ ...gc, status: update }, T1), undefined);
  assert.notEqual(gatewayClassStatusUpdate({ ...gc, metadata: { ...gc.metadata, generation: 2 }, status: update }, T1), undefined);
  assert.equal(gatewayClassStatusUpdate({ metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } }, T0), undefined);
});

test('firstDifference: server-added fields are fine; a changed or missing field is named by its path', () => {
  const desired = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', labels: { x: '1' } }, spec: { ports: [{ port: 15008, name: 'mesh' }] } };
  const actual = { metadata: { name: 'a', uid: 'u', labels: { x: '1', y: '2' } }, spec: { clusterIP: '10.0.0.1', ports: [{ port: 15008, name: 'mesh', targetPort: 15008 }] } };
  assert.equal(firstDifference(actual, desired), undefined);
  assert.equal(firstDifference({ ...actual, metadata: { name: 'a', labels: { x: '2' } } }, desired), 'metadata.labels.x');
  assert.equal(firstDifference({ ...actual, spec: { ports: [] } }, desired), 'spec.ports (length)');
  assert.equal(firstDifference({ ...actual, spec: { ports: [{ port: 15008, name: 'other' }] } }, desired), 'spec.ports[0].name');
  assert.equal(firstDifference({ metadata: { name: 'a' } }, desired), 'metadata.labels.x');
  // Zero values the API server drops (omitempty) are not differences.
  assert.equal(firstDifference({ metadata: { name: 'a' } }, { metadata: { name: 'a', annotations: {} }, spec: { delay: 0, items: [] } }), undefined);
  assert.equal(firstDifference({ spec: { delay: 5 } }, { spec: { delay: 0 } }), 'spec.delay');
});
