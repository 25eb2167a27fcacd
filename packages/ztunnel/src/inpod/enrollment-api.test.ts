import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { existsSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEnrollmentServer, type EnrollmentServer } from './enrollment-api.js';
import { createPodEnrollment, type PodEnrollment } from './pod-enrollment.js';
import { createPodRegistry } from './pod-registry.js';
import { createFakeCapturer, fakeNetns, recordingLogger, startEnrollmentAgent, tempDir, waitFor, type FakeCapturer } from './test-helpers.js';

interface Reply { status: number; body: any; headers: Record<string, unknown> }

function call(socketPath: string, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function startAgent(t: { after(fn: () => unknown): void }, dir: string, capturer: FakeCapturer = createFakeCapturer()) {
  return startEnrollmentAgent(t, { dir, capturer });
}

const podBody = (dir: string, uid = 'uid-1', extra: object = {}) => JSON.stringify({ uid, name: 'sleep-1', namespace: 'default', netns: fakeNetns(dir, uid), ...extra });

test('server creates its socket directory 0700 and the socket 0600', async (t) => {
  const dir = tempDir(t);
  const { socketPath } = await startAgent(t, dir);
  assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700);
  assert.ok(lstatSync(socketPath).isSocket());
  assert.equal(lstatSync(socketPath).mode & 0o777, 0o600);
});

test('POST /v1/pods captures, GET shows the pod, DELETE releases it and is idempotent', async (t) => {
  const dir = tempDir(t);
  const { socketPath, capturer } = await startAgent(t, dir);
  const add = await call(socketPath, 'POST', '/v1/pods', podBody(dir, 'uid-1', { ips: ['10.0.1.5'], serviceAccount: 'sleep' }));
  assert.deepEqual([add.status, add.body], [200, { captured: true }]);
  const one = await call(socketPath, 'GET', '/v1/pods/uid-1');
  assert.equal(one.status, 200);
  assert.equal(one.body.outcome, 'captured');
  assert.equal(one.body.captured, true);
  assert.deepEqual(one.body.pod.ips, ['10.0.1.5']);
  const list = await call(socketPath, 'GET', '/v1/pods');
  assert.deepEqual(list.body.pods.map((p: { pod: { uid: string } }) => p.pod.uid), ['uid-1']);

  assert.deepEqual((await call(socketPath, 'DELETE', '/v1/pods/uid-1')).body, { released: true, known: true });
  assert.deepEqual((await call(socketPath, 'DELETE', '/v1/pods/uid-1')).body, { released: true, known: false });
  const never = await call(socketPath, 'DELETE', '/v1/pods/never-seen');
  assert.deepEqual([never.status, never.body], [200, { released: true, known: false }]);
  assert.equal((await call(socketPath, 'GET', '/v1/pods/uid-1')).status, 404);
  assert.deepEqual(capturer.calls.filter((c) => c.op === 'release').length, 3);
});

test('agent policy declining a pod answers 200 captured:false with the reason', async (t) => {
  const dir = tempDir(t);
  const capturer = createFakeCapturer();
  capturer.mode = 'decline';
  const { socketPath } = await startAgent(t, dir, capturer);
  const add = await call(socketPath, 'POST', '/v1/pods', podBody(dir));
  assert.deepEqual([add.status, add.body], [200, { captured: false, reason: 'namespace default is not labelled istio.io/dataplane-mode=ambient' }]);
  const one = await call(socketPath, 'GET', '/v1/pods/uid-1');
  assert.deepEqual([one.body.outcome, one.body.captured, one.body.reason], ['declined', false, add.body.reason]);
});

test('a failed capture answers 500 with the error and records nothing', async (t) => {
  const dir = tempDir(t);
  const capturer = createFakeCapturer();
  capturer.mode = 'throw';
  const { socketPath } = await startAgent(t, dir, capturer);
  const add = await call(socketPath, 'POST', '/v1/pods', podBody(dir));
  assert.equal(add.status, 500);
  assert.equal(add.body.code, 'AMB_ERR_ENROLLMENT');
  assert.match(add.body.error, /capture of pod default\/sleep-1 \(uid uid-1\) failed: iptables-restore failed/);
  assert.equal((await call(socketPath, 'GET', '/v1/pods/uid-1')).status, 404);
});

test('a capturer may answer 503 through a status on its error', async (t) => {
  const dir = tempDir(t);
  const capturer = createFakeCapturer();
  capturer.capture = async () => { throw Object.assign(new Error('no xDS snapshot yet'), { status: 503 }); };
  const { socketPath } = await startAgent(t, dir, capturer);
  const add = await call(socketPath, 'POST', '/v1/pods', podBody(dir));
  assert.equal(add.status, 503);
  assert.match(add.body.error, /no xDS snapshot yet/);
});

test('bad requests get 4xx naming the field, and nothing is captured', async (t) => {
  const dir = tempDir(t);
  const { socketPath, capturer } = await startAgent(t, dir);
  const notJson = await call(socketPath, 'POST', '/v1/pods', '{"uid":');
  assert.equal(notJson.status, 400);
  assert.match(notJson.body.error, /not JSON/);
  const badIp = await call(socketPath, 'POST', '/v1/pods', podBody(dir, 'uid-2', { ips: ['10.0.0.1', 'nope'] }));
  assert.deepEqual([badIp.status, badIp.body.field], [400, 'ips[1]']);
  const noNetns = await call(socketPath, 'POST', '/v1/pods', JSON.stringify({ uid: 'u3', name: 'a', namespace: 'default', netns: join(dir, 'missing') }));
  assert.deepEqual([noNetns.status, noNetns.body.field], [400, 'netns']);
  const big = await call(socketPath, 'POST', '/v1/pods', JSON.stringify({ pad: 'x'.repeat(70 * 1024) }));
  assert.equal(big.status, 413);
  const wrongMethod = await call(socketPath, 'PUT', '/v1/pods');
  assert.deepEqual([wrongMethod.status, wrongMethod.headers.allow], [405, 'GET, POST']);
  assert.equal((await call(socketPath, 'GET', '/v2/things')).status, 404);
  assert.deepEqual(capturer.calls, []);
});

test('add then del for one uid run in order; another pod is not held up', async (t) => {
  const dir = tempDir(t);
  const { socketPath, capturer, arrivedReleases } = await startAgent(t, dir);
  const open = capturer.gate('uid-slow');
  const add = call(socketPath, 'POST', '/v1/pods', podBody(dir, 'uid-slow'));
  await waitFor('the slow capture to start', () => capturer.calls.some((c) => c.op === 'capture'));
  const del = call(socketPath, 'DELETE', '/v1/pods/uid-slow');
  await waitFor('the DEL to reach the agent', () => arrivedReleases.includes('uid-slow'));
  // A different pod completes while uid-slow is still capturing.
  assert.deepEqual((await call(socketPath, 'POST', '/v1/pods', podBody(dir, 'uid-fast'))).body, { captured: true });
  assert.ok(!capturer.calls.some((c) => c.op === 'release'), 'DEL must wait for the ADD of the same pod');
  open();
  assert.deepEqual((await add).body, { captured: true });
  assert.deepEqual((await del).body, { released: true, known: true });
  const slow = capturer.calls.filter((c) => (c.op === 'capture' ? c.pod.uid : c.uid) === 'uid-slow').map((c) => c.op);
  assert.deepEqual(slow, ['capture', 'capture-done', 'release']);
  assert.equal(capturer.isCaptured('uid-slow'), false);
});

test('a stale socket file is replaced at start; a non-socket file is refused', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  const stalePath = join(dir, 'run', 'cni.sock');
  // Leave a real socket file behind, as a crashed agent would (closing a net server unlinks it, so copy the inode away).
  const old = createNetServer();
  await new Promise<void>((r) => old.listen(stalePath, () => r()));
  const { renameSync } = await import('node:fs');
  renameSync(stalePath, stalePath + '.keep');
  old.close();
  renameSync(stalePath + '.keep', stalePath);
  assert.ok(lstatSync(stalePath).isSocket());
  const { socketPath, lines } = await startAgent(t, dir);
  assert.deepEqual((await call(socketPath, 'GET', '/v1/pods')).body, { pods: [] });
  assert.ok(lines.some((l) => l.replacedStaleSocket === true));

  const other = join(dir, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'cni.sock'), 'not a socket');
  const { logger } = recordingLogger();
  const s = createEnrollmentServer({ socketPath: join(other, 'cni.sock'), enrollment: createPodEnrollment({ capturer: createFakeCapturer(), registry: createPodRegistry({ path: join(other, 'p.json'), logger }), logger }), logger });
  await assert.rejects(s.listen(), /exists and is not a socket/);
});

test('upgrade: the old agent closing after the new one started leaves the new socket in place', async (t) => {
  const dir = tempDir(t);
  const oldAgent = await startAgent(t, dir);
  const { logger } = recordingLogger();
  const capturer = createFakeCapturer();
  const newServer: EnrollmentServer = createEnrollmentServer({
    socketPath: oldAgent.socketPath,
    enrollment: createPodEnrollment({ capturer, registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger }),
    logger,
  });
  await newServer.listen();
  t.after(() => newServer.close());
  await oldAgent.server.close();
  assert.ok(existsSync(oldAgent.socketPath));
  assert.deepEqual((await call(oldAgent.socketPath, 'POST', '/v1/pods', podBody(dir, 'uid-new'))).body, { captured: true });
  assert.equal(capturer.calls.length, 2, 'the new agent served the request');
  await newServer.close();
  assert.ok(!existsSync(oldAgent.socketPath), 'the last agent removes its socket on close');
});
