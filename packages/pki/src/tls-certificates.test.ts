import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, createSign, createVerify } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateError } from '@ambit/api';
import {
  CertificateAuthority,
  createTlsCa,
  generateServiceAccountKeyPair,
  issueTlsCertificate,
} from './index.js';
import { x509 } from './x509.js';

test('TLS CA is a self-signed EC P-256 CA with its own subject', async () => {
  const ca = await createTlsCa({ commonName: 'kubernetes-ca' });
  const cert = new X509Certificate(ca.certPem);
  assert.equal(cert.ca, true);
  assert.equal(cert.subject, 'CN=kubernetes-ca');
  assert.ok(cert.verify(cert.publicKey));
  assert.ok(cert.checkPrivateKey(createPrivateKey(ca.keyPem)));
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('server certificate carries CN, DNS and IP SANs and only serverAuth', async () => {
  const ca = await createTlsCa({ commonName: 'kubernetes-ca' });
  const leaf = await issueTlsCertificate(ca, {
    commonName: 'kube-apiserver',
    dnsNames: ['kubernetes', 'kubernetes.default.svc.cluster.local'],
    ipAddresses: ['127.0.0.1', '10.96.0.1', '::1'],
    usages: ['server'],
    ttlSeconds: 3600,
  });
  const cert = new X509Certificate(leaf.certPem);
  assert.equal(cert.subject, 'CN=kube-apiserver');
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
  assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)));
  assert.equal(
    cert.subjectAltName,
    'DNS:kubernetes, DNS:kubernetes.default.svc.cluster.local, IP Address:127.0.0.1, IP Address:10.96.0.1, IP Address:0:0:0:0:0:0:0:1',
  );
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(cert.checkHost('kubernetes'), 'kubernetes');
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const lifetime = new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime();
  assert.equal(lifetime, 3660e3, 'backdated a minute, valid for the hour asked from now');
});

test('client certificate puts each organization in the subject (Kubernetes groups)', async () => {
  const ca = await createTlsCa({ commonName: 'kubernetes-ca' });
  const leaf = await issueTlsCertificate(ca, {
    commonName: 'system:node:n1',
    organizations: ['system:nodes', 'extra-group'],
    usages: ['client'],
    ttlSeconds: 600,
  });
  const parsed = new x509.X509Certificate(leaf.certPem);
  assert.deepEqual(parsed.subjectName.getField('O'), ['system:nodes', 'extra-group']);
  assert.deepEqual(parsed.subjectName.getField('CN'), ['system:node:n1']);
  assert.deepEqual(new X509Certificate(leaf.certPem).keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(new X509Certificate(leaf.certPem).subjectAltName, undefined);
});

test('the mesh CertificateAuthority can issue TLS certificates too', async () => {
  const mesh = await CertificateAuthority.create();
  const leaf = await issueTlsCertificate(mesh, { commonName: 'x', usages: ['server', 'client'], ttlSeconds: 60 });
  assert.ok(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(mesh.rootCertPem)));
  assert.deepEqual(new X509Certificate(leaf.certPem).keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
});

test('mutual TLS on loopback: server verified by IP SAN, client by the same CA', async () => {
  const ca = await createTlsCa({ commonName: 'test-ca' });
  const server = await issueTlsCertificate(ca, { commonName: 'srv', ipAddresses: ['127.0.0.1'], usages: ['server'], ttlSeconds: 60 });
  const client = await issueTlsCertificate(ca, { commonName: 'admin', organizations: ['system:masters'], usages: ['client'], ttlSeconds: 60 });
  const srv = createServer({ cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s) => {
    const peer = s.getPeerCertificate();
    s.end(`${peer.subject.CN}/${String(peer.subject.O)}`);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const { port } = srv.address() as AddressInfo;
    const sock: TLSSocket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem });
    let data = '';
    sock.on('data', (c: Buffer) => (data += c.toString()));
    await once(sock, 'end');
    assert.equal(data, 'admin/system:masters');
    sock.destroy();
  } finally {
    srv.close();
  }
});

test('a client-only certificate is refused as a server certificate', async () => {
  const ca = await createTlsCa({ commonName: 'test-ca' });
  const wrong = await issueTlsCertificate(ca, { commonName: 'srv', ipAddresses: ['127.0.0.1'], usages: ['client'], ttlSeconds: 60 });
  const srv = createServer({ cert: wrong.certPem, key: wrong.keyPem }, (s) => s.end());
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const { port } = srv.address() as AddressInfo;
    const sock = connect({ host: '127.0.0.1', port, ca: ca.certPem });
    const [err] = (await once(sock, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'INVALID_PURPOSE');
  } finally {
    srv.close();
  }
});

test('bad input is refused with a CertificateError that names it', async () => {
  const ca = await createTlsCa({ commonName: 'test-ca' });
  const base = { commonName: 'x', usages: ['server'] as const, ttlSeconds: 60 };
  await assert.rejects(issueTlsCertificate(ca, { ...base, ipAddresses: ['10.0.0.300'] }), (e: Error) => e instanceof CertificateError && /10\.0\.0\.300/.test(e.message));
  await assert.rejects(issueTlsCertificate(ca, { ...base, dnsNames: ['bad name'] }), /"bad name" is not a DNS name/);
  await assert.rejects(issueTlsCertificate(ca, { ...base, usages: [] }), /at least one usage/);
  await assert.rejects(issueTlsCertificate(ca, { ...base, ttlSeconds: 0 }), /positive number of seconds/);
  await assert.rejects(issueTlsCertificate(ca, { ...base, commonName: '' }), /common name/);
  await assert.rejects(issueTlsCertificate(ca, { ...base, ttlSeconds: 20 * 365 * 24 * 3600 }), /after the CA's/);
  await assert.rejects(issueTlsCertificate({ certPem: 'garbage', keyPem: ca.keyPem }, base), /not a PEM X.509 certificate/);
});

for (const algorithm of ['rsa', 'ec'] as const) {
  test(`service-account key pair (${algorithm}) signs and verifies`, () => {
    const pair = generateServiceAccountKeyPair({ algorithm });
    assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
    const sig = createSign('sha256').update('token').sign(pair.privateKeyPem);
    assert.ok(createVerify('sha256').update('token').verify(createPublicKey(pair.publicKeyPem), sig));
    assert.equal(createPrivateKey(pair.privateKeyPem).asymmetricKeyType, algorithm);
  });
}
