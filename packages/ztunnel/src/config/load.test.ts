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
