import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { CertificateAuthority } from '@ambit/pki';
import { createStateUpdater } from '../state/updater.js';
import { createConnectionMetrics } from '../telemetry/metrics.js';
import { createConnectionTelemetry } from '../telemetry/connection-result.js';
import { createLogLevels } from '../telemetry/log-levels.js';
import { captureLogger, createMesh } from '../telemetry/test-helpers.js';
import { describeCertifiedKey, type CertificateInfo } from './config-dump.js';
import { createReadiness } from './readiness.js';
import { createAdminHandler, createAdminServers, type AdminServersOptions } from './servers.js';

const LOOPBACK = { admin: '127.0.0.1:0', metrics: '127.0.0.1:0', readiness: '127.0.0.1:0' };

async function start(t: TestContext, extra: Partial<AdminServersOptions> = {}) {
  const mesh = createMesh();
  const registry = new Registry();
  const { logger } = captureLogger('info');
  const readiness = createReadiness();
  const quits: number[] = [];
  let onQuitCalled!: () => void;
  const quitCalled = new Promise<void>((resolve) => (onQuitCalled = resolve));
  const servers = createAdminServers({
    config: { clusterId: 'Kubernetes', xdsAddress: 'https://istiod.istio-system.svc:15012', caHeaders: { authorization: 'Bearer abc' } },
    state: mesh.store,
    certificates: () => [],
    registry,
    logger,
    readiness,
    onQuit: () => {
      quits.push(Date.now());
      onQuitCalled();
    },
    addresses: LOOPBACK,
    ...extra,
  });
  const bound = await servers.listen();
  t.after(() => servers.close());
  const url = (name: keyof typeof bound, path: string) => `http://127.0.0.1:${bound[name].port}${path}`;
  return { mesh, registry, logger, readiness, quits, quitCalled, url, servers };
}

test('config_dump has ztunnel\'s camelCase shape with workloads, services, policies and certificates', async (t) => {
  const ca = await CertificateAuthority.create();
  const key = await ca.issueWorkloadCertificate('spiffe://cluster.local/ns/echo/sa/echo');
  const certs: CertificateInfo[] = [
    describeCertifiedKey(key),
    { identity: 'spiffe://cluster.local/ns/default/sa/sleep', state: 'Initializing', certChain: [], rootCerts: [] },
  ];
  const { mesh, url } = await start(t, { certificates: () => certs });
  createStateUpdater({ store: mesh.store }).applyDelta({
    policies: [{
      name: 'allow-sleep', namespace: 'echo', scope: 'Namespace', action: 'Allow',
      rules: [[[{ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }], namespaces: [{ prefix: 'def' }] }]]],
    }],
  });

  const res = await fetch(url('admin', '/config_dump'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const dump = (await res.json()) as Record<string, any>;
  assert.deepEqual(Object.keys(dump), [
    'workloads', 'services', 'policies', 'stagedServices', 'staticConfig', 'version', 'config', 'certificates', 'workloadState',
  ]);

  assert.deepEqual(dump.workloads.map((w: any) => w.uid), [
    'Kubernetes//Pod/default/sleep-7d9c4b5f6-abcde', 'Kubernetes//Pod/echo/echo-5b4f8d7c9-xyz12',
  ]);
  const echo = dump.workloads[1];
  assert.deepEqual(
    [echo.name, echo.namespace, echo.workloadIps, echo.protocol, echo.serviceAccount, echo.workloadName, echo.canonicalName,
      echo.canonicalRevision, echo.clusterId, echo.trustDomain, echo.node, echo.status],
    ['echo-5b4f8d7c9-xyz12', 'echo', ['10.0.2.7'], 'HBONE', 'echo', 'echo', 'echo', 'v2', 'Kubernetes', 'cluster.local', 'node-2', 'Healthy'],
  );

  assert.deepEqual(dump.services, [{
    name: 'echo', namespace: 'echo', hostname: 'echo.echo.svc.cluster.local',
    ports: { 80: 8080 }, subjectAltNames: [], ipFamilies: dump.services[0].ipFamilies, canonical: dump.services[0].canonical,
    vips: ['/10.96.0.20'],
    endpoints: {
      'Kubernetes//Pod/echo/echo-5b4f8d7c9-xyz12': {
        workloadUid: 'Kubernetes//Pod/echo/echo-5b4f8d7c9-xyz12', service: 'echo/echo.echo.svc.cluster.local', status: 'Healthy',
        port: { 80: 8080 },
      },
    },
  }]);

  assert.deepEqual(dump.policies, [{
    name: 'allow-sleep', namespace: 'echo', scope: 'Namespace', action: 'Allow', dryRun: false,
    rules: [[[{ principals: [{ Exact: 'cluster.local/ns/default/sa/sleep' }], namespaces: [{ Prefix: 'def' }] }]]],
  }]);

  // Sorted by identity; serials decimal; times RFC 3339 to the second; pem as ztunnel writes it (base64 of the PEM).
  assert.deepEqual(dump.certificates.map((c: any) => [c.identity, c.state]), [
    ['spiffe://cluster.local/ns/default/sa/sleep', 'Initializing'],
    ['spiffe://cluster.local/ns/echo/sa/echo', 'Available'],
  ]);
  const leaf = dump.certificates[1].certChain[0];
  assert.deepEqual(Object.keys(leaf), ['pem', 'serialNumber', 'validFrom', 'expirationTime']);
  assert.match(leaf.serialNumber, /^\d+$/);
  assert.match(leaf.validFrom, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(Buffer.from(leaf.pem, 'base64').toString(), key.certChainPem[0]);
  assert.equal(new Date(leaf.expirationTime).getTime(), Math.floor(key.notAfter.getTime() / 1000) * 1000);
  assert.equal(dump.certificates[1].rootCerts.length, 1);

  assert.deepEqual(dump.config, {
    clusterId: 'Kubernetes', xdsAddress: 'https://istiod.istio-system.svc:15012', caHeaders: { authorization: '<redacted>' },
  });
});

test('POST /logging?level=... changes the levels seen by the loggers; reset restores them', async (t) => {
  const { logger } = captureLogger('info');
  const logLevels = createLogLevels({ root: logger });
  const access = logLevels.logger('access');
  const { url } = await start(t, { logger, logLevels });

  let res = await fetch(url('admin', '/logging'));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'current log level is info\n');

  res = await fetch(url('admin', '/logging?level=access=debug'), { method: 'POST' });
  assert.equal(await res.text(), 'current log level is info,access=debug\n');
  assert.equal(access.level, 'debug');
  assert.equal(logger.level, 'info');

  res = await fetch(url('admin', '/logging?level=warn'), { method: 'POST' });
  assert.equal(await res.text(), 'current log level is warn,access=debug\n');
  assert.equal(logger.level, 'warn');

  res = await fetch(url('admin', '/logging?level=loud'), { method: 'POST' });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /invalid log level "loud"/);
  assert.equal(logger.level, 'warn', 'a refused change leaves the levels alone');

  res = await fetch(url('admin', '/logging?reset=true'), { method: 'POST' });
  assert.equal(await res.text(), 'current log level is info\n');
  assert.equal(access.level, 'info');

  res = await fetch(url('admin', '/logging?level=debug'));
  assert.equal(res.status, 405, 'GET never changes state');
  assert.equal(logger.level, 'info');
});

test('without a LogLevels, /logging drives the root logger it was given', async (t) => {
  const { logger, url } = await start(t);
  const res = await fetch(url('admin', '/logging?level=debug'), { method: 'POST' });
  assert.equal(res.status, 200);
  assert.equal(logger.level, 'debug');
});

test('POST /quitquitquit answers 200 then calls onQuit once; GET is refused', async (t) => {
  const { url, quits, quitCalled } = await start(t);
  let res = await fetch(url('admin', '/quitquitquit'));
  assert.equal(res.status, 405);
  assert.equal(quits.length, 0);
  res = await fetch(url('admin', '/quitquitquit'), { method: 'POST' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'shutdown now\n');
  await withDeadline(quitCalled, 2000, 'onQuit was not called');
  res = await fetch(url('admin', '/quitquitquit'), { method: 'POST' });
  assert.equal(res.status, 200);
  await new Promise((r) => setImmediate(r));
  assert.equal(quits.length, 1);
});

test('GET / lists the admin endpoints; unknown paths are 404', async (t) => {
  const { url } = await start(t);
  const res = await fetch(url('admin', '/'));
  const text = await res.text();
  for (const p of ['/config_dump', '/logging', '/quitquitquit']) assert.ok(text.includes(p), `${p} listed`);
  assert.equal((await fetch(url('admin', '/nope'))).status, 404);
});

test('admin refuses a peer that is not on loopback with 403', async (t) => {
  const handler = createAdminHandler({
    config: {}, state: createMesh().store, certificates: () => [], logger: captureLogger().logger, onQuit: () => assert.fail('must not quit'),
  });
  // A real HTTP exchange, with the peer address the handler sees replaced by a pod IP.
  const server = createServer((req, res) => {
    const fromPod = Object.create(req, { socket: { value: { remoteAddress: '10.0.1.5' } } }) as IncomingMessage;
    handler(fromPod, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  const port = (server.address() as AddressInfo).port;
  for (const [path, method] of [['/config_dump', 'GET'], ['/quitquitquit', 'POST']] as const) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
    assert.equal(res.status, 403);
  }
});

test('metrics endpoint serves the registry exposition on /metrics and /stats/prometheus', async (t) => {
  const { registry, mesh, url } = await start(t);
  const telemetry = createConnectionTelemetry({ metrics: createConnectionMetrics(registry, { tag: '0.1.0' }), logger: captureLogger().logger });
  telemetry
    .open({
      reporter: 'destination', source: { addr: '10.0.1.5:1' }, destination: { addr: '10.0.2.7:8080', workload: mesh.echo },
      securityPolicy: 'unknown',
    })
    .finish({ bytesSent: 5, bytesRecv: 6 });

  for (const path of ['/metrics', '/stats/prometheus']) {
    const res = await fetch(url('metrics', path));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), registry.contentType);
    const lines = (await res.text()).split('\n');
    assert.ok(lines.includes('istio_build{component="ztunnel",tag="0.1.0"} 1'));
    assert.ok(lines.some((l) => l.startsWith('istio_tcp_sent_bytes_total{reporter="destination",') && l.endsWith('} 5')));
  }
  assert.equal((await fetch(url('metrics', '/config_dump'))).status, 404, 'the metrics port serves no admin endpoint');
});

test('readiness is 503 naming the pending tasks, then 200 when all are done', async (t) => {
  const { readiness, url } = await start(t);
  const xdsDone = readiness.register('xds');
  const zdsDone = readiness.register('zds');

  let res = await fetch(url('readiness', '/healthz/ready'));
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'not ready, pending: xds, zds\n');

  xdsDone();
  res = await fetch(url('readiness', '/healthz/ready'));
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'not ready, pending: zds\n');

  zdsDone();
  res = await fetch(url('readiness', '/healthz/ready'));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ready\n');
});

test('listen fails with a clear error on a bad address and leaves nothing listening', async () => {
  const servers = createAdminServers({
    config: {}, state: createMesh().store, certificates: () => [], registry: new Registry(), logger: captureLogger().logger,
    readiness: createReadiness(), onQuit: () => {}, addresses: { ...LOOPBACK, metrics: 'localhost' },
  });
  await assert.rejects(servers.listen(), /invalid listen address "localhost"/);
  await servers.close();
});

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test('a port already in use fails listen with the address and a hint, and the other servers are closed', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const taken = (blocker.address() as AddressInfo).port;
  const servers = createAdminServers({
    config: {}, state: createMesh().store, certificates: () => [], registry: new Registry(), logger: captureLogger().logger,
    readiness: createReadiness(), onQuit: () => {}, addresses: { ...LOOPBACK, readiness: `127.0.0.1:${taken}` },
  });
  await assert.rejects(servers.listen(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'AMB_ERR_ADMIN_LISTEN');
    assert.match(err.message, new RegExp(`readiness server cannot listen on 127.0.0.1:${taken}: .*EADDRINUSE.*another agent`));
    return true;
  });
  // Nothing else is left listening: node:test would otherwise never see this file's process end.
});
