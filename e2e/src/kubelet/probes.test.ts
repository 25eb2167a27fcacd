import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialProbeState, nextProbeDelay, probeTiming, recordProbe, resolvePort } from './probes.js';

test('probe defaults follow Kubernetes; liveness success threshold is forced to 1', () => {
  assert.deepEqual(probeTiming({}, 'readiness'), { initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1000, successThreshold: 1, failureThreshold: 3 });
  assert.equal(probeTiming({ successThreshold: 3 }, 'liveness').successThreshold, 1);
  assert.equal(probeTiming({ successThreshold: 3 }, 'readiness').successThreshold, 3);
});

test('readiness starts not ready, needs successThreshold passes, drops after failureThreshold failures', () => {
  const t = probeTiming({ successThreshold: 2, failureThreshold: 2 }, 'readiness');
  let s = initialProbeState('readiness');
  assert.equal(s.result, 'failure');
  let r = recordProbe(s, t, true, '', 1);
  assert.equal(r.changed, false);
  r = recordProbe(r.state, t, true, '', 2);
  assert.equal(r.state.result, 'success');
  assert.equal(r.changed, true);
  r = recordProbe(r.state, t, false, 'refused', 3);
  assert.equal(r.state.result, 'success');
  r = recordProbe(r.state, t, false, 'refused', 4);
  assert.deepEqual([r.state.result, r.changed, r.state.lastMessage], ['failure', true, 'refused']);
  s = initialProbeState('liveness');
  assert.equal(s.result, 'success');
});

test('the first run waits initialDelay after the start, later ones a period after the last', () => {
  const t = probeTiming({ initialDelaySeconds: 5, periodSeconds: 2 }, 'liveness');
  assert.equal(nextProbeDelay(t, 1000, undefined, 1000), 5000);
  assert.equal(nextProbeDelay(t, 1000, undefined, 7000), 0);
  assert.equal(nextProbeDelay(t, 1000, 7000, 8000), 1000);
});

test('named ports resolve through the container ports', () => {
  const c = { name: 'c', ports: [{ name: 'http', containerPort: 8080 }] };
  assert.equal(resolvePort('http', c), 8080);
  assert.equal(resolvePort(9090, c), 9090);
  assert.equal(resolvePort('9091', c), 9091);
  assert.throws(() => resolvePort('grpc', c), /no container port/);
});
