import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inClusterConnection, mountedPath } from './mounts.js';

test('mountedPath maps a path under the longest announced mount and leaves others alone', () => {
  const env = { AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets': '/tmp/a', '/var/run/secrets/tokens': '/tmp/b' }) };
  assert.equal(mountedPath('/var/run/secrets/tokens/istio-token', env), '/tmp/b/istio-token');
  assert.equal(mountedPath('/var/run/secrets/x/y', env), '/tmp/a/x/y');
  assert.equal(mountedPath('/var/run/secretsX/y', env), '/var/run/secretsX/y');
  assert.equal(mountedPath('/etc/x', {}), '/etc/x');
  assert.throws(() => mountedPath('/x', { AMBIT_MOUNTS: '{' }), /AMBIT_MOUNTS is not JSON/);
});

test('inClusterConnection reads the service env and the service-account mount', () => {
  assert.equal(inClusterConnection({}), undefined);
  const c = inClusterConnection({
    KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443',
    AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets/kubernetes.io/serviceaccount': '/pods/x/sa' }),
  });
  assert.deepEqual(c, { server: 'https://10.96.0.1:443', caFile: '/pods/x/sa/ca.crt', tokenFile: '/pods/x/sa/token', namespaceFile: '/pods/x/sa/namespace' });
});
