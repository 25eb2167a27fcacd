import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSettings } from '../src/index.js';

test('defaults in a pod: in-cluster connection through the announced mounts, istiod ports and names', () => {
  const s = loadSettings({
    KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', POD_NAME: 'ambit-controller-abc',
    AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets/kubernetes.io/serviceaccount': '/tmp/pod-x/sa' }),
  });
  assert.deepEqual(s.kubernetes, {
    kind: 'in-cluster',
    connection: { server: 'https://10.96.0.1:443', caFile: '/tmp/pod-x/sa/ca.crt', tokenFile: '/tmp/pod-x/sa/token', namespaceFile: '/tmp/pod-x/sa/namespace' },
  });
  assert.equal(s.podNamespace, 'istio-system');
  assert.equal(s.clusterId, 'Kubernetes');
  assert.equal(s.trustDomain, 'cluster.local');
  assert.deepEqual(s.xds, { host: '0.0.0.0', port: 15012, debounceMs: 100 });
  assert.equal(s.monitoring.port, 15014);
  assert.equal(s.leaderElection.enabled, true);
  assert.equal(s.leaderElection.leaseName, 'ambit-controller-leader');
  assert.equal(s.leaderElection.leaseNamespace, 'istio-system');
  assert.equal(s.waypointImage, 'ambit/waypoint');
  assert.deepEqual(s.trustedNodeAccounts, ['istio-system/ztunnel']);
  assert.equal(s.embedded, undefined);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.xds), 'settings are frozen');
});

test('KUBECONFIG wins over in-cluster; overrides are parsed', () => {
  const s = loadSettings({
    KUBECONFIG: '/etc/kube/config:/other', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443',
    POD_NAMESPACE: 'ambit', CLUSTER_ID: 'east', AMBIT_XDS_PORT: '0', PILOT_DEBOUNCE_AFTER: '1.5s',
    AMBIT_LEADER_ELECTION: 'false', LOG_LEVEL: 'DEBUG', AMBIT_WAYPOINT_IMAGE: 'registry/wp:1',
  });
  assert.deepEqual(s.kubernetes, { kind: 'kubeconfig', path: '/etc/kube/config' });
  assert.equal(s.clusterId, 'east');
  assert.equal(s.xds.port, 0);
  assert.equal(s.xds.debounceMs, 1500);
  assert.equal(s.leaderElection.enabled, false);
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.waypointImage, 'registry/wp:1');
  assert.deepEqual(s.trustedNodeAccounts, ['ambit/ztunnel']);
});

test('embedded mode: no Kubernetes, no leader election, loopback listeners, state dir under the config dir', () => {
  const s = loadSettings({ AMBIT_CONFIG_DIR: '/srv/mesh', KUBECONFIG: '/ignored' });
  assert.equal(s.kubernetes, undefined);
  assert.deepEqual(s.embedded, { configDir: '/srv/mesh', stateDir: '/srv/mesh/.ambit' });
  assert.equal(s.leaderElection.enabled, false);
  assert.equal(s.xds.host, '127.0.0.1');
  assert.equal(s.monitoring.host, '127.0.0.1');
});

test('bad values are refused with the variable named', () => {
  const base = { KUBECONFIG: '/k' };
  assert.throws(() => loadSettings({}), /set KUBECONFIG, run in a pod .* or set AMBIT_CONFIG_DIR/);
  assert.throws(() => loadSettings({ ...base, AMBIT_XDS_PORT: '70000' }), /AMBIT_XDS_PORT="70000" is not a port number/);
  assert.throws(() => loadSettings({ ...base, AMBIT_MONITORING_PORT: 'http' }), /AMBIT_MONITORING_PORT="http"/);
  assert.throws(() => loadSettings({ ...base, AMBIT_LEADER_ELECTION: 'maybe' }), /AMBIT_LEADER_ELECTION="maybe" is not a boolean/);
  assert.throws(() => loadSettings({ ...base, LOG_LEVEL: 'loud' }), /LOG_LEVEL="loud" is not one of trace, debug/);
  assert.throws(() => loadSettings({ ...base, PILOT_DEBOUNCE_AFTER: 'soon' }), /PILOT_DEBOUNCE_AFTER="soon" is not a duration/);
  assert.throws(() => loadSettings({ ...base, CA_TRUSTED_NODE_ACCOUNTS: 'ztunnel' }), /CA_TRUSTED_NODE_ACCOUNTS: "ztunnel" is not <namespace>\/<service account>/);
  assert.throws(() => loadSettings({ AMBIT_CONFIG_DIR: '/d', AMBIT_CA_CERT: '/c.pem' }), /AMBIT_CA_KEY must be set together with AMBIT_CA_CERT/);
  assert.throws(() => loadSettings({ AMBIT_CONFIG_DIR: '/d', AMBIT_XDS_HOST: '0.0.0.0' }), /AMBIT_XDS_HOST="0.0.0.0": in embedded mode .* loopback only/);
  assert.throws(() => loadSettings({ AMBIT_CONFIG_DIR: '/d', AMBIT_LEADER_ELECTION: 'true' }), /AMBIT_LEADER_ELECTION=true needs Kubernetes/);
});
