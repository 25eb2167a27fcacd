import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, decodeAddress, decodeAuthorization,
  type DeltaDiscoveryResponse, type Workload,
} from '@ambit/api';
import { ipToBytes } from '../src/index.js';
import { openAds, startHarness, waitFor, type AdsStream, type Harness } from './harness.js';

const NODE = { id: 'ztunnel~10.0.1.2~ztunnel-aaaaa.istio-system~istio-system.svc.cluster.local' };

function pod(name: string, ip: string, services: string[] = [], extra: Partial<Workload> = {}): Workload {
  return {
    uid: `Kubernetes//Pod/default/${name}`, name, namespace: 'default', addresses: [ipToBytes(ip)], network: 'net1',
    service_account: 'app', node: 'node1', tunnel_protocol: 'HBONE',
    services: Object.fromEntries(services.map((s) => [s, { ports: [{ service_port: 80, target_port: 8080 }] }])),
    ...extra,
  };
}

function names(r: DeltaDiscoveryResponse): string[] {
  return (r.resources ?? []).map((x) => x.name ?? '').sort();
}

async function ack(s: AdsStream, r: DeltaDiscoveryResponse): Promise<void> {
  s.send({ type_url: r.type_url!, response_nonce: r.nonce! });
}

async function withHarness(fn: (h: Harness) => Promise<void>, debounceMs?: number): Promise<void> {
  const h = await startHarness(debounceMs === undefined ? {} : { debounceMs });
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

test('wildcard subscription gets everything, then only changes', () => withHarness(async (h) => {
  h.store.upsertWorkload(pod('a', '10.0.1.10'));
  h.store.upsertWorkload(pod('b', '10.0.1.11'));
  h.store.upsertAuthorization({ name: 'allow-nothing', namespace: 'default', scope: 'NAMESPACE', action: 'ALLOW' });

  const s = openAds(h);
  s.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
  s.send({ type_url: AUTHORIZATION_TYPE_URL });
  const first = await s.next();
  assert.equal(first.type_url, ADDRESS_TYPE_URL);
  assert.deepEqual(names(first), ['Kubernetes//Pod/default/a', 'Kubernetes//Pod/default/b']);
  const a = first.resources!.find((r) => r.name === 'Kubernetes//Pod/default/a')!;
  assert.deepEqual(a.aliases, ['net1/10.0.1.10']);
  assert.equal(a.resource!.type_url, ADDRESS_TYPE_URL);
  assert.equal(decodeAddress(a.resource!.value).workload!.name, 'a');
  const authz = await s.next();
  assert.equal(authz.type_url, AUTHORIZATION_TYPE_URL);
  assert.equal(decodeAuthorization(authz.resources![0]!.resource!.value).scope, 'NAMESPACE');
  assert.equal(authz.resources![0]!.name, 'default/allow-nothing');
  await ack(s, first);
  await ack(s, authz);

  // Only b changes: the push carries b alone, and nothing for the authorization type.
  h.store.upsertWorkload(pod('b', '10.0.1.11', [], { status: 'UNHEALTHY' }));
  const change = await s.next();
  assert.equal(change.type_url, ADDRESS_TYPE_URL);
  assert.deepEqual(names(change), ['Kubernetes//Pod/default/b']);
  assert.deepEqual(change.removed_resources, []);
  await ack(s, change);
  // Writing identical content is not a change.
  h.store.upsertWorkload(pod('a', '10.0.1.10'));
  assert.equal(await s.quietFor(100), true);

  const conn = await waitFor('acked versions', () => {
    const c = h.xds.connections()[0];
    return c && Object.keys(c.types[ADDRESS_TYPE_URL]?.acked ?? {}).length === 2 && c.types[ADDRESS_TYPE_URL]!.pendingNonces.length === 0 ? c : undefined;
  });
  assert.equal(conn.nodeId, NODE.id);
  assert.equal(conn.caller, 'istio-system/ztunnel (pod ztunnel-aaaaa)');
  assert.equal(conn.types[ADDRESS_TYPE_URL]!.wildcard, true);
  s.close();
}));

test('a deleted resource arrives as removed_resources', () => withHarness(async (h) => {
  h.store.upsertWorkload(pod('a', '10.0.1.10'));
  h.store.upsertWorkload(pod('b', '10.0.1.11'));
  const s = openAds(h);
  s.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
  await ack(s, await s.next());
  assert.equal(h.store.remove(ADDRESS_TYPE_URL, 'Kubernetes//Pod/default/a'), true);
  const r = await s.next();
  assert.deepEqual(r.resources, []);
  assert.deepEqual(r.removed_resources, ['Kubernetes//Pod/default/a']);
  s.close();
}));

test('a NACK keeps the last ACKed version, is logged with the client id and recorded for status', () => withHarness(async (h) => {
  h.store.upsertWorkload(pod('a', '10.0.1.10'));
  const s = openAds(h);
  s.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
  const first = await s.next();
  const goodVersion = first.resources![0]!.version!;
  await ack(s, first);

  h.store.upsertWorkload(pod('a', '10.0.1.10', [], { canonical_name: 'bad' }));
  const bad = await s.next();
  const badVersion = bad.resources![0]!.version!;
  assert.notEqual(badVersion, goodVersion);
  s.send({ type_url: ADDRESS_TYPE_URL, response_nonce: bad.nonce!, error_detail: { code: 3, message: 'workload a: unsupported canonical name' } });

  const nack = await waitFor('a NACK record', () => h.xds.nacks()[0]);
  assert.equal(nack.nodeId, NODE.id);
  assert.equal(nack.typeUrl, ADDRESS_TYPE_URL);
  assert.equal(nack.error, 'workload a: unsupported canonical name');
  assert.deepEqual(nack.rejected, [{ name: 'Kubernetes//Pod/default/a', version: badVersion }]);
  const st = h.xds.connections()[0]!.types[ADDRESS_TYPE_URL]!;
  assert.deepEqual(st.acked, { 'Kubernetes//Pod/default/a': goodVersion });
  assert.equal(st.lastNack?.nonce, bad.nonce);
  const line = h.logs.lines.find((l) => l.msg === 'xDS client rejected a response (NACK)');
  assert.ok(line, 'NACK is logged');
  assert.equal(line.node, NODE.id);
  assert.equal(line.error, 'workload a: unsupported canonical name');

  // The rejected version is not resent on an unrelated push; a fixed version is pushed normally.
  h.store.upsertWorkload(pod('b', '10.0.1.11'));
  const unrelated = await s.next();
  assert.deepEqual(names(unrelated), ['Kubernetes//Pod/default/b']);
  await ack(s, unrelated);
  h.store.upsertWorkload(pod('a', '10.0.1.10', [], { canonical_name: 'fixed' }));
  const fixed = await s.next();
  assert.deepEqual(names(fixed), ['Kubernetes//Pod/default/a']);
  await ack(s, fixed);
  await waitFor('fixed version acked', () =>
    h.xds.connections()[0]!.types[ADDRESS_TYPE_URL]!.acked['Kubernetes//Pod/default/a'] === fixed.resources![0]!.version ? true : undefined);
  s.close();
}));

test('a reconnect with initial_resource_versions gets only what changed while it was away', () => withHarness(async (h) => {
  h.store.upsertWorkload(pod('a', '10.0.1.10'));
  h.store.upsertWorkload(pod('b', '10.0.1.11'));
  h.store.upsertWorkload(pod('c', '10.0.1.12'));
  const s1 = openAds(h);
  s1.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
  const first = await s1.next();
  assert.equal(first.resources!.length, 3);
  await ack(s1, first);
  const held = Object.fromEntries(first.resources!.map((r) => [r.name!, r.version!]));
  s1.close();
  await waitFor('first stream gone', () => (h.xds.connections().length === 0 ? true : undefined));

  // While disconnected: b changes, c is deleted, d appears; a is untouched.
  h.store.upsertWorkload(pod('b', '10.0.1.11', [], { status: 'UNHEALTHY' }));
  h.store.remove(ADDRESS_TYPE_URL, 'Kubernetes//Pod/default/c');
  h.store.upsertWorkload(pod('d', '10.0.1.13'));

  const s2 = openAds(h);
  s2.send({ node: NODE, type_url: ADDRESS_TYPE_URL, initial_resource_versions: held });
  const r = await s2.next();
  assert.deepEqual(names(r), ['Kubernetes//Pod/default/b', 'Kubernetes//Pod/default/d']);
  assert.deepEqual(r.removed_resources, ['Kubernetes//Pod/default/c']);
  s2.close();
}));

test('on-demand: a <network>/<ip> subscription returns the Service and its Workloads; removals follow', () => withHarness(async (h) => {
  h.store.upsertService({
    name: 'echo', namespace: 'default', hostname: 'echo.default.svc.cluster.local',
    addresses: [{ network: 'net1', address: ipToBytes('10.96.0.10') }], ports: [{ service_port: 80, target_port: 8080 }],
  });
  h.store.upsertWorkload(pod('echo-1', '10.0.1.10', ['default/echo.default.svc.cluster.local']));
  h.store.upsertWorkload(pod('echo-2', '10.0.2.10', ['default/echo.default.svc.cluster.local']));
  h.store.upsertWorkload(pod('other', '10.0.1.99'));

  const s = openAds(h);
  // ztunnel's on-demand start: subscribe and unsubscribe "*" together, i.e. nothing yet.
  s.send({ node: NODE, type_url: ADDRESS_TYPE_URL, resource_names_subscribe: ['*'], resource_names_unsubscribe: ['*'] });
  const empty = await s.next();
  assert.deepEqual(empty.resources, []);
  await ack(s, empty);

  s.send({ type_url: ADDRESS_TYPE_URL, resource_names_subscribe: ['net1/10.96.0.10'] });
  const vip = await s.next();
  assert.deepEqual(names(vip), [
    'Kubernetes//Pod/default/echo-1', 'Kubernetes//Pod/default/echo-2', 'default/echo.default.svc.cluster.local',
  ]);
  const svc = vip.resources!.find((r) => r.name === 'default/echo.default.svc.cluster.local')!;
  assert.deepEqual(svc.aliases, ['net1/10.96.0.10']);
  assert.equal(decodeAddress(svc.resource!.value).type, 'service');
  await ack(s, vip);

  // A workload IP works the same way; an unknown IP is answered "does not exist".
  s.send({ type_url: ADDRESS_TYPE_URL, resource_names_subscribe: ['net1/10.0.1.99', 'net1/10.9.9.9'] });
  const more = await s.next();
  assert.deepEqual(names(more), ['Kubernetes//Pod/default/other']);
  assert.deepEqual(more.removed_resources, ['net1/10.9.9.9']);
  await ack(s, more);

  // Unrelated resources are never pushed to this client; a subscribed one being deleted is.
  h.store.upsertWorkload(pod('stranger', '10.0.3.3'));
  h.store.remove(ADDRESS_TYPE_URL, 'Kubernetes//Pod/default/echo-2');
  const removal = await s.next();
  assert.deepEqual(removal.resources, []);
  assert.deepEqual(removal.removed_resources, ['Kubernetes//Pod/default/echo-2']);
  await ack(s, removal);
  // A new endpoint of the subscribed Service is pushed because it resolves through the VIP.
  h.store.upsertWorkload(pod('echo-3', '10.0.2.11', ['default/echo.default.svc.cluster.local']));
  const added = await s.next();
  assert.deepEqual(names(added), ['Kubernetes//Pod/default/echo-3']);
  s.close();
}));

test('debounce coalesces a burst of writes into one push', () => withHarness(async (h) => {
  const s = openAds(h);
  s.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
  await ack(s, await s.next());
  for (let i = 0; i < 50; i++) h.store.upsertWorkload(pod(`p${i}`, `10.0.5.${i + 1}`));
  for (let i = 0; i < 50; i++) h.store.upsertWorkload(pod(`p${i}`, `10.0.5.${i + 1}`, [], { status: 'UNHEALTHY' }));
  const r = await s.next();
  assert.equal(r.resources!.length, 50);
  for (const res of r.resources!) assert.equal(decodeAddress(res.resource!.value).workload!.status, 'UNHEALTHY');
  assert.equal(await s.quietFor(200), true, 'the burst produced a single response');
  s.close();
}, 50));

test('a bad token, a missing token and a foreign cluster id get UNAUTHENTICATED with the reason', () => withHarness(async (h) => {
  for (const [token, cluster, reason] of [
    ['not-a-token', undefined, /service-account token rejected: token is not valid/],
    [null, undefined, /no "authorization: Bearer <token>" metadata/],
    ['token-ztunnel-node1', 'other-cluster', /client cluster "other-cluster".*not this controller's cluster "Kubernetes"/],
  ] as const) {
    const s = openAds(h, token, cluster);
    s.send({ node: NODE, type_url: ADDRESS_TYPE_URL });
    const status = await s.status;
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.match(status.details, reason);
    s.close();
  }
  assert.equal(h.xds.connections().length, 0);
}));
