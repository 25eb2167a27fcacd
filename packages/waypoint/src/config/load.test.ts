import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.js';

test('defaults and identity from the agent-style variables; paths through AMBIT_MOUNTS', () => {
  const c = loadConfig({
    XDS_ADDRESS: 'https://ambit-controller.istio-system.svc:15012', CA_ADDRESS: 'ambit-controller.istio-system.svc:15012',
    INSTANCE_IP: '10.0.1.7', POD_NAME: 'waypoint-7d9f', POD_NAMESPACE: 'shop', GATEWAY_NAME: 'waypoint',
    AMBIT_MOUNTS: JSON.stringify({ '/var/run/secrets/istio': '/tmp/pod-1/istio', '/var/run/secrets/tokens': '/tmp/pod-1/tokens' }),
  });
  assert.equal(c.identity, 'spiffe://cluster.local/ns/shop/sa/waypoint');
  assert.equal(c.xdsRootCaPath, '/tmp/pod-1/istio/root-cert.pem');
  assert.deepEqual(c.authToken, { file: '/tmp/pod-1/tokens/istio-token' });
  assert.deepEqual(c.hboneAddress, { host: '0.0.0.0', port: 15008 });
  assert.equal(c.upstreamHbonePort, 15008);
  assert.equal(c.limits.maxRequestHeadersBytes, 60 * 1024);
  assert.ok(Object.isFrozen(c));
});

test('every problem is reported at once, naming the variable', () => {
  assert.throws(() => loadConfig({ XDS_ADDRESS: 'nope', AMBIT_LOCAL_CA_CERT: '/ca.pem', LOG_LEVEL: 'loud' }), (err: Error) => {
    assert.match(err.message, /XDS_ADDRESS="nope" is not \[https:\/\/\]host:port/);
    assert.match(err.message, /AMBIT_LOCAL_CA_CERT and AMBIT_LOCAL_CA_KEY must be set together/);
    assert.match(err.message, /INSTANCE_IP="" is not an IP address/);
    assert.match(err.message, /LOG_LEVEL="loud" is not a pino level/);
    return true;
  });
});

test('tracing settings: the Istio extensionProviders zipkin form, default providers and sampling; bad values named', () => {
  const base = { AMBIT_LOCAL_CONFIG_PATH: '/cfg', AMBIT_LOCAL_CA_CERT: '/ca.pem', AMBIT_LOCAL_CA_KEY: '/ca-key.pem' };
  const c = loadConfig({
    ...base,
    AMBIT_TRACING_PROVIDERS: JSON.stringify({ zipkin: { zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } }, short: { zipkin: { service: 'z', port: 80, path: '/spans', maxTagLength: 64 } } }),
    AMBIT_TRACING_DEFAULT_PROVIDERS: 'zipkin', AMBIT_TRACING_SAMPLING: '2.5',
  });
  assert.deepEqual(c.tracing, {
    providers: {
      zipkin: { kind: 'zipkin', url: 'http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans', maxTagLength: 256 },
      short: { kind: 'zipkin', url: 'http://z:80/spans', maxTagLength: 64 },
    },
    defaultProviders: ['zipkin'],
    defaultSamplingPercentage: 2.5,
  });
  assert.deepEqual(loadConfig(base).tracing, { providers: {}, defaultProviders: [], defaultSamplingPercentage: 1 });
  assert.throws(() => loadConfig({
    ...base, AMBIT_TRACING_PROVIDERS: JSON.stringify({ otel: { opentelemetry: { service: 'x', port: 4317 } }, z: { zipkin: { service: 'z', port: 99999 } } }),
    AMBIT_TRACING_DEFAULT_PROVIDERS: 'missing', AMBIT_TRACING_SAMPLING: '150',
  }), (err: Error) => {
    assert.match(err.message, /AMBIT_TRACING_PROVIDERS: otel: only zipkin providers are supported/);
    assert.match(err.message, /AMBIT_TRACING_PROVIDERS: z\.zipkin\.port must be a port number/);
    assert.match(err.message, /AMBIT_TRACING_DEFAULT_PROVIDERS: provider "missing" is not defined in AMBIT_TRACING_PROVIDERS/);
    assert.match(err.message, /AMBIT_TRACING_SAMPLING="150" is not a percentage 0\.\.100/);
    return true;
  });
  assert.throws(() => loadConfig({ ...base, AMBIT_TRACING_PROVIDERS: '{not json' }), /AMBIT_TRACING_PROVIDERS is not JSON/);
});
