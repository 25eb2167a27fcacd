import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.js';

const MIN = { LOCAL_XDS_PATH: '/etc/ambit/config.yaml', AMBIT_LOCAL_CA_CERT: '/ca.pem', AMBIT_LOCAL_CA_KEY: '/ca-key.pem' };

test('defaults follow Istio: cluster.local, Kubernetes, 15000/15020/15021, 24 h certificates, no drain bound', () => {
  const c = loadConfig(MIN);
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.clusterId, 'Kubernetes');
  assert.deepEqual(c.adminAddress, { host: '127.0.0.1', port: 15000 });
  assert.deepEqual(c.metricsAddress, { host: '0.0.0.0', port: 15020 });
  assert.deepEqual(c.readinessAddress, { host: '0.0.0.0', port: 15021 });
  assert.equal(c.secretTtlSeconds, 86400);
  assert.equal(c.drainTimeoutMs, undefined);
  assert.equal(c.pool.maxStreamsPerConnection, 100);
  assert.equal(c.pool.unusedReleaseTimeoutMs, 300_000);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.pool));
});

test('every bad variable is reported at once, by name', () => {
  assert.throws(() => loadConfig({ ...MIN, POOL_MAX_STREAMS_PER_CONNECTION: 'many', AMBIT_ADMIN_ADDRESS: 'nowhere', SECRET_TTL: 'soon', LOG_LEVEL: 'loud' }), (err: Error) => {
    assert.match(err.message, /POOL_MAX_STREAMS_PER_CONNECTION="many" is not an integer/);
    assert.match(err.message, /AMBIT_ADMIN_ADDRESS="nowhere" is not host:port/);
    assert.match(err.message, /SECRET_TTL="soon" is not a duration/);
    assert.match(err.message, /LOG_LEVEL="loud" is not a pino level/);
    return true;
  });
});

test('a config source and a CA are required', () => {
  assert.throws(() => loadConfig({}), /one of LOCAL_XDS_PATH or XDS_ADDRESS must be set[\s\S]*one of CA_ADDRESS or AMBIT_LOCAL_CA_CERT/);
  assert.throws(() => loadConfig({ LOCAL_XDS_PATH: '/x', AMBIT_LOCAL_CA_CERT: '/c' }), /must be set together/);
});

test('durations and drain bound parse', () => {
  const c = loadConfig({ ...MIN, SECRET_TTL: '12h', POOL_UNUSED_RELEASE_TIMEOUT: '30s', AMBIT_DRAIN_TIMEOUT_SECONDS: '45' });
  assert.equal(c.secretTtlSeconds, 43200);
  assert.equal(c.pool.unusedReleaseTimeoutMs, 30_000);
  assert.equal(c.drainTimeoutMs, 45_000);
});

const XDS = { XDS_ADDRESS: 'https://istiod.istio-system.svc:15012', CA_ADDRESS: 'istiod.istio-system.svc:15012', INSTANCE_IP: '10.0.0.2', POD_NAME: 'ztunnel-abcde', POD_NAMESPACE: 'istio-system' };

test('xDS and CA mode: Istio defaults for the root and token, headers and node metadata from their prefixes', () => {
  const c = loadConfig({
    ...XDS, XDS_HEADER_X_Tenant: 'a', CA_HEADER_X_CA: 'b', ISTIO_META_DNS_CAPTURE: 'true', ISTIO_METAJSON_LABELS: '{"app":"ztunnel"}',
  });
  assert.equal(c.xdsAddress, 'https://istiod.istio-system.svc:15012');
  assert.equal(c.xdsRootCaPath, './var/run/secrets/istio/root-cert.pem');
  assert.equal(c.caRootCaPath, './var/run/secrets/istio/root-cert.pem');
  assert.deepEqual(c.authToken, { file: './var/run/secrets/tokens/istio-token' });
  assert.deepEqual(c.xdsHeaders, { 'x-tenant': 'a' });
  assert.deepEqual(c.caHeaders, { 'x-ca': 'b' });
  assert.deepEqual(c.proxyMetadata, { DNS_CAPTURE: 'true', LABELS: { app: 'ztunnel' } });
  assert.equal(c.instanceIp, '10.0.0.2');
  // A token without a slash is the token itself.
  assert.deepEqual(loadConfig({ ...XDS, AUTH_TOKEN: 'eyJhbGciOi.x.y' }).authToken, { token: 'eyJhbGciOi.x.y' });
  // ISTIO_META_CLUSTER_ID wins over CLUSTER_ID, as in Istio.
  assert.equal(loadConfig({ ...XDS, CLUSTER_ID: 'a', ISTIO_META_CLUSTER_ID: 'b' }).clusterId, 'b');
  // In the cluster-in-a-box the root and the token are where AMBIT_MOUNTS says their volumes are.
  const mounted = loadConfig({
    ...XDS, XDS_ROOT_CA: '/var/run/secrets/istio/root-cert.pem', CA_ROOT_CA: '/var/run/secrets/istio/root-cert.pem', AUTH_TOKEN: '/var/run/secrets/tokens/istio-token',
    AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets/istio': '/pods/a/istiod-ca-cert', '/var/run/secrets/tokens': '/pods/a/istio-token' }),
  });
  assert.equal(mounted.xdsRootCaPath, '/pods/a/istiod-ca-cert/root-cert.pem');
  assert.equal(mounted.caRootCaPath, '/pods/a/istiod-ca-cert/root-cert.pem');
  assert.deepEqual(mounted.authToken, { file: '/pods/a/istio-token/istio-token' });
});

test('xDS mode needs the pod facts of the node id; bad addresses, both sources at once and on-demand are refused', () => {
  assert.throws(() => loadConfig({ XDS_ADDRESS: 'istiod:15012', CA_ADDRESS: 'istiod:15012' }), (err: Error) => {
    assert.match(err.message, /INSTANCE_IP="" is not an IP address \(required with XDS_ADDRESS\)/);
    assert.match(err.message, /POD_NAME must be set with XDS_ADDRESS/);
    assert.match(err.message, /POD_NAMESPACE must be set with XDS_ADDRESS/);
    return true;
  });
  assert.throws(() => loadConfig({ ...XDS, XDS_ADDRESS: 'grpc://istiod', CA_ADDRESS: 'istiod' }), /XDS_ADDRESS="grpc:\/\/istiod" is not \[https:\/\/\]host:port[\s\S]*CA_ADDRESS="istiod" is not/);
  assert.throws(() => loadConfig({ ...MIN, ...XDS }), /LOCAL_XDS_PATH and XDS_ADDRESS are both set[\s\S]*CA_ADDRESS and AMBIT_LOCAL_CA_CERT\+AMBIT_LOCAL_CA_KEY are both set/);
  assert.throws(() => loadConfig({ ...XDS, XDS_ON_DEMAND: 'true' }), /XDS_ON_DEMAND=true is not supported yet/);
  assert.throws(() => loadConfig({ ...XDS, ISTIO_METAJSON_X: '{nope' }), /ISTIO_METAJSON_X is not valid JSON/);
});

test('gRPC targets: scheme decides TLS, IPv6 in brackets', async () => {
  const { parseGrpcTarget } = await import('./load.js');
  assert.deepEqual(parseGrpcTarget('https://istiod.istio-system.svc:15012'), { tls: true, host: 'istiod.istio-system.svc', port: 15012, target: 'istiod.istio-system.svc:15012' });
  assert.deepEqual(parseGrpcTarget('istiod:15012'), { tls: true, host: 'istiod', port: 15012, target: 'istiod:15012' });
  assert.deepEqual(parseGrpcTarget('http://127.0.0.1:15010'), { tls: false, host: '127.0.0.1', port: 15010, target: '127.0.0.1:15010' });
  assert.deepEqual(parseGrpcTarget('https://[fd00::1]:15012'), { tls: true, host: 'fd00::1', port: 15012, target: '[fd00::1]:15012' });
  assert.equal(parseGrpcTarget('istiod'), undefined);
  assert.equal(parseGrpcTarget('https://istiod:99999'), undefined);
});

test('Kubernetes mode is off without a kubeconfig or in-cluster env', () => {
  assert.equal(loadConfig(MIN).kubernetes, undefined);
  assert.throws(() => loadConfig({ ...MIN, AMBIT_KUBERNETES_WATCH: 'true', NODE_NAME: 'node-1' }), /AMBIT_KUBERNETES_WATCH=true but there is no API server to watch: set KUBECONFIG or run in a pod/);
});

test('Kubernetes mode from KUBECONFIG needs NODE_NAME; AMBIT_KUBERNETES_WATCH=false turns it off', () => {
  const c = loadConfig({ ...MIN, KUBECONFIG: '/etc/kube/agent.conf:/other', NODE_NAME: 'node-1' });
  assert.deepEqual(c.kubernetes, { connection: { kind: 'kubeconfig', path: '/etc/kube/agent.conf' }, procDir: '/proc', netnsDir: '/var/run/netns' });
  assert.throws(() => loadConfig({ ...MIN, KUBECONFIG: '/k' }), /NODE_NAME must be set in Kubernetes mode/);
  assert.equal(loadConfig({ ...MIN, KUBECONFIG: '/k', AMBIT_KUBERNETES_WATCH: 'false' }).kubernetes, undefined);
});

test('in a pod: the service account and host dirs are found through AMBIT_MOUNTS', () => {
  const c = loadConfig({
    ...MIN, NODE_NAME: 'node-1', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443',
    AMBIT_HOST_PROC: '/host/proc', AMBIT_HOST_NETNS_DIR: '/host/var/run/netns',
    AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets/kubernetes.io/serviceaccount': '/tmp/pod/sa', '/host/proc': '/proc', '/host/var/run/netns': '/var/run/netns' }),
  });
  assert.deepEqual(c.kubernetes, {
    connection: { kind: 'in-cluster', connection: { server: 'https://10.96.0.1:443', caFile: '/tmp/pod/sa/ca.crt', tokenFile: '/tmp/pod/sa/token', namespaceFile: '/tmp/pod/sa/namespace' } },
    procDir: '/proc',
    netnsDir: '/var/run/netns',
  });
  assert.ok(Object.isFrozen(c.kubernetes));
});

test('bad Kubernetes settings are reported by name', () => {
  assert.throws(() => loadConfig({ ...MIN, KUBECONFIG: '/k', NODE_NAME: 'n', AMBIT_HOST_PROC: 'proc', AMBIT_KUBERNETES_WATCH: 'maybe' }), (err: Error) => {
    assert.match(err.message, /AMBIT_KUBERNETES_WATCH="maybe" is not true or false/);
    assert.match(err.message, /AMBIT_HOST_PROC="proc" must be an absolute path/);
    return true;
  });
  assert.throws(() => loadConfig({ ...MIN, NODE_NAME: 'n', KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1', AMBIT_MOUNTS: '{' }), /AMBIT_MOUNTS is not JSON/);
});

test('CNI install is off by default; on, the node dirs default to istio-cni\'s /host mounts and are found through AMBIT_MOUNTS', () => {
  assert.equal(loadConfig(MIN).cniInstall, undefined);
  const plain = loadConfig({ ...MIN, AMBIT_CNI_INSTALL: 'true' });
  assert.deepEqual(plain.cniInstall, {
    confDir: '/host/etc/cni/net.d', binDir: '/host/opt/cni/bin', uninstallOnExit: 'auto', pluginLogLevel: 'info', excludeNamespaces: ['kube-system'],
  });
  assert.equal(plain.cniSocketPath, '/var/run/ambit/cni.sock');
  // In the cluster-in-a-box the node's directories are where the kubelet says the hostPath volumes are.
  const boxed = loadConfig({
    ...MIN, AMBIT_CNI_INSTALL: 'true', POD_NAMESPACE: 'istio-system', AMBIT_CNI_EXCLUDE_NAMESPACES: 'kube-system, ops',
    AMBIT_CNI_UNINSTALL_ON_EXIT: 'TRUE', AMBIT_CNI_PLUGIN_LOG_LEVEL: 'debug', AMBIT_CNI_PLUGIN_EXECUTABLE: '/app/ambit-cni',
    AMBIT_MOUNTS: JSON.stringify({ '/host/etc/cni/net.d': '/n1/etc/cni/net.d', '/host/opt/cni/bin': '/n1/opt/cni/bin', '/var/run/ambit': '/n1/var/run/ambit' }),
  });
  assert.deepEqual(boxed.cniInstall, {
    confDir: '/n1/etc/cni/net.d', binDir: '/n1/opt/cni/bin', uninstallOnExit: 'true', pluginLogLevel: 'debug',
    excludeNamespaces: ['kube-system', 'ops', 'istio-system'], pluginExecutable: '/app/ambit-cni',
  });
  assert.equal(boxed.cniSocketPath, '/n1/var/run/ambit/cni.sock', 'the socket path written into the plugin\'s netconf is the node\'s');
  assert.equal(boxed.podSnapshotPath, '/n1/var/run/ambit/pods.json');
  assert.ok(Object.isFrozen(boxed.cniInstall));
});

test('bad CNI install settings are reported by name', () => {
  assert.throws(() => loadConfig({
    ...MIN, AMBIT_CNI_INSTALL: 'true', AMBIT_CNI_CONF_DIR: 'etc/cni', AMBIT_CNI_UNINSTALL_ON_EXIT: 'sometimes',
    AMBIT_CNI_PLUGIN_LOG_LEVEL: 'loud', AMBIT_CNI_EXCLUDE_NAMESPACES: 'kube-system,Bad_NS', AMBIT_CNI_SOCKET: 'cni.sock',
    AMBIT_CNI_PLUGIN_EXECUTABLE: 'ambit-cni',
  }), (err: Error) => {
    assert.match(err.message, /AMBIT_CNI_PLUGIN_EXECUTABLE="ambit-cni" must be an absolute path/);
    assert.match(err.message, /AMBIT_CNI_CONF_DIR="etc\/cni" must be an absolute path/);
    assert.match(err.message, /AMBIT_CNI_UNINSTALL_ON_EXIT="sometimes" is not auto, true or false/);
    assert.match(err.message, /AMBIT_CNI_PLUGIN_LOG_LEVEL="loud" is not one of debug, info, warn, error, silent/);
    assert.match(err.message, /AMBIT_CNI_EXCLUDE_NAMESPACES: "Bad_NS" is not a namespace name/);
    assert.match(err.message, /AMBIT_CNI_SOCKET="cni.sock" must be an absolute path/);
    return true;
  });
  assert.throws(() => loadConfig({ ...MIN, AMBIT_CNI_INSTALL: 'yes', KUBECONFIG: '/k', NODE_NAME: 'n' }),
    /AMBIT_CNI_UNINSTALL_ON_EXIT=auto in Kubernetes mode needs POD_NAME and POD_NAMESPACE/);
  assert.equal(loadConfig({ ...MIN, AMBIT_CNI_INSTALL: 'yes', KUBECONFIG: '/k', NODE_NAME: 'n', AMBIT_CNI_UNINSTALL_ON_EXIT: 'false' }).cniInstall?.uninstallOnExit, 'false');
  // A malformed AMBIT_MOUNTS is reported once, not once per path.
  assert.throws(() => loadConfig({ ...MIN, AMBIT_CNI_INSTALL: 'true', AMBIT_MOUNTS: '[' }), (err: Error) => (err.message.match(/AMBIT_MOUNTS is not JSON/g) ?? []).length === 1);
});
