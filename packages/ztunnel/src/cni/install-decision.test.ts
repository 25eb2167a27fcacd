// The uninstall decision at exit, with a real unix socket standing for another agent and a fake DaemonSet answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../inpod/test-helpers.js';
import { decideUninstall, socketAnswers, type DaemonSetState } from './install-decision.js';

type T = { after(fn: () => unknown): void };

async function otherAgent(t: T, path: string): Promise<void> {
  const server = createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
}

const mustNotAsk = (): Promise<DaemonSetState> => Promise.reject(new Error('must not be called'));

test('socketAnswers: a listening socket answers; a missing path or a dead socket file does not', async (t) => {
  const dir = tempDir(t, 'ambit-dec-');
  const live = join(dir, 'live.sock');
  await otherAgent(t, live);
  assert.equal(await socketAnswers(live), true);
  assert.equal(await socketAnswers(join(dir, 'missing.sock')), false);
  // A socket file whose server is gone (a SIGKILLed agent): connect is refused.
  const dead = join(dir, 'dead.sock');
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(dead, resolve));
  await new Promise<void>((resolve) => s.close(() => resolve()));
  assert.equal(await socketAnswers(dead), false);
});

test('rolling upgrade: another agent serving the socket keeps the plugin, whatever the mode', async (t) => {
  const dir = tempDir(t, 'ambit-dec-');
  const socketPath = join(dir, 'cni.sock');
  await otherAgent(t, socketPath);
  for (const mode of ['auto', 'true'] as const) {
    const d = await decideUninstall({ mode, socketPath, daemonSet: mustNotAsk });
    assert.equal(d.uninstall, false, mode);
    assert.match(d.reason, /another agent serves .*cni.sock \(rolling upgrade\)/);
  }
});

test('false never removes; true removes when no other agent serves', async (t) => {
  const socketPath = join(tempDir(t, 'ambit-dec-'), 'cni.sock');
  assert.deepEqual(await decideUninstall({ mode: 'false', socketPath, daemonSet: mustNotAsk }), { uninstall: false, reason: 'AMBIT_CNI_UNINSTALL_ON_EXIT=false' });
  assert.equal((await decideUninstall({ mode: 'true', socketPath, daemonSet: mustNotAsk })).uninstall, true);
});

test('auto follows the DaemonSet: kept while it exists, removed when gone or being deleted, or when it cannot be asked', async (t) => {
  const socketPath = join(tempDir(t, 'ambit-dec-'), 'cni.sock');
  const decide = (state: DaemonSetState) => decideUninstall({ mode: 'auto', socketPath, daemonSet: async () => state });
  assert.deepEqual(await decide({ kind: 'present', name: 'istio-system/ztunnel' }), {
    uninstall: false, reason: 'DaemonSet istio-system/ztunnel still exists (pod restart or upgrade): new pods wait for the next agent',
  });
  assert.deepEqual(await decide({ kind: 'deleting', name: 'istio-system/ztunnel' }), { uninstall: true, reason: 'DaemonSet istio-system/ztunnel is being deleted' });
  assert.deepEqual(await decide({ kind: 'gone', name: 'istio-system/ztunnel' }), { uninstall: true, reason: 'DaemonSet istio-system/ztunnel is gone' });
  assert.equal((await decide({ kind: 'not-owned' })).uninstall, true);
  const unknown = await decide({ kind: 'unknown', error: 'HTTP 403: forbidden' });
  assert.equal(unknown.uninstall, true);
  assert.match(unknown.reason, /could not read the agent's DaemonSet \(HTTP 403: forbidden\)/);
  const outsideK8s = await decideUninstall({ mode: 'auto', socketPath });
  assert.deepEqual(outsideK8s, { uninstall: true, reason: 'not in Kubernetes mode: no DaemonSet will bring an agent back' });
});
