// The control plane's PKI and kubeconfigs without any Kubernetes binary: identities as the apiserver will read
// them (CN user, O groups), serving names, file modes, and kubeconfigs in kubectl's format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APISERVER_DNS_NAMES, buildKubeconfig, createControlPlanePki, firstServiceIp, writeControlPlanePki } from './certs.js';

test('first service IP is the range network address plus one', () => {
  assert.equal(firstServiceIp('10.96.0.0/16'), '10.96.0.1');
  assert.equal(firstServiceIp('10.0.0.0/24'), '10.0.0.1');
  assert.equal(firstServiceIp('172.16.255.0/24'), '172.16.255.1');
  assert.throws(() => firstServiceIp('10.96.0.1/16'), /host bits set; did you mean 10\.96\.0\.0\/16/);
  assert.throws(() => firstServiceIp('fd00::/108'), /not an IPv4 CIDR/);
  assert.throws(() => firstServiceIp('10.96.0.0/31'), /not an IPv4 CIDR/);
  assert.throws(() => firstServiceIp('300.1.0.0/16'), /not an IPv4 CIDR/);
});

test('control-plane PKI: identities, serving names and one CA for all', async () => {
  const pki = await createControlPlanePki({ serviceIp: '10.96.0.1' });
  const ca = new X509Certificate(pki.ca.certPem);
  assert.equal(ca.ca, true);
  const leaf = (p: { certPem: string }): X509Certificate => new X509Certificate(p.certPem);
  for (const [name, pair] of Object.entries({
    apiserver: pki.apiserver,
    apiserverKubeletClient: pki.apiserverKubeletClient,
    admin: pki.admin,
    controllerManager: pki.controllerManager,
    scheduler: pki.scheduler,
  })) {
    assert.ok(leaf(pair).checkIssued(ca), `${name} issued by the CA`);
    assert.ok(leaf(pair).verify(ca.publicKey), `${name} signature`);
    assert.ok(leaf(pair).checkPrivateKey(createPrivateKey(pair.keyPem)), `${name} key matches`);
  }
  assert.equal(leaf(pki.admin).subject, 'O=system:masters\nCN=admin');
  assert.equal(leaf(pki.controllerManager).subject, 'CN=system:kube-controller-manager');
  assert.equal(leaf(pki.scheduler).subject, 'CN=system:kube-scheduler');
  assert.deepEqual(leaf(pki.admin).keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.deepEqual(leaf(pki.apiserver).keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const apiserver = leaf(pki.apiserver);
  assert.equal(apiserver.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(apiserver.checkIP('10.96.0.1'), '10.96.0.1');
  for (const name of APISERVER_DNS_NAMES) assert.equal(apiserver.checkHost(name), name);
  // controller-manager and scheduler serve /healthz on loopback with the same certificate they log in with
  assert.equal(leaf(pki.scheduler).checkIP('127.0.0.1'), '127.0.0.1');
  assert.deepEqual(leaf(pki.scheduler).keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  const sa = createPublicKey(pki.serviceAccount.publicKeyPem);
  assert.equal(sa.asymmetricKeyType, 'rsa');
  assert.deepEqual(
    createPublicKey(createPrivateKey(pki.serviceAccount.privateKeyPem)).export({ type: 'spki', format: 'der' }),
    sa.export({ type: 'spki', format: 'der' }),
  );
});

test('PKI files: keys are 0600, certificates 0644, directory 0700', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-pki-test-'));
  try {
    const pki = await createControlPlanePki({ serviceIp: '10.96.0.1' });
    const files = writeControlPlanePki(join(dir, 'pki'), pki);
    assert.equal(statSync(join(dir, 'pki')).mode & 0o777, 0o700);
    for (const [name, path] of Object.entries(files)) {
      const mode = statSync(path).mode & 0o777;
      const secret = /Key$/.test(name) && name !== 'serviceAccountPublicKey';
      assert.equal(mode, secret ? 0o600 : 0o644, `${name} mode ${mode.toString(8)}`);
    }
    assert.equal(readFileSync(files.caCert, 'utf8'), pki.ca.certPem);
    assert.equal(readFileSync(files.serviceAccountPrivateKey, 'utf8'), pki.serviceAccount.privateKeyPem);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Kubeconfig {
  'current-context': string;
  clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string; token?: string } }[];
  contexts: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
}

test('kubeconfig carries everything inline, certificate or token', async () => {
  const pki = await createControlPlanePki({ serviceIp: '10.96.0.1' });
  const text = buildKubeconfig({ server: 'https://127.0.0.1:6443', caPem: pki.ca.certPem, client: pki.admin, name: 'ambit-e2e-admin', namespace: 'istio-system' });
  const kc = parse(text) as Kubeconfig;
  const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();
  assert.equal(kc['current-context'], 'ambit-e2e-admin');
  assert.deepEqual(kc.contexts, [{ name: 'ambit-e2e-admin', context: { cluster: 'ambit-e2e-admin', user: 'ambit-e2e-admin', namespace: 'istio-system' } }]);
  assert.equal(kc.clusters[0]!.cluster.server, 'https://127.0.0.1:6443');
  assert.equal(unb64(kc.clusters[0]!.cluster['certificate-authority-data']), pki.ca.certPem);
  assert.equal(unb64(kc.users[0]!.user['client-certificate-data']), pki.admin.certPem);
  assert.equal(unb64(kc.users[0]!.user['client-key-data']), pki.admin.keyPem);
  assert.doesNotMatch(text, /BEGIN/, 'PEM only as base64 data fields, no file paths');

  const withToken = parse(buildKubeconfig({ server: 'https://127.0.0.1:6443', caPem: pki.ca.certPem, token: 'abc' })) as Kubeconfig;
  assert.deepEqual(withToken.users, [{ name: 'ambit-e2e', user: { token: 'abc' } }]);
  assert.throws(() => buildKubeconfig({ server: 'https://x', caPem: pki.ca.certPem }), /either a client certificate or a token/);
});
