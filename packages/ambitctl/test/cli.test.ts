import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { main, parseDurationMs, formatTable } from '../src/index.js';
import { captureIo } from './io-capture.js';


test('waypoint generate prints istioctl\'s Gateway, with --for and -r only when given', async () => {
  const io = captureIo();
  assert.equal(await main(['waypoint', 'generate', '-n', 'bookinfo'], io), 0);
  assert.deepEqual(parse(io.stdout), {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'bookinfo' },
    spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  });
  const io2 = captureIo();
  assert.equal(await main(['waypoint', 'generate', '-n', 'x', '--name', 'wp', '--for', 'workload', '-r', 'canary'], io2), 0);
  assert.deepEqual(parse(io2.stdout).metadata, { name: 'wp', namespace: 'x', labels: { 'istio.io/waypoint-for': 'workload', 'istio.io/rev': 'canary' } });
});

test('bad flags and values fail with a clear message and exit 1', async () => {
  const cases: [string[], RegExp][] = [
    [['waypoint', 'generate', '-n', 'x', '--for', 'pods'], /invalid traffic type: pods\. Valid options are: service, workload, all, none/],
    [['waypoint', 'generate', '-n', 'x', '--name', 'none'], /'none' is a reserved value/],
    [['waypoint', 'generate', '--bogus'], /Unknown option '--bogus'/],
    [['waypoint', 'frobnicate'], /unknown waypoint command "frobnicate"/],
    [['nope'], /unknown command "nope" for "ambitctl"/],
    [['zc', 'workloads', '-f', '/nonexistent/dump.json'], /cannot read \/nonexistent\/dump\.json/],
    [['zc', 'workloads'], /say where the agent is/],
    [['zc', 'things'], /unknown ztunnel-config section "things"/],
  ];
  for (const [argv, re] of cases) {
    const io = captureIo();
    assert.equal(await main(argv, io), 1, argv.join(' '));
    assert.match(io.stderr, /^error: /, argv.join(' '));
    assert.match(io.stderr, re, argv.join(' '));
  }
});

test('durations parse like Go\'s', () => {
  assert.equal(parseDurationMs('90s', 'x'), 90_000);
  assert.equal(parseDurationMs('1m30s', 'x'), 90_000);
  assert.equal(parseDurationMs('500ms', 'x'), 500);
  assert.equal(parseDurationMs('2', 'x'), 2000);
  assert.throws(() => parseDurationMs('soon', 'waypoint-timeout'), /invalid duration "soon" for --waypoint-timeout/);
});

test('tables align like kubectl', () => {
  assert.equal(formatTable(['NAME', 'X'], [['a', '1'], ['longer', '22']]), 'NAME     X\na        1\nlonger   22\n');
});

test('ztunnel-config reads a config_dump file and filters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambitctl-'));
  try {
    const dump = {
      workloads: [
        { uid: 'c//Pod/a/p1', name: 'p1', namespace: 'a', workloadIps: ['10.0.0.1'], node: 'n1', protocol: 'HBONE', waypoint: { destination: 'a/waypoint.a.svc.cluster.local', hboneMtlsPort: 15008 } },
        { uid: 'c//Pod/b/p2', name: 'p2', namespace: 'b', workloadIps: ['10.0.0.2'], node: 'n2', protocol: 'TCP' },
      ],
      services: [{ name: 's', namespace: 'a', hostname: 's.a.svc.cluster.local', vips: ['/10.96.0.5'], endpoints: { x: { status: 'Healthy' }, y: { status: 'Unhealthy' } } }],
      policies: [{ name: 'deny', namespace: 'a', action: 'Deny', scope: 'Namespace' }],
      certificates: [],
      workloadState: { 'c//Pod/a/p1': { name: 'p1', namespace: 'a', state: 'Up', connections: { inbound: [{ src: '10.0.0.2:4000', originalDst: '10.0.0.1:8080', actualDst: '10.0.0.1:8080', protocol: 'HBONE' }] } } },
    };
    const file = join(dir, 'dump.json');
    writeFileSync(file, JSON.stringify(dump));
    let io = captureIo();
    assert.equal(await main(['zc', 'workloads', '-f', file, '--workload-namespace', 'a'], io), 0);
    assert.match(io.stdout, /^NAMESPACE\s+POD NAME\s+ADDRESS\s+NODE\s+WAYPOINT\s+PROTOCOL\na\s+p1\s+10\.0\.0\.1\s+n1\s+a\/waypoint\.a\.svc\.cluster\.local\s+HBONE\n$/);
    io = captureIo();
    assert.equal(await main(['zc', 'services', '-f', file], io), 0);
    assert.match(io.stdout, /s\s+\/10\.96\.0\.5\s+None\s+1\/2/);
    io = captureIo();
    assert.equal(await main(['zc', 'connections', '-f', file, '-o', 'json'], io), 0);
    assert.deepEqual(JSON.parse(io.stdout)[0], { workload: 'p1.a', direction: 'inbound', src: '10.0.0.2:4000', originalDst: '10.0.0.1:8080', actualDst: '10.0.0.1:8080', protocol: 'HBONE' });
    io = captureIo();
    assert.equal(await main(['zc', 'policies', '-f', file, '-o', 'yaml'], io), 0);
    assert.deepEqual(parse(io.stdout), [{ name: 'deny', namespace: 'a', action: 'Deny', scope: 'Namespace' }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('version prints the package version', async () => {
  const io = captureIo();
  assert.equal(await main(['version'], io), 0);
  assert.match(io.stdout, /^client version: \d+\.\d+\.\d+\n$/);
});
