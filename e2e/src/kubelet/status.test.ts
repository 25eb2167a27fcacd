import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { buildPodStatus, computePhase, statusKey, type ContainerSnapshot, type PodSnapshot } from './status.js';

const running = (name: string, ready: boolean): ContainerSnapshot => ({ name, image: 'i', restartCount: 0, ready, started: true, state: { running: { startedAt: new Date(0) } } });
const term = (name: string, exitCode: number): ContainerSnapshot => ({ name, image: 'i', restartCount: 0, ready: false, started: false, state: { terminated: { exitCode, startedAt: new Date(0), finishedAt: new Date(0) } } });
const waitingC = (name: string, reason: string, restarted = false): ContainerSnapshot => ({ name, image: 'i', restartCount: restarted ? 1 : 0, ready: false, started: false, state: { waiting: { reason } }, ...(restarted ? { lastState: { terminated: { exitCode: 1 } } } : {}) });

test('phase from container states and restart policy', () => {
  assert.equal(computePhase('Always', [waitingC('a', 'ErrImagePull')]), 'Pending');
  assert.equal(computePhase('Always', [running('a', false), waitingC('b', 'CrashLoopBackOff', true)]), 'Running');
  assert.equal(computePhase('Never', [term('a', 0), term('b', 0)]), 'Succeeded');
  assert.equal(computePhase('Never', [term('a', 0), term('b', 2)]), 'Failed');
  assert.equal(computePhase('OnFailure', [term('a', 0)]), 'Succeeded');
});

const pod: V1Pod = { metadata: { name: 'p', namespace: 'd', uid: 'u' }, spec: { containers: [{ name: 'a' }, { name: 'b' }] } };
const snap = (containers: ContainerSnapshot[]): PodSnapshot => ({ sandboxReady: true, podIP: '10.0.1.2', podIPs: ['10.0.1.2'], hostIP: '10.255.0.1', startTime: new Date(1000), containers });

test('Ready and ContainersReady follow every container, in spec order, with podIP and hostIP', () => {
  const s = buildPodStatus(pod, snap([running('b', true), running('a', false)]), new Date(5000));
  assert.deepEqual(s.containerStatuses?.map((c) => c.name), ['a', 'b']);
  const cond = Object.fromEntries((s.conditions ?? []).map((c) => [c.type, c.status]));
  assert.deepEqual(cond, { PodReadyToStartContainers: 'True', Initialized: 'True', Ready: 'False', ContainersReady: 'False', PodScheduled: 'True' });
  assert.equal(s.conditions?.find((c) => c.type === 'Ready')?.message, 'containers with unready status: [a]');
  assert.deepEqual([s.podIP, s.hostIP, s.podIPs], ['10.0.1.2', '10.255.0.1', [{ ip: '10.0.1.2' }]]);
  const ready = buildPodStatus(pod, snap([running('a', true), running('b', true)]), new Date(5000));
  assert.equal(ready.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
});

test('an unchanged pod builds an identical status (transition times kept), so nothing is written', () => {
  const first = buildPodStatus(pod, snap([running('a', true), running('b', true)]), new Date(5000));
  const stored: V1Pod = { ...pod, status: JSON.parse(JSON.stringify(first)) };
  const again = buildPodStatus(stored, snap([running('a', true), running('b', true)]), new Date(99_000));
  assert.equal(statusKey(again), statusKey(stored.status));
  const changed = buildPodStatus(stored, snap([running('a', false), running('b', true)]), new Date(99_000));
  assert.notEqual(statusKey(changed), statusKey(stored.status));
  assert.equal(new Date(changed.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime!).getTime(), 99_000);
  assert.equal(new Date(changed.conditions!.find((c) => c.type === 'PodScheduled')!.lastTransitionTime!).getTime(), 5000);
});
