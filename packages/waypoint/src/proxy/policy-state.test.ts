import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { KubeObject } from '@ambit/api';
import { createConfigStore } from '../state/config-store.js';
import { createPolicyState, POLICY_VALIDATORS } from './policy-state.js';

const NS = 'shop';
const ISS = 'issuer@example.test';
const obj = (kind: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: kind === 'RequestAuthentication' || kind === 'AuthorizationPolicy' ? 'security.istio.io/v1' : 'networking.istio.io/v1', kind, metadata: { name, namespace: NS }, spec,
});

test('the JWT authenticator (and its JWKS cache) survives unrelated config changes; a RequestAuthentication change rebuilds it', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISS).setSubject('u1')
    .setIssuedAt().setExpirationTime('1h').sign(privateKey as CryptoKey);
  let fetches = 0;
  const store = createConfigStore({ domainSuffix: 'cluster.local', validators: POLICY_VALIDATORS });
  const policy = createPolicyState(store, { waypoint: { namespace: NS, name: 'waypoint' }, fetchJwks: async () => { fetches++; return { keys: [jwk] }; } });
  const targetRefs = [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }];
  const ra = obj('RequestAuthentication', 'jwt', { targetRefs, jwtRules: [{ issuer: ISS, jwksUri: 'https://keys.example.test/jwks' }] });
  assert.deepEqual(store.apply({ upserts: [ra] }).rejected, []);
  const request = { headers: { authorization: `Bearer ${token}` }, path: '/' };
  const first = policy.jwt();
  const r1 = await first.authenticate(request);
  assert.ok(r1.ok && !r1.anonymous, 'the token was verified');
  assert.equal(fetches, 1);
  const authz = policy.authz();
  // Unrelated objects: a VirtualService, a DestinationRule.
  assert.deepEqual(store.apply({ upserts: [obj('VirtualService', 'vs', { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }] }] }), obj('DestinationRule', 'dr', { host: 'a' })] }).rejected, []);
  assert.equal(policy.jwt(), first, 'same authenticator');
  assert.equal(policy.authz(), authz, 'same authorization engine');
  assert.equal((await policy.jwt().authenticate(request)).ok, true);
  assert.equal(fetches, 1, 'the JWKS is not fetched again');
  // The same RequestAuthentication re-sent unchanged is not a change either.
  store.apply({ upserts: [{ ...ra }] });
  assert.equal(policy.jwt(), first);
  // An AuthorizationPolicy change rebuilds the engine only.
  store.apply({ upserts: [obj('AuthorizationPolicy', 'deny', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/x'] } }] }] })] });
  assert.notEqual(policy.authz(), authz);
  assert.equal(policy.jwt(), first);
  // A RequestAuthentication change rebuilds the authenticator.
  store.apply({ upserts: [obj('RequestAuthentication', 'jwt', { targetRefs, jwtRules: [{ issuer: ISS, jwksUri: 'https://keys.example.test/jwks', forwardOriginalToken: true }] })] });
  assert.notEqual(policy.jwt(), first);
});

test('DestinationRule and Telemetry are validated by the policy compilers, naming the field', () => {
  const store = createConfigStore({ domainSuffix: 'cluster.local', validators: POLICY_VALIDATORS });
  const bad = store.apply({ upserts: [
    obj('DestinationRule', 'lb', { host: 'a', trafficPolicy: { portLevelSettings: [{ port: { number: 8080 }, loadBalancer: { simple: 'FASTEST' } }] } }),
    { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: NS }, spec: { tracing: [{ randomSamplingPercentage: 250 }] } },
  ] }).rejected;
  assert.equal(bad.length, 2);
  assert.match(bad[0]!.message, /DestinationRule shop\/lb: spec\.trafficPolicy\.portLevelSettings\[0\]\.loadBalancer\.simple: must be ROUND_ROBIN/);
  assert.match(bad[1]!.message, /Telemetry shop\/t: spec\.tracing\[0\]\.randomSamplingPercentage: must be 0\.\.100/);
  // A Telemetry naming a provider the mesh does not define is accepted (tracing stays off, logged).
  assert.deepEqual(store.apply({ upserts: [{ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'ok', namespace: NS }, spec: { tracing: [{ providers: [{ name: 'nope' }] }] } }] }).rejected, []);
});
