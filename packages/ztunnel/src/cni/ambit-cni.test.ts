// Runs the real bin/ambit-cni executable as the container runtime would (environment + netconf on stdin) against a
// real enrollment server on a unix socket in a temp dir, backed by a recording fake PodCapturer. No root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFakeCapturer, fakeNetns, tempDir, waitFor } from '../inpod/test-helpers.js';
import { createAgentClient } from './agent-client.js';
import { cniEnv, netconf, PREV_1_0, runPluginFile, startAgent, type Run } from './cni-test-helpers.js';

// Compiled to dist/src/cni/; the executable lives in packages/ztunnel/bin/.
const BIN = fileURLToPath(new URL('../../../bin/ambit-cni', import.meta.url));

function runPlugin(env: Record<string, string>, stdin: string): Promise<Run> {
  // A minimal environment like a runtime gives.
  return runPluginFile(BIN, { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, ...env }, stdin);
}

test('bin/ambit-cni is executable', () => {
  accessSync(BIN, constants.X_OK);
});

test('VERSION prints the supported versions', async () => {
  const r = await runPlugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.1.0' }));
  assert.equal(r.code, 0);
  assert.deepEqual(r.json, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  const old = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
  assert.deepEqual(old.json.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  const asked = await runPlugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '0.4.0' }));
  assert.equal(asked.json.cniVersion, '0.4.0');
});

test('ADD captures the pod through the agent and passes the previous result through', async (t) => {
  const { dir, socketPath, capturer } = await startAgent(t);
  const netns = fakeNetns(dir, 'sleep-1');
  const r = await runPlugin(cniEnv('ADD', netns), netconf(socketPath));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json, PREV_1_0);
  assert.deepEqual(capturer.calls[0], {
    op: 'capture',
    pod: { uid: 'uid-sleep-1', name: 'sleep-1', namespace: 'default', netns, containerId: 'sandbox-uid-sleep-1', ips: ['10.0.1.5'] },
  });
  assert.ok(capturer.isCaptured('uid-sleep-1'));
  // Logs went to stderr as JSON lines; stdout held only the result.
  assert.match(r.stderr, /"msg":"pod default\/sleep-1 captured"/);
});

test('ADD for a pod the agent declines still succeeds with the previous result', async (t) => {
  const capturer = createFakeCapturer();
  capturer.mode = 'decline';
  const { dir, socketPath } = await startAgent(t, capturer);
  const r = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'x')), netconf(socketPath));
  assert.equal(r.code, 0);
  assert.deepEqual(r.json, PREV_1_0);
  assert.match(r.stderr, /not captured: namespace default is not labelled/);
});

test('ADD fails with a CNI error and non-zero exit when the capture fails', async (t) => {
  const capturer = createFakeCapturer();
  capturer.mode = 'throw';
  const { dir, socketPath } = await startAgent(t, capturer);
  const r = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'x')), netconf(socketPath));
  assert.equal(r.code, 1);
  assert.deepEqual(Object.keys(r.json).sort(), ['cniVersion', 'code', 'details', 'msg']);
  assert.equal(r.json.cniVersion, '1.0.0');
  assert.equal(r.json.code, 100);
  assert.equal(r.json.msg, `ambit: could not capture pod default/sleep-1: agent at ${socketPath} answered 500: capture of pod default/sleep-1 (uid uid-sleep-1) failed: iptables-restore failed in the pod netns: exit status 4`);
  assert.match(r.json.details, /uid=uid-sleep-1/);
});

test('agent down: ADD fails with a clear message, DEL still succeeds', async (t) => {
  const dir = tempDir(t, 'ambit-cni-');
  const socketPath = join(dir, 'cni.sock');
  const add = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'x')), netconf(socketPath));
  assert.equal(add.code, 1);
  assert.equal(add.json.code, 11);
  assert.equal(add.json.msg, `ambit: could not capture pod default/sleep-1: agent at ${socketPath} unreachable (ENOENT): is the ambit node agent running on this node?`);
  const del = await runPlugin(cniEnv('DEL', ''), netconf(socketPath));
  assert.deepEqual([del.code, del.stdout], [0, '']);
  assert.match(del.stderr, /could not tell the agent that pod default\/sleep-1 is gone: agent at .* unreachable \(ENOENT\)/);
});

test('agent that does not answer in timeoutSeconds fails the ADD', async (t) => {
  const { dir, socketPath, capturer } = await startAgent(t);
  const open = capturer.gate('uid-sleep-1');
  t.after(open);
  const r = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'x')), netconf(socketPath, { timeoutSeconds: 0.3 }));
  assert.equal(r.code, 1);
  assert.equal(r.json.code, 11);
  assert.match(r.json.msg, /^ambit: could not capture pod default\/sleep-1: agent at .* did not answer within 0.3s/);
});

test('excluded namespace passes through without calling the agent, even when it is down', async (t) => {
  const dir = tempDir(t, 'ambit-cni-');
  const kube = { ns: 'kube-system', name: 'coredns-1', uid: 'uid-dns' };
  const add = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'dns'), kube), netconf(join(dir, 'no-agent.sock')));
  assert.equal(add.code, 0, add.stdout);
  assert.deepEqual(add.json, PREV_1_0);
  const custom = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'm'), { ns: 'monitoring', name: 'p', uid: 'u' }), netconf(join(dir, 'no-agent.sock'), { excludeNamespaces: ['monitoring'] }));
  assert.equal(custom.code, 0);
});

test('bad stdin JSON is a CNI decoding failure (code 6)', async () => {
  const r = await runPlugin(cniEnv('ADD', '/var/run/netns/x'), '{"cniVersion": "1.0.0", ');
  assert.equal(r.code, 1);
  assert.equal(r.json.code, 6);
  assert.match(r.json.msg, /decoding failure/);
});

test('a chained ADD without prevResult is an error; missing env is code 4; unknown version code 1', async (t) => {
  const { dir, socketPath, capturer } = await startAgent(t);
  const noPrev = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'x')), netconf(socketPath, { prevResult: undefined }));
  assert.equal(noPrev.code, 1);
  assert.equal(noPrev.json.code, 7);
  assert.match(noPrev.json.msg, /no prevResult .* chained plugin/);
  const env = cniEnv('ADD', '');
  const noNetns = await runPlugin(env, netconf(socketPath));
  assert.deepEqual([noNetns.code, noNetns.json.code], [1, 4]);
  assert.match(noNetns.json.msg, /CNI_NETNS missing for ADD/);
  const v = await runPlugin(cniEnv('ADD', fakeNetns(dir, 'y')), netconf(socketPath, { cniVersion: '0.2.0' }));
  assert.deepEqual([v.json.code, v.json.cniVersion], [1, '1.1.0']);
  assert.deepEqual(capturer.calls, []);
});

test('ADD answers in each supported cniVersion', async (t) => {
  const { dir, socketPath } = await startAgent(t);
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const legacy = v.startsWith('0.');
    const prevResult = { ...PREV_1_0, cniVersion: v, ips: [{ ...(legacy ? { version: '4' } : {}), address: '10.0.1.5/24', interface: 0 }] };
    const r = await runPlugin(cniEnv('ADD', fakeNetns(dir, v), { ns: 'default', name: `p-${v.replaceAll('.', '-')}`, uid: `u-${v}` }), netconf(socketPath, { cniVersion: v, prevResult }));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(r.json, prevResult, `cniVersion ${v}`);
  }
});

test('DEL releases the pod, and succeeds for a pod the agent never knew', async (t) => {
  const { dir, socketPath, capturer, enrollment } = await startAgent(t);
  const netns = fakeNetns(dir, 'x');
  assert.equal((await runPlugin(cniEnv('ADD', netns), netconf(socketPath))).code, 0);
  const del = await runPlugin(cniEnv('DEL', netns), netconf(socketPath));
  assert.deepEqual([del.code, del.stdout], [0, '']);
  assert.equal(enrollment.status('uid-sleep-1'), undefined);
  assert.equal(capturer.isCaptured('uid-sleep-1'), false);
  const again = await runPlugin(cniEnv('DEL', ''), netconf(socketPath, { prevResult: undefined }));
  assert.deepEqual([again.code, again.stdout], [0, '']);
  assert.deepEqual(capturer.calls.filter((c) => c.op === 'release').length, 2);
});

test('CHECK passes while captured and fails once the capture is lost or the pod is unknown', async (t) => {
  const { dir, socketPath, capturer } = await startAgent(t);
  const netns = fakeNetns(dir, 'x');
  assert.equal((await runPlugin(cniEnv('ADD', netns), netconf(socketPath))).code, 0);
  const ok = await runPlugin(cniEnv('CHECK', netns), netconf(socketPath));
  assert.deepEqual([ok.code, ok.stdout], [0, '']);

  capturer.lose('uid-sleep-1');
  const lost = await runPlugin(cniEnv('CHECK', netns), netconf(socketPath));
  assert.equal(lost.code, 1);
  assert.deepEqual([lost.json.code, lost.json.msg], [101, 'ambit: pod default/sleep-1 is no longer captured by the node agent']);

  const unknown = await runPlugin(cniEnv('CHECK', netns, { ns: 'default', name: 'ghost', uid: 'uid-ghost' }), netconf(socketPath));
  assert.equal(unknown.json.code, 101);
  assert.match(unknown.json.msg, /pod default\/ghost is not enrolled with the node agent/);

  const old = await runPlugin(cniEnv('CHECK', netns), netconf(socketPath, { cniVersion: '0.3.1', prevResult: { ...PREV_1_0, cniVersion: '0.3.1' } }));
  assert.deepEqual([old.code, old.json.code], [1, 1]);

  rmSync(socketPath);
  const down = await runPlugin(cniEnv('CHECK', netns), netconf(socketPath));
  assert.deepEqual([down.code, down.json.code], [1, 11]);
});

test('CHECK passes for a pod the agent declined', async (t) => {
  const capturer = createFakeCapturer();
  capturer.mode = 'decline';
  const { dir, socketPath } = await startAgent(t, capturer);
  const netns = fakeNetns(dir, 'x');
  assert.equal((await runPlugin(cniEnv('ADD', netns), netconf(socketPath))).code, 0);
  assert.equal((await runPlugin(cniEnv('CHECK', netns), netconf(socketPath))).code, 0);
});

test('ADD and DEL of one pod are serialized by the agent: DEL waits for the slow ADD', async (t) => {
  const { dir, socketPath, capturer, arrivedReleases } = await startAgent(t);
  const netns = fakeNetns(dir, 'slow');
  const open = capturer.gate('uid-sleep-1');
  const add = runPlugin(cniEnv('ADD', netns), netconf(socketPath));
  await waitFor('the capture to start', () => capturer.calls.length > 0);
  const del = runPlugin(cniEnv('DEL', netns), netconf(socketPath));
  // Another pod goes through while this one is blocked.
  const other = await createAgentClient({ socketPath, timeoutMs: 5000 }).addPod({ uid: 'uid-other', name: 'other', namespace: 'default', netns: fakeNetns(dir, 'other') });
  assert.deepEqual(other, { captured: true });
  await waitFor('the DEL to reach the agent', () => arrivedReleases.includes('uid-sleep-1'));
  assert.ok(!capturer.calls.some((c) => c.op === 'release'), 'DEL reached release before ADD finished');
  open();
  const [a, d] = await Promise.all([add, del]);
  assert.deepEqual([a.code, d.code], [0, 0]);
  const mine = capturer.calls.filter((c) => (c.op === 'capture' ? c.pod.uid : c.uid) === 'uid-sleep-1').map((c) => c.op);
  assert.deepEqual(mine, ['capture', 'capture-done', 'release']);
  assert.equal(capturer.isCaptured('uid-sleep-1'), false);
});
