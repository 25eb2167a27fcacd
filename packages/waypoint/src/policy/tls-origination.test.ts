import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { ConfigError } from '@ambit/api';
import { compileTlsOrigination, planTlsOrigination } from './tls-origination.js';
import { PolicyConfigError } from './diagnostics.js';

const where = { object: 'DestinationRule default/external', field: 'spec.trafficPolicy.tls' };
const files: Record<string, string> = { '/etc/certs/client.pem': 'CERT', '/etc/certs/key.pem': 'KEY', '/etc/certs/ca.pem': 'CA' };
const readFile = (p: string) => { if (!(p in files)) throw new Error('ENOENT'); return Buffer.from(files[p]!); };
const peer = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;

test('DISABLE and no tls block are plaintext; ISTIO_MUTUAL is the HBONE mTLS hop', () => {
  assert.deepEqual(planTlsOrigination(undefined), { kind: 'plaintext' });
  assert.deepEqual(planTlsOrigination(compileTlsOrigination({ mode: 'DISABLE' }, where)), { kind: 'plaintext' });
  assert.deepEqual(planTlsOrigination(compileTlsOrigination({ mode: 'ISTIO_MUTUAL' }, where)), { kind: 'hbone-mtls' });
});

test('SIMPLE with caCertificates and auto SNI from the host (port stripped, never an IP)', () => {
  const s = compileTlsOrigination({ mode: 'SIMPLE', caCertificates: '/etc/certs/ca.pem' }, where);
  const plan = planTlsOrigination(s, { host: 'api.example.com:443', readFile });
  assert.equal(plan.kind, 'tls');
  const o = plan.kind === 'tls' ? plan.options : {};
  assert.equal(o.servername, 'api.example.com');
  assert.equal(String(o.ca), 'CA');
  assert.equal(o.rejectUnauthorized, true);
  assert.equal(o.minVersion, 'TLSv1.2');
  assert.equal(o.checkServerIdentity!('api.example.com', peer('DNS:other.example.com')), undefined, 'no subjectAltNames: host name not checked, as Envoy');
  const ipPlan = planTlsOrigination(s, { host: '10.0.0.1:443', readFile });
  assert.equal(ipPlan.kind === 'tls' && ipPlan.options.servername, undefined);
});

test('MUTUAL with files, explicit sni and subjectAltNames (exact, DNS wildcard, URI)', () => {
  const s = compileTlsOrigination({
    mode: 'MUTUAL', clientCertificate: '/etc/certs/client.pem', privateKey: '/etc/certs/key.pem', caCertificates: '/etc/certs/ca.pem',
    sni: 'my-nginx.mesh-external.svc.cluster.local', subjectAltNames: ['my-nginx.mesh-external.svc.cluster.local', 'spiffe://td/ns/a/sa/b'],
  }, where);
  const plan = planTlsOrigination(s, { host: 'ignored', readFile });
  assert.ok(plan.kind === 'tls');
  assert.equal(String(plan.options.cert), 'CERT');
  assert.equal(String(plan.options.key), 'KEY');
  assert.equal(plan.options.servername, 'my-nginx.mesh-external.svc.cluster.local');
  const check = plan.options.checkServerIdentity!;
  assert.equal(check('x', peer('DNS:my-nginx.mesh-external.svc.cluster.local')), undefined);
  assert.equal(check('x', peer('DNS:*.mesh-external.svc.cluster.local')), undefined);
  assert.equal(check('x', peer('URI:spiffe://td/ns/a/sa/b')), undefined);
  const err = check('x', peer('DNS:evil.example.com'));
  assert.match(String(err?.message), /match none of subjectAltNames/);
});

test('credentialName uses the resolved secret; insecureSkipVerify turns verification off', () => {
  const s = compileTlsOrigination({ mode: 'MUTUAL', credentialName: 'client-credential', insecureSkipVerify: true, subjectAltNames: ['a'] }, where);
  const plan = planTlsOrigination(s, { getCredential: (n) => (n === 'client-credential' ? { cert: 'C', key: 'K', ca: 'A' } : undefined) });
  assert.ok(plan.kind === 'tls');
  assert.deepEqual([plan.options.cert, plan.options.key, plan.options.ca, plan.options.rejectUnauthorized], ['C', 'K', 'A', false]);
  assert.equal(plan.options.checkServerIdentity!('x', peer('DNS:b')), undefined);
  assert.throws(() => planTlsOrigination(s, { getCredential: () => undefined }), (e: unknown) => e instanceof ConfigError && /credential "client-credential" .* not found/.test(e.message));
});

test('unreadable files are a ConfigError naming the file', () => {
  const s = compileTlsOrigination({ mode: 'SIMPLE', caCertificates: '/missing.pem' }, where);
  assert.throws(() => planTlsOrigination(s, { readFile }), /cannot read caCertificates \/missing\.pem/);
});

test('invalid tls settings name the field', () => {
  const bad = (t: unknown, re: RegExp) => assert.throws(() => compileTlsOrigination(t, where), (e: unknown) => e instanceof PolicyConfigError && re.test(e.message));
  bad({ mode: 'STRICT' }, /DestinationRule default\/external: spec\.trafficPolicy\.tls\.mode: must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL/);
  bad({ mode: 'MUTUAL' }, /MUTUAL requires clientCertificate and privateKey, or credentialName/);
  bad({ mode: 'ISTIO_MUTUAL', clientCertificate: '/a' }, /ISTIO_MUTUAL must not set/);
  bad({ mode: 'SIMPLE', credentialName: 'x', caCertificates: '/a' }, /credentialName cannot be combined/);
  bad({ mode: 'SIMPLE', insecureSkipVerify: 'yes' }, /insecureSkipVerify: must be a boolean/);
});
