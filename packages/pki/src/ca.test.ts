import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, createCsr, verifyChain, uriSans } from './index.js';

const ID = 'spiffe://cluster.local/ns/default/sa/sleep';

test('root is a self-signed ECDSA P-256 CA valid for 10 years', async () => {
  const ca = await CertificateAuthority.create();
  const root = new X509Certificate(ca.rootCertPem);
  assert.equal(root.ca, true);
  assert.equal(root.publicKey.asymmetricKeyType, 'ec');
  assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(root.verify(root.publicKey));
  const years = (new Date(root.validTo).getTime() - new Date(root.validFrom).getTime()) / (365 * 24 * 3600e3);
  assert.ok(years >= 9.99 && years <= 10.01, `validity ${years} years`);
  assert.match(root.subject, /O=cluster.local/);
});

test('workload certificate has only a URI SAN, empty subject and a 24 h life', async () => {
  const ca = await CertificateAuthority.create();
  const wc = await ca.issueWorkloadCertificate(ID);
  const leaf = new X509Certificate(wc.certChainPem[0]!);
  assert.ok(!leaf.subject, 'empty subject');
  assert.equal(leaf.subjectAltName, `URI:${ID}`);
  assert.deepEqual(uriSans(leaf), [ID]);
  assert.equal(leaf.ca, false);
  assert.equal(createPrivateKey(wc.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(leaf.checkPrivateKey(createPrivateKey(wc.keyPem)));
  assert.equal(wc.notAfter.getTime() - wc.notBefore.getTime(), 24 * 3600e3);
  assert.equal(verifyChain(wc.certChainPem, wc.rootsPem).identity, ID);
});

test('openssl verifies the issued chain and sees the critical URI SAN', async (t) => {
  const ca = await CertificateAuthority.create();
  const wc = await ca.issueWorkloadCertificate(ID);
  const dir = mkdtempSync(join(tmpdir(), 'pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'root.pem'), ca.rootCertPem);
  writeFileSync(join(dir, 'leaf.pem'), wc.certChainPem[0]!);
  const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')]).toString();
  assert.match(out, /leaf.pem: OK/);
  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']).toString();
  assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
});

test('CSR round trip: the CA signs the requested identity and returns leaf then root', async () => {
  const ca = await CertificateAuthority.create();
  const { csrPem, keyPem } = await createCsr(ID);
  assert.match(csrPem, /BEGIN CERTIFICATE REQUEST/);
  const chain = await ca.signCsr(csrPem, { ttlSeconds: 3600 });
  assert.equal(chain.length, 2);
  assert.equal(chain[1], ca.rootCertPem);
  const leaf = new X509Certificate(chain[0]!);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(keyPem)));
  assert.deepEqual(uriSans(leaf), [ID]);
  const v = verifyChain(chain, [ca.rootCertPem]);
  assert.equal(v.notAfter.getTime() - v.notBefore.getTime(), 3600e3);
});

test('CSR signing with an authorized identity replaces the SAN (impersonation)', async () => {
  const ca = await CertificateAuthority.create();
  const { csrPem } = await createCsr('spiffe://cluster.local/ns/istio-system/sa/ztunnel');
  const chain = await ca.signCsr(csrPem, { identity: ID });
  assert.deepEqual(uriSans(chain[0]!), [ID]);
});

test('CSR for another trust domain, garbage CSR and bad ttl are refused with a reason', async () => {
  const ca = await CertificateAuthority.create();
  const { csrPem } = await createCsr('spiffe://other.domain/ns/a/sa/b');
  await assert.rejects(ca.signCsr(csrPem), /not in this CA's trust domain "cluster.local"/);
  await assert.rejects(ca.signCsr('hello'), /not a PEM PKCS#10 request/);
  await assert.rejects(ca.issueWorkloadCertificate(ID, { ttlSeconds: 0 }), /outside/);
  const { csrPem: nonSpiffe } = await createCsr('https://example.com/x');
  await assert.rejects(ca.signCsr(nonSpiffe), /is not spiffe:/);
});

test('verifyChain refuses an expired leaf, a foreign root and a mismatched identity', async () => {
  const ca = await CertificateAuthority.create();
  const other = await CertificateAuthority.create();
  const expired = await ca.issueWorkloadCertificate(ID, { notBefore: new Date(Date.now() - 7200e3), ttlSeconds: 3600 });
  assert.throws(() => verifyChain(expired.certChainPem, [ca.rootCertPem]), /expired at/);
  const good = await ca.issueWorkloadCertificate(ID);
  assert.throws(() => verifyChain(good.certChainPem, [other.rootCertPem]), /not signed by any trusted root/);
  assert.throws(() => verifyChain(good.certChainPem, [ca.rootCertPem], { expectedIdentity: 'spiffe://cluster.local/ns/x/sa/y' }), /expected spiffe:\/\/cluster.local\/ns\/x\/sa\/y/);
  assert.equal(verifyChain([...good.certChainPem, ca.rootCertPem], [ca.rootCertPem]).identity, ID);
});

test('a CA reloaded from its PEMs keeps signing for the same root', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: 'example.org' });
  const again = await CertificateAuthority.load({ certPem: ca.rootCertPem, keyPem: ca.keyPem, trustDomain: 'example.org' });
  const wc = await again.issueWorkloadCertificate('spiffe://example.org/ns/a/sa/b');
  assert.equal(verifyChain(wc.certChainPem, [ca.rootCertPem]).identity, 'spiffe://example.org/ns/a/sa/b');
  const other = await CertificateAuthority.create();
  await assert.rejects(CertificateAuthority.load({ certPem: ca.rootCertPem, keyPem: other.keyPem }), /does not match/);
});
