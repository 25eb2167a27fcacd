import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import {
  CertificateError, IdentityMismatchError, loadGrpcServices, structString, type IstioCertificateRequest, type IstioCertificateResponse,
} from '@ambit/api';
import { CertificateAuthority, issueTlsCertificate, uriSans, verifyChain } from '@ambit/pki';
import { createGrpcCaClient } from './ca-client.js';
import { SecretManager } from './secret-manager.js';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.ca-test.sig';

interface Seen {
  readonly request: IstioCertificateRequest;
  readonly metadata: grpc.Metadata;
  readonly csrUris: string[];
}

/**
 * An IstioCertificateService backed by the mesh CertificateAuthority, served over TLS with a certificate from the
 * same root (as istiod does). `issueAs` makes it sign a different identity than asked (a misbehaving CA).
 */
async function startFakeCa(t: { after(fn: () => void): void }, options: { issueAs?: string; fail?: grpc.status } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-ca-client-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await CertificateAuthority.create({ trustDomain: 'cluster.local' });
  const serverCert = await issueTlsCertificate(ca, { commonName: 'istiod', dnsNames: ['istiod.istio-system.svc'], ipAddresses: ['127.0.0.1'], usages: ['server'], ttlSeconds: 3600 });
  const seen: Seen[] = [];
  const server = new grpc.Server();
  server.addService(loadGrpcServices().ca, {
    CreateCertificate: (call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, cb: grpc.sendUnaryData<IstioCertificateResponse>) => {
      const csr = call.request.csr ?? '';
      void (async () => {
        // The CSR's own SAN: what the CA signs when it is not told an identity.
        const own = await ca.signCsr(csr);
        const csrUris = uriSans(own[0]!);
        seen.push({ request: call.request, metadata: call.metadata, csrUris });
        if (options.fail !== undefined) return cb({ code: options.fail, details: 'token rejected' });
        const impersonated = structString(call.request.metadata, 'ImpersonatedIdentity');
        const chain = await ca.signCsr(csr, { identity: options.issueAs ?? impersonated, ttlSeconds: Number(call.request.validity_duration) || 3600 });
        cb(null, { cert_chain: chain });
      })().catch((err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }));
    },
  });
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serverCert.certPem), private_key: Buffer.from(serverCert.keyPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());
  const rootCaPath = join(dir, 'root-cert.pem');
  writeFileSync(rootCaPath, ca.rootCertPem);
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, `${TOKEN}\n`);
  const client = createGrpcCaClient({
    address: `127.0.0.1:${port}`, rootCaPath, authToken: { file: tokenPath }, clusterId: 'cluster-a', headers: { 'x-ca-extra': '1' },
    ttlSeconds: 7200, logger: pino({ level: 'silent' }),
  });
  t.after(() => client.close());
  return { ca, client, seen, port, rootCaPath, tokenPath, dir };
}

test('CA client: CSR for the identity, ImpersonatedIdentity, bearer token and clusterid sent; chain verified against the returned root', async (t) => {
  const { ca, client, seen } = await startFakeCa(t);
  const cert = await client.fetchCertificate(SLEEP);
  assert.equal(seen.length, 1);
  const [req] = seen;
  assert.deepEqual(req!.csrUris, [SLEEP]);
  assert.match(req!.request.csr ?? '', /^-----BEGIN CERTIFICATE REQUEST-----/);
  assert.equal(Number(req!.request.validity_duration), 7200);
  assert.equal(structString(req!.request.metadata, 'ImpersonatedIdentity'), SLEEP);
  assert.deepEqual(req!.metadata.get('authorization'), [`Bearer ${TOKEN}`]);
  assert.deepEqual(req!.metadata.get('clusterid'), ['cluster-a']);
  assert.deepEqual(req!.metadata.get('x-ca-extra'), ['1']);

  assert.equal(cert.identity, SLEEP);
  assert.equal(cert.certChainPem.length, 1, 'the root the CA appends is not repeated in the chain');
  assert.deepEqual(cert.rootsPem, [ca.rootCertPem]);
  assert.deepEqual(uriSans(cert.certChainPem[0]!), [SLEEP]);
  assert.equal(verifyChain(cert.certChainPem, cert.rootsPem).identity, SLEEP);
  // The key is ours and matches the leaf.
  assert.ok(new X509Certificate(cert.certChainPem[0]!).checkPrivateKey((await import('node:crypto')).createPrivateKey(cert.keyPem)));
  assert.ok(cert.notAfter.getTime() - cert.notBefore.getTime() > 7000_000);
  assert.match(client.describe(), /^CA 127\.0\.0\.1:\d+$/);
});

test('CA client: a certificate for another identity is refused, and the secret manager does not use it', async (t) => {
  const { client } = await startFakeCa(t, { issueAs: 'spiffe://cluster.local/ns/default/sa/admin' });
  await assert.rejects(client.fetchCertificate(SLEEP), (err: Error) => {
    assert.ok(err instanceof IdentityMismatchError);
    assert.match(err.message, /issued a certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/admin when spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep was requested/);
    return true;
  });
  const secrets = new SecretManager(client, pino({ level: 'silent' }));
  t.after(() => secrets.stop());
  secrets.retain(SLEEP);
  const settled = await Promise.race([secrets.credentialsFor(SLEEP).then(() => 'issued'), new Promise((r) => setTimeout(() => r('pending'), 300))]);
  assert.equal(settled, 'pending');
  assert.match(secrets.list()[0]?.lastError ?? '', /was requested/);
});

test('CA client: an untrusted server certificate, a refused token and a missing token file are errors that say what to check', async (t) => {
  const { client, rootCaPath, tokenPath, port } = await startFakeCa(t, { fail: grpc.status.UNAUTHENTICATED });
  await assert.rejects(client.fetchCertificate(SLEEP), (err: Error) => {
    assert.ok(err instanceof CertificateError);
    assert.match(err.message, /CreateCertificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep at 127\.0\.0\.1:\d+ failed: UNAUTHENTICATED token rejected; is the token valid/);
    return true;
  });

  // A root that did not sign the server's certificate: the TLS handshake fails.
  const other = await CertificateAuthority.create();
  writeFileSync(rootCaPath, other.rootCertPem);
  await assert.rejects(client.fetchCertificate(SLEEP), /failed: UNAVAILABLE .*does CA_ROOT_CA verify its certificate/);

  rmSync(tokenPath);
  const noToken = createGrpcCaClient({
    address: `https://127.0.0.1:${port}`, rootCaPath, authToken: { file: tokenPath }, clusterId: 'Kubernetes', ttlSeconds: 3600, logger: pino({ level: 'silent' }),
  });
  t.after(() => noToken.close());
  await assert.rejects(noToken.fetchCertificate(SLEEP), new RegExp(`cannot read the service-account token ${tokenPath}`));
});
