import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerAuthenticationKeys, staticStrictAuthorization, translatePeerAuthentication } from './peer-authentication.js';
import { peerAuthentication } from './test-fixtures.js';

const ROOT = 'istio-system';
const STRICT_KEY = 'istio-system/istio_converted_static_strict';
const keys = (root: ReturnType<typeof peerAuthentication>[], ns: ReturnType<typeof peerAuthentication>[], labels: Record<string, string> = { app: 'db' }): string[] =>
  peerAuthenticationKeys(ROOT, root, ns, labels);

test('the static STRICT policy: DENY without an mTLS identity, selector scope, in the root namespace', () => {
  assert.deepEqual(staticStrictAuthorization(ROOT), {
    name: 'istio_converted_static_strict', namespace: ROOT, scope: 'WORKLOAD_SELECTOR', action: 'DENY',
    groups: [{ rules: [{ matches: [{ not_principals: [{ presence: {} }] }] }] }],
  });
});

test('mesh STRICT applies everywhere; namespace PERMISSIVE overrides it; no policy means PERMISSIVE', () => {
  const mesh = peerAuthentication(ROOT, 'default', { mtls: { mode: 'STRICT' } });
  assert.deepEqual(keys([mesh], []), [STRICT_KEY]);
  assert.deepEqual(keys([mesh], [peerAuthentication('shop', 'default', { mtls: { mode: 'PERMISSIVE' } })]), []);
  assert.deepEqual(keys([], []), []);
  assert.deepEqual(keys([], [peerAuthentication('shop', 'default', { mtls: { mode: 'DISABLE' } })]), []);
});

test('namespace STRICT; a workload policy with mode PERMISSIVE opts the workload out; the oldest namespace policy wins', () => {
  const ns = peerAuthentication('shop', 'strict', { mtls: { mode: 'STRICT' } }, '2026-01-01T00:00:00Z');
  assert.deepEqual(keys([], [ns]), [STRICT_KEY]);
  const wl = peerAuthentication('shop', 'db-permissive', { selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'PERMISSIVE' } });
  assert.deepEqual(keys([], [ns, wl]), []);
  assert.deepEqual(keys([], [ns, wl], { app: 'web' }), [STRICT_KEY], 'the selector does not match web');
  const newer = peerAuthentication('shop', 'newer', { mtls: { mode: 'PERMISSIVE' } }, '2026-02-01T00:00:00Z');
  assert.deepEqual(keys([], [newer, ns]), [STRICT_KEY]);
});

test('namespace STRICT + workload port-level PERMISSIVE: the workload lists only the merged converted policy', () => {
  const ns = peerAuthentication('shop', 'default', { mtls: { mode: 'STRICT' } });
  const wl = peerAuthentication('shop', 'db-metrics', { selector: { matchLabels: { app: 'db' } }, portLevelMtls: { 9100: { mode: 'PERMISSIVE' } } });
  assert.deepEqual(keys([], [ns, wl]), ['shop/converted_peer_authentication_db-metrics']);
  const converted = translatePeerAuthentication(wl, ROOT, ns, undefined);
  // Deny when there is no identity AND the port is not 9100: plaintext reaches 9100 only.
  assert.deepEqual(converted, {
    name: 'converted_peer_authentication_db-metrics', namespace: 'shop', scope: 'WORKLOAD_SELECTOR', action: 'DENY',
    groups: [{ rules: [{ matches: [{ not_destination_ports: [9100] }] }, { matches: [{ not_principals: [{ presence: {} }] }] }] }],
  });
});

test('PERMISSIVE workload with one STRICT port: one group for that port, no static policy', () => {
  const wl = peerAuthentication('shop', 'db', { selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { '5432': { mode: 'STRICT' }, '8080': { mode: 'PERMISSIVE' } } });
  assert.deepEqual(keys([], [wl]), ['shop/converted_peer_authentication_db']);
  assert.deepEqual(translatePeerAuthentication(wl, ROOT, undefined, undefined)!.groups, [
    { rules: [{ matches: [{ not_principals: [{ presence: {} }], destination_ports: [5432] }] }] },
  ]);
});

test('STRICT workload whose ports are all STRICT needs no converted policy; root-namespace and selectorless ones never convert', () => {
  const allStrict = peerAuthentication('shop', 'db', { selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 5432: { mode: 'STRICT' } } });
  assert.equal(translatePeerAuthentication(allStrict, ROOT, undefined, undefined), undefined);
  assert.deepEqual(keys([], [allStrict]), [STRICT_KEY]);
  assert.equal(translatePeerAuthentication(peerAuthentication(ROOT, 'x', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 1: { mode: 'STRICT' } } }), ROOT, undefined, undefined), undefined);
  assert.equal(translatePeerAuthentication(peerAuthentication('shop', 'ns', { mtls: { mode: 'STRICT' } }), ROOT, undefined, undefined), undefined);
});

test('a bad mode or port key is an error naming the field', () => {
  assert.throws(() => keys([peerAuthentication(ROOT, 'default', { mtls: { mode: 'strict' } })], []), /PeerAuthentication istio-system\/default: spec\.mtls\.mode: "strict" is not one of/);
  const badPort = peerAuthentication('shop', 'db', { selector: { matchLabels: { app: 'db' } }, portLevelMtls: { http: { mode: 'STRICT' } } });
  assert.throws(() => translatePeerAuthentication(badPort, ROOT, undefined, undefined), /spec\.portLevelMtls\[http\]: the key must be a port number/);
});
