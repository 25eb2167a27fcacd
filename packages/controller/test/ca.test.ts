import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { toStruct } from '@ambit/api';
import { createCsr, uriSans, verifyChain } from '@ambit/pki';
import { createCertificate, startHarness, type Harness } from './harness.js';

async function withHarness(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness();
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

async function rejection(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  assert.fail('the request was expected to be refused');
}

test('a CSR is signed for the caller\'s own identity, whatever SAN the CSR carries', () => withHarness(async (h) => {
  // The SAN in the CSR is not trusted: the identity comes from the token.
  const { csrPem } = await createCsr('spiffe://cluster.local/ns/kube-system/sa/admin');
  const res = await createCertificate(h, 'token-app', { csr: csrPem, validity_duration: 3600 });
  assert.equal(res.cert_chain!.length, 2);
  const [leaf, root] = res.cert_chain!;
  assert.equal(root, h.rootPem);
  assert.deepEqual(uriSans(leaf!), ['spiffe://cluster.local/ns/default/sa/app']);
  verifyChain([leaf!], [h.rootPem], { expectedIdentity: 'spiffe://cluster.local/ns/default/sa/app' });
  const lifetime = new Date(new (await import('node:crypto')).X509Certificate(leaf!).validTo).getTime() - Date.now();
  assert.ok(lifetime <= 3600_000 + 5_000 && lifetime > 3500_000, `lifetime ${lifetime} ms is the requested hour`);
}));

test('validity_duration beyond the maximum is capped, not refused', () => withHarness(async (h) => {
  const { csrPem } = await createCsr('spiffe://cluster.local/ns/default/sa/app');
  const res = await createCertificate(h, 'token-app', { csr: csrPem, validity_duration: 10 * 365 * 24 * 3600 });
  const notAfter = new Date(new (await import('node:crypto')).X509Certificate(res.cert_chain![0]!).validTo).getTime();
  assert.ok(notAfter - Date.now() <= 90 * 24 * 3600_000 + 5_000, 'capped at 90 days');
}));

test('the node agent may impersonate a pod on its own node', () => withHarness(async (h) => {
  const identity = 'spiffe://cluster.local/ns/default/sa/app';
  const { csrPem } = await createCsr(identity);
  const res = await createCertificate(h, 'token-ztunnel-node1', {
    csr: csrPem, validity_duration: 86400, metadata: toStruct({ ImpersonatedIdentity: identity }),
  });
  assert.deepEqual(uriSans(res.cert_chain![0]!), [identity]);
  const line = h.logs.lines.find((l) => l.msg === 'issued workload certificate');
  assert.equal(line?.identity, identity);
  assert.equal(line?.caller, 'istio-system/ztunnel (pod ztunnel-aaaaa)');
}));

test('the node agent may not impersonate a pod that runs on another node', () => withHarness(async (h) => {
  const identity = 'spiffe://cluster.local/ns/payments/sa/billing'; // runs on node2 only
  const { csrPem } = await createCsr(identity);
  const err = await rejection(createCertificate(h, 'token-ztunnel-node1', {
    csr: csrPem, metadata: toStruct({ ImpersonatedIdentity: identity }),
  }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /caller istio-system\/ztunnel \(pod ztunnel-aaaaa\) may not obtain a certificate for spiffe:\/\/cluster.local\/ns\/payments\/sa\/billing/);
  assert.match(err.details, /no pod with service account payments\/billing runs on the caller's node node1/);
  // The agent on node2 gets it.
  const ok = await createCertificate(h, 'token-ztunnel-node2', { csr: csrPem, metadata: toStruct({ ImpersonatedIdentity: identity }) });
  assert.deepEqual(uriSans(ok.cert_chain![0]!), [identity]);
}));

test('a service account that is not a trusted node agent cannot impersonate', () => withHarness(async (h) => {
  const identity = 'spiffe://cluster.local/ns/payments/sa/billing';
  const { csrPem } = await createCsr(identity);
  const err = await rejection(createCertificate(h, 'token-app', { csr: csrPem, metadata: toStruct({ ImpersonatedIdentity: identity }) }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /only trusted node agents \(istio-system\/ztunnel\) may impersonate, and default\/app is not one/);
}));

test('impersonating a foreign trust domain is refused, and a bad token is UNAUTHENTICATED', () => withHarness(async (h) => {
  const identity = 'spiffe://other.domain/ns/default/sa/app';
  const { csrPem } = await createCsr(identity);
  const err = await rejection(createCertificate(h, 'token-ztunnel-node1', { csr: csrPem, metadata: toStruct({ ImpersonatedIdentity: identity }) }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /trust domain "other.domain" is not this mesh's "cluster.local"/);
  const bad = await rejection(createCertificate(h, 'stolen', { csr: csrPem }));
  assert.equal(bad.code, grpc.status.UNAUTHENTICATED);
  assert.match(bad.details, /token rejected/);
}));
