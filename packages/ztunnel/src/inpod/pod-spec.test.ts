import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnrollmentError, validatePodSpec } from './pod-spec.js';

const good = { uid: '6f1c9a52-0c4e-4a8e-9d0a-3b2b1f0e2a11', name: 'sleep-1', namespace: 'default', netns: '/var/run/netns/cni-1234' };

function fieldOf(input: unknown): string | undefined {
  try {
    validatePodSpec(input);
  } catch (err) {
    assert.ok(err instanceof EnrollmentError);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'AMB_ERR_ENROLLMENT');
    return err.field;
  }
  assert.fail('expected a validation error');
}

test('a minimal add request is accepted and unknown keys are dropped', () => {
  assert.deepEqual(validatePodSpec({ ...good, extra: 1 }), good);
});

test('optional fields are kept when valid', () => {
  const full = { ...good, serviceAccount: 'sleep', ips: ['10.0.1.5', 'fd00::5'], containerId: 'abc', labels: { app: 'sleep' }, annotations: { a: 'b' } };
  assert.deepEqual(validatePodSpec(full), full);
  assert.deepEqual(validatePodSpec({ ...good, netns: '/proc/4242/ns/net' }).netns, '/proc/4242/ns/net');
});

test('each invalid field is named in the error', () => {
  assert.equal(fieldOf({ ...good, uid: undefined }), 'uid');
  assert.equal(fieldOf({ ...good, uid: 'a b' }), 'uid');
  assert.equal(fieldOf({ ...good, name: 'Sleep_1' }), 'name');
  assert.equal(fieldOf({ ...good, namespace: 'a.b' }), 'namespace');
  assert.equal(fieldOf({ ...good, namespace: 7 }), 'namespace');
  assert.equal(fieldOf({ ...good, netns: 'relative/path' }), 'netns');
  assert.equal(fieldOf({ ...good, netns: '/var/run/netns/../../etc/shadow' }), 'netns');
  assert.equal(fieldOf({ ...good, ips: '10.0.0.1' }), 'ips');
  assert.equal(fieldOf({ ...good, ips: ['10.0.0.1', '10.0.0.300'] }), 'ips[1]');
  assert.equal(fieldOf({ ...good, labels: { app: 3 } }), 'labels["app"]');
  assert.equal(fieldOf({ ...good, serviceAccount: {} }), 'serviceAccount');
  assert.equal(fieldOf([good]), undefined);
});

test('the message says which field and why', () => {
  assert.throws(() => validatePodSpec({ ...good, ips: ['x'] }), /invalid pod: ips\[0\] "x" is not an IP address/);
  assert.throws(() => validatePodSpec({ ...good, netns: undefined }), /invalid pod: netns is required/);
});
