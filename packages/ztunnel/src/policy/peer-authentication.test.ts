import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize } from './authorize.js';
import { checkPeerAuthentication, createStaticStrictPolicy, peerAuthenticationModeOf } from './peer-authentication.js';
import { createStateStore } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';

const strict = createStaticStrictPolicy('istio-system');
const plaintext = { sourceIp: '10.0.1.10', destinationIp: '10.0.2.20', destinationPort: 8080 };
const mtls = { ...plaintext, sourceIdentity: 'spiffe://cluster.local/ns/default/sa/sleep' };

test('strict peer authentication refuses plaintext inbound with a clear reason', () => {
  const d = checkPeerAuthentication({ applicable: [strict] });
  assert.equal(d.allow, false);
  assert.match(d.reason, /^plaintext connection refused: PeerAuthentication STRICT requires mTLS \(policy "istio-system\/istio_converted_static_strict"\)/);
});

test('strict peer authentication lets any mTLS identity through', () => {
  assert.equal(checkPeerAuthentication({ applicable: [strict], sourceIdentity: mtls.sourceIdentity }).allow, true);
});

test('permissive allows plaintext', () => {
  assert.deepEqual(checkPeerAuthentication({ applicable: [] }), { allow: true, reason: 'PERMISSIVE' });
});

test('authorize reaches the same verdict through the static strict policy', () => {
  assert.equal(authorize(plaintext, [strict]).reason, 'denied by DENY policy "istio-system/istio_converted_static_strict"');
  assert.equal(authorize(mtls, [strict]).allow, true);
});

test('strict mode comes from the policy listed on the workload', () => {
  const store = createStateStore();
  const r = createStateUpdater({ store }).applyDelta({
    policies: [{ ...strict, rules: strict.rules.map((g) => g.map((c) => [...c])) }],
    workloads: [
      { uid: 'Kubernetes//Pod/a/strict', name: 'strict', namespace: 'a', workloadIps: ['10.0.0.1'], authorizationPolicies: ['istio-system/istio_converted_static_strict'] },
      { uid: 'Kubernetes//Pod/a/loose', name: 'loose', namespace: 'a', workloadIps: ['10.0.0.2'] },
    ],
  });
  assert.deepEqual(r.rejected, []);
  assert.equal(peerAuthenticationModeOf(store.policiesFor(store.workloadByUid('Kubernetes//Pod/a/strict')!)), 'STRICT');
  assert.equal(peerAuthenticationModeOf(store.policiesFor(store.workloadByUid('Kubernetes//Pod/a/loose')!)), 'PERMISSIVE');
});
