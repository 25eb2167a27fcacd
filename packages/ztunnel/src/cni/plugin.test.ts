import { createRequire } from 'node:module';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PodSpec } from '../inpod/enrollment-contract.js';
import { AgentCallError, type AgentClient } from './agent-client.js';
import { SUPPORTED_CNI_VERSIONS } from './cni-spec.js';
import { runCniPlugin } from './plugin.js';

const ENV = {
  CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'sandbox-1', CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'eth0',
  CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=sleep-1;K8S_POD_UID=uid-1',
};

function fakeClient(behaviour: Partial<AgentClient> = {}) {
  const added: PodSpec[] = [];
  const client: AgentClient = {
    socketPath: '/fake.sock',
    addPod: async (pod) => { added.push(pod); return { captured: true }; },
    deletePod: async () => ({ released: true, known: true }),
    getPod: async () => undefined,
    ...behaviour,
  };
  return { client, added };
}

function prevResultFor(v: string) {
  const legacy = v.startsWith('0.');
  return {
    cniVersion: v,
    interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/cni-1' }],
    ips: [{ ...(legacy ? { version: '4' } : {}), address: '10.0.1.5/24', gateway: '10.0.1.1', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  };
}

for (const v of SUPPORTED_CNI_VERSIONS) {
  test(`ADD with cniVersion ${v} prints the previous result unchanged and sends the pod IPs`, async () => {
    const { client, added } = fakeClient();
    const prevResult = prevResultFor(v);
    const out = await runCniPlugin({
      env: ENV, stdin: JSON.stringify({ cniVersion: v, name: 'k8s-pod-network', type: 'ambit-cni', prevResult }),
      writeLog: () => {}, createClient: () => client,
    });
    assert.equal(out.exitCode, 0);
    assert.deepEqual(JSON.parse(out.stdout), prevResult);
    assert.deepEqual(added, [{ uid: 'uid-1', name: 'sleep-1', namespace: 'default', netns: '/var/run/netns/cni-1', containerId: 'sandbox-1', ips: ['10.0.1.5'] }]);
  });
}

test('agent failure kinds map to CNI codes: transient ones are 11 (try again later)', async () => {
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'ambit-cni', prevResult: prevResultFor('1.0.0') });
  const codeFor = async (err: AgentCallError) => {
    const out = await runCniPlugin({ env: ENV, stdin, writeLog: () => {}, createClient: () => fakeClient({ addPod: async () => { throw err; } }).client });
    assert.equal(out.exitCode, 1);
    return (JSON.parse(out.stdout) as { code: number }).code;
  };
  assert.equal(await codeFor(new AgentCallError('unreachable', 'x')), 11);
  assert.equal(await codeFor(new AgentCallError('timeout', 'x')), 11);
  assert.equal(await codeFor(new AgentCallError('refused', 'x', { status: 503 })), 11);
  assert.equal(await codeFor(new AgentCallError('refused', 'x', { status: 500 })), 100);
  assert.equal(await codeFor(new AgentCallError('protocol', 'x')), 100);
});

test('logs go to the log sink only and respect logLevel', async () => {
  const lines: string[] = [];
  const { client } = fakeClient();
  const stdin = (logLevel: string) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'ambit-cni', logLevel, prevResult: prevResultFor('1.0.0') });
  await runCniPlugin({ env: ENV, stdin: stdin('info'), writeLog: (l) => lines.push(l), createClient: () => client });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!).msg, 'pod default/sleep-1 captured');
  await runCniPlugin({ env: ENV, stdin: stdin('error'), writeLog: (l) => lines.push(l), createClient: () => client });
  assert.equal(lines.length, 1);
});

test('GC and STATUS succeed with no output and no agent call', async () => {
  for (const command of ['GC', 'STATUS']) {
    const out = await runCniPlugin({
      env: { CNI_COMMAND: command }, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'ambit-cni' }), writeLog: () => {},
      createClient: () => { throw new Error('must not be called'); },
    });
    assert.deepEqual(out, { exitCode: 0, stdout: '' });
  }
});

test('the plugin entry imports only node builtins and its own light modules', () => {
  // Per-pod process start-up: no pino, prom-client, grpc or other packages may be reachable from plugin-main.
  const here = dirname(fileURLToPath(import.meta.url));
  const seen = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/gm)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      // The CNI spec helpers shared with the test cluster's plugin: an entry point that imports nothing itself.
      else if (spec === '@ambit/api/cni') visit(createRequire(import.meta.url).resolve(spec));
      else external.add(spec);
    }
  };
  visit(resolve(here, 'plugin-main.js'));
  assert.deepEqual([...external].filter((s) => !s.startsWith('node:')), []);
  assert.ok(seen.size >= 5, `walked ${seen.size} modules`);
  assert.ok(![...seen].some((f) => /pod-spec|pod-registry|enrollment-api/.test(f)), 'agent-side modules are not loaded');
});
