import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createPodEnrollment, type PodEnrollment } from '../inpod/pod-enrollment.js';
import { createPodRegistry } from '../inpod/pod-registry.js';
import { createFakeCapturer, fakeNetns, recordingLogger, tempDir, waitFor, type FakeCapturer, type LogLine } from '../inpod/test-helpers.js';
import { EnrollmentError } from '../inpod/pod-spec.js';
import { createAmbientEnrollment, type AmbientEnrollment } from './ambient-enrollment.js';
import { FakeApiServer } from './test-helpers.js';

const REDIRECTION = 'ambient.istio.io/redirection';
const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

interface Harness {
  api: FakeApiServer;
  capturer: FakeCapturer;
  enrollment: PodEnrollment;
  ambient: AmbientEnrollment;
  /** IP -> netns path the fake finder answers with; finds counts its calls. */
  netnsByIp: Map<string, string>;
  finds: string[][];
  dir: string;
  lines: LogLine[];
  settle(): Promise<void>;
}

async function harness(t: TestContext, setup: (api: FakeApiServer) => void): Promise<Harness> {
  const dir = tempDir(t, 'ambit-k8s-');
  const api = new FakeApiServer();
  setup(api);
  const { logger, lines } = recordingLogger();
  const capturer = createFakeCapturer();
  const netnsByIp = new Map<string, string>();
  const finds: string[][] = [];
  const ambient = createAmbientEnrollment({
    nodeName: 'node-1', api, logger,
    finder: { find: async (ips: readonly string[]) => { finds.push([...ips]); return ips.map((ip) => netnsByIp.get(ip)).find(Boolean); } },
    retryBackoff: { baseMs: 5, maxMs: 20 },
  });
  const enrollment = createPodEnrollment({ capturer: ambient.wrapCapturer(capturer), registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  t.after(() => ambient.stop());
  await ambient.start();
  await enrollment.restore();
  ambient.reconcileAll(enrollment);
  const h: Harness = {
    api, capturer, enrollment, ambient, netnsByIp, finds, dir, lines,
    async settle() {
      // The patch of an annotation comes back as a watch event, which queues the pod again: settle until quiet.
      for (let i = 0; i < 10; i++) {
        await ambient.idle();
        await new Promise((r) => setImmediate(r));
      }
      await ambient.idle();
    },
  };
  return h;
}


test('labelling the namespace captures a running pod and annotates it; unlabelling releases it and removes the annotation', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps');
    api.pod({ uid: 'u-echo', name: 'echo', namespace: 'apps', ip: '10.0.1.5', serviceAccount: 'echo-sa' });
  });
  h.netnsByIp.set('10.0.1.5', fakeNetns(h.dir, 'echo'));
  await h.settle();
  assert.equal(h.capturer.captured.size, 0, 'not ambient yet');
  assert.equal(h.api.patches.length, 0);

  h.api.namespace('apps', AMBIENT);
  await h.settle();
  assert.ok(h.capturer.isCaptured('u-echo'));
  const capture = h.capturer.calls.find((c) => c.op === 'capture');
  assert.deepEqual(capture?.op === 'capture' && { ...capture.pod }, { uid: 'u-echo', name: 'echo', namespace: 'apps', netns: h.netnsByIp.get('10.0.1.5'), ips: ['10.0.1.5'], serviceAccount: 'echo-sa' });
  assert.equal(h.api.annotationsOf('u-echo')[REDIRECTION], 'enabled');
  assert.equal(h.enrollment.status('u-echo')?.outcome, 'captured');

  h.api.namespace('apps', {});
  await h.settle();
  assert.equal(h.capturer.isCaptured('u-echo'), false);
  assert.equal(h.api.annotationsOf('u-echo')[REDIRECTION], undefined);
  assert.equal(h.enrollment.status('u-echo')?.outcome, 'declined', 'kept as declined, with its netns');

  h.api.namespace('apps', AMBIENT);
  await h.settle();
  assert.ok(h.capturer.isCaptured('u-echo'));
  assert.equal(h.finds.length, 1, 'the second capture used the recorded netns: no second scan');
  assert.deepEqual(h.api.patches.map((p) => p.annotations[REDIRECTION]), ['enabled', null, 'enabled']);
});

test('pod label none releases a captured pod; a pod label ambient captures it in an unlabelled namespace', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps', AMBIENT);
    api.namespace('solo');
    api.pod({ uid: 'u-a', name: 'a', namespace: 'apps', ip: '10.0.1.6' });
    api.pod({ uid: 'u-b', name: 'b', namespace: 'solo', ip: '10.0.1.7' });
  });
  h.netnsByIp.set('10.0.1.6', fakeNetns(h.dir, 'a'));
  h.netnsByIp.set('10.0.1.7', fakeNetns(h.dir, 'b'));
  await waitFor('pod a captured', () => h.capturer.isCaptured('u-a'));
  await h.settle();
  h.api.pod({ uid: 'u-a', name: 'a', namespace: 'apps', ip: '10.0.1.6', labels: { 'istio.io/dataplane-mode': 'none' } });
  await h.settle();
  assert.equal(h.capturer.isCaptured('u-a'), false);
  assert.equal(h.api.annotationsOf('u-a')[REDIRECTION], undefined);
  assert.equal(h.capturer.isCaptured('u-b'), false);
  h.api.pod({ uid: 'u-b', name: 'b', namespace: 'solo', ip: '10.0.1.7', labels: AMBIENT });
  await h.settle();
  assert.ok(h.capturer.isCaptured('u-b'));
  assert.equal(h.api.annotationsOf('u-b')[REDIRECTION], 'enabled');
});

test('hostNetwork pods, pods on other nodes and pods without an IP are left alone', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps', AMBIENT);
    api.pod({ uid: 'u-host', name: 'host', namespace: 'apps', ip: '10.255.0.1', hostNetwork: true });
    api.pod({ uid: 'u-far', name: 'far', namespace: 'apps', ip: '10.0.2.2', nodeName: 'node-2' });
    api.pod({ uid: 'u-new', name: 'new', namespace: 'apps' });
  });
  await h.settle();
  assert.equal(h.capturer.calls.length, 0);
  assert.equal(h.finds.length, 0);
  assert.equal(h.api.patches.length, 0);
});

test('a deleted pod is released; a finished pod is released', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps', AMBIENT);
    api.pod({ uid: 'u-1', name: 'one', namespace: 'apps', ip: '10.0.1.8' });
    api.pod({ uid: 'u-2', name: 'two', namespace: 'apps', ip: '10.0.1.9' });
  });
  h.netnsByIp.set('10.0.1.8', fakeNetns(h.dir, 'one'));
  h.netnsByIp.set('10.0.1.9', fakeNetns(h.dir, 'two'));
  await waitFor('both captured', () => h.capturer.captured.size === 2);
  await h.settle();
  h.api.deletePod('u-1');
  h.api.pod({ uid: 'u-2', name: 'two', namespace: 'apps', ip: '10.0.1.9', phase: 'Succeeded' });
  await h.settle();
  assert.equal(h.capturer.captured.size, 0);
  assert.equal(h.enrollment.status('u-1'), undefined);
  assert.equal(h.enrollment.status('u-2'), undefined);
});

test('a failed capture is logged with the pod and the reason and retried until it works', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps');
    api.pod({ uid: 'u-r', name: 'retry', namespace: 'apps', ip: '10.0.1.10' });
  });
  h.netnsByIp.set('10.0.1.10', fakeNetns(h.dir, 'retry'));
  h.capturer.mode = 'throw';
  h.api.failPatches = 2;
  h.api.namespace('apps', AMBIENT);
  await waitFor('two failures logged', () => h.lines.filter((l) => l.component === 'ambient-enrollment' && l.level === 40 && l.pod === 'apps/retry').length >= 2);
  const warn = h.lines.find((l) => l.component === 'ambient-enrollment' && l.level === 40 && l.pod === 'apps/retry')!;
  assert.match(warn.msg, /reconcile of pod apps\/retry failed: .*iptables-restore failed/);
  h.capturer.mode = 'capture';
  await waitFor('captured and annotated after retries', () => h.capturer.isCaptured('u-r') && h.api.annotationsOf('u-r')[REDIRECTION] === 'enabled');
});

test('a pod whose netns cannot be found is retried, not dropped', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps', AMBIENT);
    api.pod({ uid: 'u-n', name: 'nons', namespace: 'apps', ip: '10.0.1.11' });
  });
  await waitFor('two scans', () => h.finds.length >= 2);
  assert.ok(h.lines.some((l) => l.level === 40 && /no network namespace on this node holds the pod's IP 10\.0\.1\.11/.test(l.msg)));
  h.netnsByIp.set('10.0.1.11', fakeNetns(h.dir, 'nons'));
  await waitFor('captured', () => h.capturer.isCaptured('u-n'));
});

test('CNI ADD is decided from the labels, takes the service account from the Pod, and the pod gets annotated', async (t) => {
  const h = await harness(t, (api) => {
    api.namespace('apps', AMBIENT);
    api.namespace('legacy');
    api.pod({ uid: 'u-new', name: 'fresh', namespace: 'apps', serviceAccount: 'fresh-sa' });
    api.pod({ uid: 'u-old', name: 'plain', namespace: 'legacy' });
  });
  const declined = await h.enrollment.enroll({ uid: 'u-old', name: 'plain', namespace: 'legacy', netns: fakeNetns(h.dir, 'plain'), ips: ['10.0.1.20'] });
  assert.deepEqual(declined, { captured: false, reason: 'neither namespace legacy nor the pod is labelled istio.io/dataplane-mode=ambient' });
  const captured = await h.enrollment.enroll({ uid: 'u-new', name: 'fresh', namespace: 'apps', netns: fakeNetns(h.dir, 'fresh'), ips: ['10.0.1.21'] });
  assert.deepEqual(captured, { captured: true });
  const call = h.capturer.calls.find((c) => c.op === 'capture' && c.pod.uid === 'u-new');
  assert.equal(call?.op === 'capture' && call.pod.serviceAccount, 'fresh-sa');
  await h.settle();
  assert.equal(h.api.annotationsOf('u-new')[REDIRECTION], 'enabled');
  assert.equal(h.api.annotationsOf('u-old')[REDIRECTION], undefined);
  assert.equal(h.finds.length, 0, 'the CNI gave the netns: no scan');
});

test('CNI ADD for a pod the API server does not know fails with 503 (the kubelet retries)', async (t) => {
  const h = await harness(t, (api) => { api.namespace('apps', AMBIENT); });
  await assert.rejects(h.enrollment.enroll({ uid: 'u-x', name: 'ghost', namespace: 'apps', netns: fakeNetns(h.dir, 'ghost') }), (err: unknown) => {
    assert.ok(err instanceof EnrollmentError);
    assert.equal(err.status, 503);
    assert.match(err.message, /pod apps\/ghost is not known to the API server yet/);
    return true;
  });
  assert.equal(h.api.getPodCalls, 1, 'a cache miss asks the API server');
});

test('a pod the registry knows but the API server does not is released at start-up', async (t) => {
  const dir = tempDir(t, 'ambit-k8s-');
  const { logger } = recordingLogger();
  // A previous agent captured "gone" and "kept"; "gone" was deleted while no agent ran.
  const prev = createPodEnrollment({ capturer: createFakeCapturer(), registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  await prev.enroll({ uid: 'u-gone', name: 'gone', namespace: 'apps', netns: fakeNetns(dir, 'gone') });
  await prev.enroll({ uid: 'u-kept', name: 'kept', namespace: 'apps', netns: fakeNetns(dir, 'kept') });
  const api = new FakeApiServer();
  api.namespace('apps', AMBIENT);
  api.pod({ uid: 'u-kept', name: 'kept', namespace: 'apps', ip: '10.0.1.30' });
  const capturer = createFakeCapturer();
  const ambient = createAmbientEnrollment({ nodeName: 'node-1', api, logger, finder: { find: async () => undefined } });
  t.after(() => ambient.stop());
  const enrollment = createPodEnrollment({ capturer: ambient.wrapCapturer(capturer), registry: createPodRegistry({ path: join(dir, 'pods.json'), logger }), logger });
  await ambient.start();
  const restored = await enrollment.restore();
  assert.deepEqual(restored.captured.sort(), ['u-kept']);
  assert.deepEqual(restored.failed.map((f) => f.uid), ['u-gone'], 'the CNI path cannot find the pod in the API');
  ambient.reconcileAll(enrollment);
  await waitFor('gone released', () => enrollment.status('u-gone') === undefined, 10_000);
  await waitFor('kept annotated', () => api.annotationsOf('u-kept')[REDIRECTION] === 'enabled', 10_000);
  assert.ok(capturer.isCaptured('u-kept'));
});
