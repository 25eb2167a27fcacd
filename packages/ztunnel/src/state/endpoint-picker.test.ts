import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStateStore } from './store.js';
import { createStateUpdater } from './updater.js';
import type { ServiceInput, WorkloadInput } from './types.js';

const HOST = 'echo.echo.svc.cluster.local';
const KEY = `echo/${HOST}`;

/** Deterministic uniform [0,1) source (mulberry32), so statistical tests never flake. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ep(name: string, ip: string | string[], extra: Partial<WorkloadInput> = {}, ports: Record<string, number> = { '80': 8080 }): WorkloadInput {
  return {
    uid: `Kubernetes//Pod/echo/${name}`, name, namespace: 'echo', protocol: 'HBONE',
    workloadIps: Array.isArray(ip) ? ip : [ip], services: { [KEY]: ports }, ...extra,
  };
}
function svc(extra: Partial<ServiceInput> = {}): ServiceInput {
  return { name: 'echo', namespace: 'echo', hostname: HOST, vips: [{ network: '', address: '10.96.0.20' }], ports: [{ servicePort: 80, targetPort: 8080 }], ...extra };
}
function world(service: ServiceInput, workloads: WorkloadInput[]) {
  const store = createStateStore();
  const r = createStateUpdater({ store }).applyDelta({ services: [service], workloads });
  assert.deepEqual(r.rejected, []);
  return { store, service: store.serviceByKey(KEY)! };
}

test('weighted endpoint choice follows capacity over 10000 picks within tolerance', () => {
  const { store, service } = world(svc(), [ep('a', '10.0.0.1', { capacity: 1 }), ep('b', '10.0.0.2', { capacity: 3 }), ep('c', '10.0.0.3', { capacity: 6 })]);
  const random = seededRandom(42);
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 10000; i++) {
    const c = store.pickEndpoint(service, 80, { random });
    assert.equal(c.kind, 'endpoint');
    if (c.kind === 'endpoint') counts[c.workload.name]!++;
  }
  // Expected 1000 / 3000 / 6000; 3% of all picks is > 6 standard deviations for each bucket.
  assert.ok(Math.abs(counts.a! - 1000) < 300, JSON.stringify(counts));
  assert.ok(Math.abs(counts.b! - 3000) < 300, JSON.stringify(counts));
  assert.ok(Math.abs(counts.c! - 6000) < 300, JSON.stringify(counts));
});

test('unhealthy and zero-capacity endpoints are never picked', () => {
  const { store, service } = world(svc(), [ep('sick', '10.0.0.1', { status: 'Unhealthy' }), ep('zero', '10.0.0.2', { capacity: 0 }), ep('ok', '10.0.0.3')]);
  const random = seededRandom(1);
  for (let i = 0; i < 200; i++) {
    const c = store.pickEndpoint(service, 80, { random });
    assert.equal(c.kind === 'endpoint' && c.workload.name, 'ok');
  }
});

test('health policy AllowAll lets unhealthy endpoints be picked', () => {
  const { store, service } = world(svc({ loadBalancing: { healthPolicy: 'AllowAll' } }), [ep('sick', '10.0.0.1', { status: 'Unhealthy' })]);
  const c = store.pickEndpoint(service, 80);
  assert.equal(c.kind === 'endpoint' && c.workload.name, 'sick');
});

test('no healthy endpoint gives a reason with counts', () => {
  const { store, service } = world(svc(), [ep('sick', '10.0.0.1', { status: 'Unhealthy' })]);
  const c = store.pickEndpoint(service, 80);
  assert.deepEqual(c, { kind: 'none', reason: `no healthy endpoint for service "${KEY}" port 80 (1 endpoints, 0 healthy)` });
});

test('undeclared service port has no upstream', () => {
  const { store, service } = world(svc(), [ep('a', '10.0.0.1')]);
  const c = store.pickEndpoint(service, 81);
  assert.equal(c.kind, 'none');
  assert.match((c as { reason: string }).reason, /has no port 81 \(ports: 80\)/);
});

test('target port: endpoint mapping, else service target, else the service port', () => {
  const service = svc({ ports: [{ servicePort: 80, targetPort: 8080 }, { servicePort: 9090, targetPort: 0 }, { servicePort: 7070, targetPort: 7171 }] });
  const { store, service: s } = world(service, [ep('a', '10.0.0.1', {}, { '80': 8181 })]);
  const pick = (port: number) => {
    const c = store.pickEndpoint(s, port);
    return c.kind === 'endpoint' ? c.targetPort : c.kind;
  };
  assert.equal(pick(80), 8181, 'the endpoint mapping (named port) wins');
  assert.equal(pick(7070), 7171, 'service target port');
  assert.equal(pick(9090), 9090, 'targetPort 0 means the same port');
});

test('address follows the dialled family and the service ip family restriction', () => {
  const { store, service } = world(svc(), [ep('a', ['10.0.0.1', 'fd00::1'])]);
  const a6 = store.pickEndpoint(service, 80, { family: 6 });
  assert.equal(a6.kind === 'endpoint' && a6.address, 'fd00::1');
  const a4 = store.pickEndpoint(service, 80, { family: 4 });
  assert.equal(a4.kind === 'endpoint' && a4.address, '10.0.0.1');
  const { store: s2, service: v6only } = world(svc({ ipFamilies: 'IPv6Only' }), [ep('a', ['10.0.0.1', 'fd00::1'])]);
  const c = s2.pickEndpoint(v6only, 80, { family: 4 });
  assert.equal(c.kind === 'endpoint' && c.address, 'fd00::1');
});

test('passthrough load balancing mode skips endpoint choice', () => {
  const { store, service } = world(svc({ loadBalancing: { mode: 'Passthrough' } }), []);
  assert.deepEqual(store.pickEndpoint(service, 80), { kind: 'passthrough' });
});

test('failover prefers the closest locality and falls back when it is gone', () => {
  const lb = { mode: 'Failover' as const, routingPreferences: ['Network' as const, 'Region' as const, 'Zone' as const] };
  const near = ep('near', '10.0.0.1', { locality: { region: 'eu', zone: 'eu-1' } });
  const mid = ep('mid', '10.0.0.2', { locality: { region: 'eu', zone: 'eu-2' } });
  const far = ep('far', '10.0.0.3', { locality: { region: 'us', zone: 'us-1' } });
  const src = { uid: 'Kubernetes//Pod/default/client', name: 'client', namespace: 'default', workloadIps: ['10.0.9.9'], locality: { region: 'eu', zone: 'eu-1' } };
  const { store, service } = world(svc({ loadBalancing: lb }), [near, mid, far, src]);
  const source = store.workloadByUid('Kubernetes//Pod/default/client')!;
  const random = seededRandom(7);
  for (let i = 0; i < 50; i++) {
    const c = store.pickEndpoint(service, 80, { source, random });
    assert.equal(c.kind === 'endpoint' && c.workload.name, 'near');
  }
  const { store: s2, service: sv2 } = world(svc({ loadBalancing: lb }), [mid, far, src]);
  const c = s2.pickEndpoint(sv2, 80, { source: s2.workloadByUid('Kubernetes//Pod/default/client')!, random });
  assert.equal(c.kind === 'endpoint' && c.workload.name, 'mid');
});

test('strict locality refuses endpoints that do not match every preference', () => {
  const lb = { mode: 'Strict' as const, routingPreferences: ['Region' as const] };
  const src = { uid: 'Kubernetes//Pod/default/client', name: 'client', namespace: 'default', workloadIps: ['10.0.9.9'], locality: { region: 'eu' } };
  const { store, service } = world(svc({ loadBalancing: lb }), [ep('far', '10.0.0.3', { locality: { region: 'us' } }), src]);
  const c = store.pickEndpoint(service, 80, { source: store.workloadByUid('Kubernetes//Pod/default/client')! });
  assert.equal(c.kind, 'none');
});
