import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPodEnrollment } from './pod-enrollment.js';
import { createPodRegistry, type PodRecord } from './pod-registry.js';
import { createFakeCapturer, fakeNetns, recordingLogger, tempDir } from './test-helpers.js';

function record(uid: string, netns: string, outcome: PodRecord['outcome'] = 'captured'): PodRecord {
  return { pod: { uid, name: uid, namespace: 'default', netns }, outcome, enrolledAt: '2025-01-01T00:00:00.000Z' };
}

test('registry snapshot round trip: pods written by one agent are loaded by the next', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state', 'pods.json');
  const { logger } = recordingLogger();
  const first = createPodRegistry({ path, logger });
  await first.set(record('pod-a', fakeNetns(dir, 'a')));
  await first.set({ ...record('pod-b', fakeNetns(dir, 'b'), 'declined'), reason: 'namespace not ambient' });
  assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  assert.equal(statSync(path).mode & 0o777, 0o600);

  const second = createPodRegistry({ path, logger });
  const loaded = await second.loadSnapshot();
  assert.deepEqual(loaded.map((r) => [r.pod.uid, r.outcome, r.reason]), [['pod-a', 'captured', undefined], ['pod-b', 'declined', 'namespace not ambient']]);
  assert.deepEqual(second.list().map((r) => r.pod.uid), ['pod-a', 'pod-b']);
  // Atomic write leaves no temp files behind.
  assert.deepEqual(readdirSync(join(dir, 'state')), ['pods.json']);
});

test('a pod whose netns file vanished is dropped at load with a log line, and the snapshot is rewritten', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'pods.json');
  const { logger, lines } = recordingLogger();
  const first = createPodRegistry({ path, logger });
  const goneNetns = fakeNetns(dir, 'gone');
  await first.set(record('pod-live', fakeNetns(dir, 'live')));
  await first.set(record('pod-gone', goneNetns));
  rmSync(goneNetns);

  const second = createPodRegistry({ path, logger });
  const loaded = await second.loadSnapshot();
  assert.deepEqual(loaded.map((r) => r.pod.uid), ['pod-live']);
  const line = lines.find((l) => l.uid === 'pod-gone');
  assert.ok(line, 'a log line names the dropped pod');
  assert.match(line.msg, /dropping pod default\/pod-gone \(uid pod-gone\) from the snapshot: its netns .*netns-gone is gone/);
  await second.flush();
  const onDisk = JSON.parse(readFileSync(path, 'utf8')) as { pods: PodRecord[] };
  assert.deepEqual(onDisk.pods.map((r) => r.pod.uid), ['pod-live']);
});

test('a netns path that now names another namespace (pid reused) is dropped', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'pods.json');
  const { logger, lines } = recordingLogger();
  const netns = fakeNetns(dir, 'reused');
  const reg = createPodRegistry({ path, logger });
  await reg.set({ ...record('pod-old', netns), netnsId: '1:1' });
  assert.deepEqual(await createPodRegistry({ path, logger }).loadSnapshot(), []);
  assert.ok(lines.some((l) => /now names another network namespace/.test(l.msg)));
});

test('a missing snapshot is an empty start; a corrupt one is logged and ignored', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'pods.json');
  const { logger, lines } = recordingLogger();
  assert.deepEqual(await createPodRegistry({ path, logger }).loadSnapshot(), []);
  writeFileSync(path, '{"version":1,"pods":[');
  assert.deepEqual(await createPodRegistry({ path, logger }).loadSnapshot(), []);
  assert.ok(lines.some((l) => l.level === 50 && /unreadable/.test(l.msg)));
  writeFileSync(path, JSON.stringify({ version: 1, pods: [{ pod: { uid: 'x' } }, record('ok', fakeNetns(dir, 'ok'))] }));
  assert.deepEqual((await createPodRegistry({ path, logger }).loadSnapshot()).map((r) => r.pod.uid), ['ok']);
  assert.ok(lines.some((l) => /invalid entry/.test(l.msg)));
});

test('concurrent changes are all on disk once each call resolves', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'pods.json');
  const reg = createPodRegistry({ path, logger: recordingLogger().logger });
  const netns = fakeNetns(dir, 'n');
  await Promise.all(Array.from({ length: 20 }, (_, i) => reg.set(record(`pod-${i}`, netns))));
  await reg.delete('pod-3');
  const onDisk = JSON.parse(readFileSync(path, 'utf8')) as { pods: PodRecord[] };
  assert.equal(onDisk.pods.length, 19);
  assert.ok(!onDisk.pods.some((r) => r.pod.uid === 'pod-3'));
});

test('restarted agent re-enrolls running pods by netns path and keeps a failed one for the next try', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'pods.json');
  const { logger } = recordingLogger();
  const before = createPodEnrollment({ capturer: createFakeCapturer(), registry: createPodRegistry({ path, logger }), logger });
  const netnsA = fakeNetns(dir, 'a');
  const netnsGone = fakeNetns(dir, 'gone');
  await before.enroll({ uid: 'pod-a', name: 'a', namespace: 'default', netns: netnsA, ips: ['10.0.1.5'] });
  await before.enroll({ uid: 'pod-gone', name: 'gone', namespace: 'default', netns: netnsGone });
  rmSync(netnsGone);

  const capturer = createFakeCapturer();
  const after = createPodEnrollment({ capturer, registry: createPodRegistry({ path, logger }), logger });
  const report = await after.restore();
  assert.deepEqual(report, { captured: ['pod-a'], declined: [], failed: [] });
  assert.deepEqual(capturer.calls.filter((c) => c.op === 'capture').map((c) => c.op === 'capture' && c.pod), [
    { uid: 'pod-a', name: 'a', namespace: 'default', netns: netnsA, ips: ['10.0.1.5'] },
  ]);
  assert.equal(after.status('pod-a')?.captured, true);
  assert.equal(after.status('pod-gone'), undefined);

  const failing = createFakeCapturer();
  failing.mode = 'throw';
  const third = createPodEnrollment({ capturer: failing, registry: createPodRegistry({ path, logger }), logger });
  const r3 = await third.restore();
  assert.equal(r3.failed.length, 1);
  assert.match(r3.failed[0]!.error, /capture of pod default\/a \(uid pod-a\) failed: iptables-restore failed/);
  // Still recorded, so CHECK reports it as not captured and the next start retries it.
  assert.deepEqual({ outcome: third.status('pod-a')?.outcome, captured: third.status('pod-a')?.captured }, { outcome: 'captured', captured: false });
});

test('enrolling a known uid with a new netns releases the old capture first', async (t) => {
  const dir = tempDir(t);
  const capturer = createFakeCapturer();
  const { logger } = recordingLogger();
  const e = createPodEnrollment({ capturer, registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  await e.enroll({ uid: 'pod-a', name: 'a', namespace: 'default', netns: fakeNetns(dir, 'one') });
  await e.enroll({ uid: 'pod-a', name: 'a', namespace: 'default', netns: fakeNetns(dir, 'one') });
  assert.deepEqual(capturer.calls.map((c) => c.op), ['capture', 'capture-done', 'capture', 'capture-done']);
  await e.enroll({ uid: 'pod-a', name: 'a', namespace: 'default', netns: fakeNetns(dir, 'two') });
  assert.deepEqual(capturer.calls.slice(4).map((c) => c.op), ['release', 'capture', 'capture-done']);
});

test('a netns path that does not exist is refused with field netns', async (t) => {
  const dir = tempDir(t);
  const capturer = createFakeCapturer();
  const { logger } = recordingLogger();
  const e = createPodEnrollment({ capturer, registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  await assert.rejects(e.enroll({ uid: 'pod-a', name: 'a', namespace: 'default', netns: join(dir, 'nope') }), (err: { status?: number; field?: string; message: string }) => {
    assert.equal(err.status, 400);
    assert.equal(err.field, 'netns');
    assert.match(err.message, /netns .*nope does not exist/);
    return true;
  });
  assert.deepEqual(capturer.calls, []);
});

test('enrolling a running pod directly validates like the HTTP API', async (t) => {
  const dir = tempDir(t);
  const { logger } = recordingLogger();
  const e = createPodEnrollment({ capturer: createFakeCapturer(), registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  await assert.rejects(e.enroll({ uid: 'pod-a', name: 'A_bad', namespace: 'default', netns: fakeNetns(dir, 'a') }), /invalid pod: name "A_bad"/);
});
