import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@ambit/api';
import { applyLocalConfigText, loadLocalConfig, parseLocalConfig, watchLocalConfig, type LocalConfigLogger } from './local-config.js';
import { createStateStore, type StateChange } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';
import { authorize } from '../policy/authorize.js';

// Compiled to dist/src/discovery/; the example lives in packages/ztunnel/examples/.
const EXAMPLE = fileURLToPath(new URL('../../../examples/local-config.yaml', import.meta.url));

function setup() {
  const store = createStateStore();
  return { store, updater: createStateUpdater({ store }) };
}

function recordingLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj, msg }); };
  const logger: LocalConfigLogger = { info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-local-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the example local config loads completely', async () => {
  const { store, updater } = setup();
  const r = await loadLocalConfig(EXAMPLE, updater);
  assert.deepEqual(r.rejected, []);
  assert.deepEqual(r.counts, { workloads: 4, services: 1, policies: 3 });
  const echo = store.serviceByVip('', '10.96.0.20')!;
  assert.equal(echo.hostname, 'echo.echo.svc.cluster.local');
  assert.equal(store.serviceByVip('', 'fd00:96::20'), echo);
  assert.deepEqual(echo.ports, [{ servicePort: 80, targetPort: 8080 }, { servicePort: 9090, targetPort: 0 }]);
  assert.deepEqual(store.endpointsOf(echo).map((e) => e.workload.name).sort(), ['echo-1', 'echo-2']);
  assert.equal(store.workloadByAddress('', 'fd00::2:20')?.name, 'echo-1');
  assert.equal(store.workloadByAddress('', '10.0.3.30')?.status, 'Unhealthy');
  const echo1 = store.workloadByUid('Kubernetes//Pod/echo/echo-1')!;
  assert.equal(echo1.capacity, 3);
  assert.deepEqual(store.policiesFor(echo1).map((p) => p.name).sort(), ['allow-sleep', 'audit-plaintext', 'deny-admin-port']);
});

test('the example policies decide as written', async () => {
  const { store, updater } = setup();
  await loadLocalConfig(EXAMPLE, updater);
  const echo1 = store.workloadByUid('Kubernetes//Pod/echo/echo-1')!;
  const policies = store.policiesFor(echo1);
  const base = { sourceIp: '10.0.1.10', destinationIp: '10.0.2.20', destinationPort: 8080, destinationWorkload: echo1 };
  assert.equal(authorize({ ...base, sourceIdentity: 'spiffe://cluster.local/ns/default/sa/sleep' }, policies).reason, 'allowed by ALLOW policy "echo/allow-sleep"');
  assert.equal(authorize({ ...base, sourceIdentity: 'spiffe://cluster.local/ns/default/sa/other' }, policies).allow, false);
  assert.equal(authorize({ ...base, sourceIdentity: 'spiffe://cluster.local/ns/echo/sa/x', destinationPort: 15000 }, policies).reason, 'denied by DENY policy "istio-system/deny-admin-port"');
  const plain = authorize(base, policies);
  assert.equal(plain.allow, false);
  assert.equal(plain.dryRun?.reason, 'denied by DENY policy "echo/audit-plaintext"');
});

test('local config with one bad entry loads the rest and names the bad one', () => {
  const { store, updater } = setup();
  const text = [
    'workloads:',
    '  - name: good',
    '    namespace: default',
    '    workloadIps: ["10.0.1.1"]',
    '  - name: sleep-1',
    '    namespace: default',
    '    uid: Kubernetes//Pod/default/sleep-1',
    '    workloadIps: ["10.0.1.x"]',
    'policies:',
    '  - name: p',
    '    namespace: default',
    '    scope: Namespace',
    '    action: Allow',
    '    rules: [[[{principals: ["cluster.local/ns/default/*"]}]]]',
    '',
  ].join('\n');
  const r = applyLocalConfigText(text, '/etc/ambit/local.yaml', updater);
  assert.equal(r.rejected.length, 1);
  assert.deepEqual(
    { kind: r.rejected[0]!.kind, name: r.rejected[0]!.name, line: r.rejected[0]!.line },
    { kind: 'workload', name: 'Kubernetes//Pod/default/sleep-1', line: 5 },
  );
  assert.equal(
    r.rejected[0]!.text,
    '/etc/ambit/local.yaml:5: workload "default/sleep-1" (uid Kubernetes//Pod/default/sleep-1): workloadIps[0] "10.0.1.x" is not an IP address',
  );
  assert.equal(store.workloadByAddress('', '10.0.1.1')?.uid, 'Kubernetes//Pod/default/good', 'missing uid is made up the way istiod writes it');
  assert.deepEqual(store.policyByKey('default/p')?.rules, [[[{ principals: [{ prefix: 'cluster.local/ns/default/' }] }]]]);
});

test('unknown fields are refused with a hint, naming the entry and its line', () => {
  const { updater } = setup();
  const text = 'workloads:\n  - name: a\n    namespace: default\n    addresses: ["10.0.0.1"]\n';
  const r = applyLocalConfigText(text, 'f.yaml', updater);
  assert.equal(r.rejected[0]!.text, 'f.yaml:2: workload "default/a" (uid Kubernetes//Pod/default/a): unknown field "addresses" (did you mean "workloadIps"?)');
});

test('ztunnel spellings: proto enums, tagged string matches, waypoint by hostname or address, loadBalancer', () => {
  const { store, updater } = setup();
  const text = `
workloads:
  - uid: w1
    name: w1
    namespace: ns
    workloadIps: ["10.0.0.1"]
    protocol: hbone
    status: UNHEALTHY
    waypoint: {destination: "ns/waypoint.ns.svc.cluster.local", hboneMtlsPort: 15008}
    networkGateway: {destination: "net2/192.168.0.1", hboneMtlsPort: 15008}
services:
  - name: s
    namespace: ns
    hostname: s.ns.svc.cluster.local
    vips: ["10.96.0.1"]
    ports: {80: 8080}
    loadBalancer: {mode: FAILOVER, routingPreferences: [NETWORK, REGION], healthPolicy: ALLOW_ALL}
policies:
  - name: p
    namespace: ns
    scope: WORKLOAD_SELECTOR
    action: DENY
    rules:
      - - - principals: [!Exact cluster.local/ns/a/sa/b, !Prefix cluster.local/ns/c/]
            notNamespaces: [!Presence]
            namespaces: [{Suffix: "-prod"}]
`;
  const r = applyLocalConfigText(text, 'f.yaml', updater);
  assert.deepEqual(r.rejected, []);
  const w = store.workloadByUid('w1')!;
  assert.equal(w.protocol, 'HBONE');
  assert.equal(w.status, 'Unhealthy');
  assert.deepEqual(w.waypoint, { destination: { namespace: 'ns', hostname: 'waypoint.ns.svc.cluster.local' }, hboneMtlsPort: 15008 });
  assert.deepEqual(w.networkGateway?.destination, { network: 'net2', address: '192.168.0.1' });
  const s = store.serviceByKey('ns/s.ns.svc.cluster.local')!;
  assert.deepEqual(s.loadBalancing, { routingPreferences: ['Network', 'Region'], mode: 'Failover', healthPolicy: 'AllowAll' });
  const p = store.policyByKey('ns/p')!;
  assert.equal(p.scope, 'WorkloadSelector');
  assert.equal(p.action, 'Deny');
  assert.deepEqual(p.rules[0]![0]![0], {
    namespaces: [{ suffix: '-prod' }],
    notNamespaces: [{ presence: true }],
    principals: [{ exact: 'cluster.local/ns/a/sa/b' }, { prefix: 'cluster.local/ns/c/' }],
  });
});

test('unparsable yaml is a ConfigError naming file and line, and the state is untouched', () => {
  const { store, updater } = setup();
  applyLocalConfigText('workloads:\n  - {name: a, namespace: d, workloadIps: ["10.0.0.1"]}\n', 'f.yaml', updater);
  assert.throws(
    () => applyLocalConfigText('workloads:\n  - name: a\n   bad: [\n', 'f.yaml', updater),
    (e: unknown) => e instanceof ConfigError && /^f\.yaml:\d+:\d+: invalid YAML/.test(e.message),
  );
  assert.ok(store.workloadByAddress('', '10.0.0.1'));
});

test('unknown top-level key is a ConfigError with its line', () => {
  assert.throws(() => parseLocalConfig('workloads: []\nworkload: []\n', 'f.yaml'), /^ConfigError: f\.yaml:2: unknown top-level key "workload"/);
});

test('an empty file is an empty snapshot', () => {
  const { store, updater } = setup();
  applyLocalConfigText('workloads:\n  - {name: a, namespace: d, workloadIps: ["10.0.0.1"]}\n', 'f.yaml', updater);
  applyLocalConfigText('', 'f.yaml', updater);
  assert.equal(store.listWorkloads().length, 0);
});

const allowSleep = (port: number) => `
workloads:
  - {uid: echo-1, name: echo-1, namespace: echo, workloadIps: ["10.0.2.20"], protocol: HBONE}
policies:
  - name: allow
    namespace: echo
    scope: Namespace
    action: Allow
    rules: [[[{destinationPorts: [${port}]}]]]
`;

test('file reload applies a policy change and notifies listeners', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'local.yaml');
  writeFileSync(file, allowSleep(8080));
  const { store, updater } = setup();
  const { logger } = recordingLogger();
  const w = watchLocalConfig(file, updater, logger, { debounceMs: 20, pollIntervalMs: 50 });
  t.after(() => w.close());
  await w.ready;
  const changes: StateChange[] = [];
  store.onChange((c) => changes.push(c));
  const echo = store.workloadByUid('echo-1')!;
  const facts = { sourceIdentity: 'spiffe://cluster.local/ns/default/sa/sleep', sourceIp: '10.0.1.10', destinationIp: '10.0.2.20', destinationPort: 8080 };
  assert.equal(authorize(facts, store.policiesFor(echo)).allow, true);

  writeFileSync(file, allowSleep(9090));
  await waitFor('the policy change', () => changes.some((c) => c.policies.includes('echo/allow')));
  assert.equal(authorize(facts, store.policiesFor(store.workloadByUid('echo-1')!)).allow, false);
  assert.deepEqual(changes[0]!.workloads, [], 'only the policy changed');
});

test('file replaced by rename (editor save) is picked up', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'local.yaml');
  writeFileSync(file, allowSleep(8080));
  const { store, updater } = setup();
  const w = watchLocalConfig(file, updater, recordingLogger().logger, { debounceMs: 20, pollIntervalMs: 50 });
  t.after(() => w.close());
  await w.ready;
  writeFileSync(join(dir, '.local.yaml.swp'), allowSleep(7070));
  renameSync(join(dir, '.local.yaml.swp'), file);
  await waitFor('the renamed file', () => store.policyByKey('echo/allow')?.rules[0]?.[0]?.[0]?.destinationPorts?.[0] === 7070);
});

test('unparsable file on reload keeps the last good config and logs the file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'local.yaml');
  writeFileSync(file, allowSleep(8080));
  const { store, updater } = setup();
  const { logger, lines } = recordingLogger();
  const w = watchLocalConfig(file, updater, logger, { debounceMs: 20, pollIntervalMs: 50 });
  t.after(() => w.close());
  await w.ready;
  writeFileSync(file, 'workloads: [\n');
  await waitFor('the error log', () => lines.some((l) => l.level === 'error'));
  const err = lines.find((l) => l.level === 'error')!;
  assert.match(err.msg, /local\.yaml:\d+:\d+: invalid YAML: .*; keeping the last good config$/);
  assert.ok(store.workloadByUid('echo-1'));
  assert.equal(store.policyByKey('echo/allow')?.rules[0]?.[0]?.[0]?.destinationPorts?.[0], 8080);
  // And a fixed file is applied again.
  writeFileSync(file, allowSleep(6060));
  await waitFor('the fixed file', () => store.policyByKey('echo/allow')?.rules[0]?.[0]?.[0]?.destinationPorts?.[0] === 6060);
});

test('rejected entries on reload are logged with file, line and entry name', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'local.yaml');
  writeFileSync(file, 'workloads:\n  - {uid: a, name: a, namespace: d, workloadIps: ["10.0.0.1"], status: Sleepy}\n');
  const { logger, lines } = recordingLogger();
  const w = watchLocalConfig(file, setup().updater, logger, { debounceMs: 20, pollIntervalMs: 50 });
  t.after(() => w.close());
  const r = await w.ready;
  assert.equal(r?.rejected.length, 1);
  const err = lines.find((l) => l.level === 'error')!;
  assert.equal(err.msg, `${file}:2: workload "d/a" (uid a): status "Sleepy" is not one of Healthy, Unhealthy`);
  assert.deepEqual(err.obj, { file, kind: 'workload', entry: 'a', line: 2 });
});

test('missing file at start is logged and the watcher picks it up when it appears', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'later.yaml');
  const { store, updater } = setup();
  const { logger, lines } = recordingLogger();
  const w = watchLocalConfig(file, updater, logger, { debounceMs: 20, pollIntervalMs: 50 });
  t.after(() => w.close());
  assert.equal(await w.ready, undefined);
  assert.ok(lines.some((l) => l.level === 'warn'));
  writeFileSync(file, allowSleep(8080));
  await waitFor('the new file', () => store.workloadByUid('echo-1') !== undefined);
});
