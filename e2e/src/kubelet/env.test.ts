import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { envSources, expandCommand, expandVars, parseQuantity, resolveEnv, type EnvContext } from './env.js';

const pod: V1Pod = {
  metadata: { name: 'web-1', namespace: 'shop', uid: 'u-1', labels: { app: 'web' } },
  spec: { nodeName: 'node-2', serviceAccountName: 'web-sa', containers: [] },
};
const ctx = (sources: EnvContext['sources'] = new Map()): EnvContext => ({ pod, podIP: '10.0.2.5', podIPs: ['10.0.2.5'], hostIP: '10.255.0.2', nodeAllocatable: { cpu: '4', memory: '8Gi' }, sources });

test('downward API fields resolve from the pod and its runtime addresses', () => {
  const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const env = resolveEnv({ name: 'c', env: [
    field('N', 'metadata.name'), field('NS', 'metadata.namespace'), field('UID', 'metadata.uid'), field('NODE', 'spec.nodeName'),
    field('SA', 'spec.serviceAccountName'), field('IP', 'status.podIP'), field('HOST', 'status.hostIP'), field('APP', "metadata.labels['app']"),
  ] }, ctx());
  assert.deepEqual(env, { N: 'web-1', NS: 'shop', UID: 'u-1', NODE: 'node-2', SA: 'web-sa', IP: '10.0.2.5', HOST: '10.255.0.2', APP: 'web' });
});

test('$(VAR) expands from earlier entries, $$ escapes, unknown references stay', () => {
  assert.equal(expandVars('a-$(X)-$$(X)-$(NOPE)', (n) => (n === 'X' ? 'x' : undefined)), 'a-x-$(X)-$(NOPE)');
  const env = resolveEnv({ name: 'c', env: [{ name: 'A', value: 'one' }, { name: 'B', value: '$(A)-two' }, { name: 'C', value: '$(D)' }, { name: 'D', value: 'late' }] }, ctx());
  assert.deepEqual(env, { A: 'one', B: 'one-two', C: '$(D)', D: 'late' });
  assert.deepEqual(expandCommand(['echo', '$(A)'], env), ['echo', 'one']);
});

test('resourceFieldRef rounds up with the divisor and defaults limits to node allocatable', () => {
  const env = resolveEnv({ name: 'c', resources: { limits: { memory: '256Mi', cpu: '500m' } }, env: [
    { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
    { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
  ] }, ctx());
  assert.deepEqual(env, { MEM: '256', CPU: '1' });
  const dflt = resolveEnv({ name: 'c', env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }] }, ctx());
  assert.equal(dflt.CPU, '4');
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
});

test('ConfigMap and Secret refs: envFrom with prefix, keys, optional, and a clear error when missing', () => {
  const c = { name: 'c', envFrom: [{ prefix: 'CM_', configMapRef: { name: 'cfg' } }], env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'sec', key: 'pw' } } }, { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } } }] };
  assert.deepEqual(envSources(c).map((s) => `${s.kind}/${s.name}`), ['ConfigMap/cfg', 'Secret/sec', 'ConfigMap/gone']);
  const env = resolveEnv(c, ctx(new Map<string, Record<string, string>>([['ConfigMap/cfg', { a: '1', 'bad key': 'x' }], ['Secret/sec', { pw: 'hunter2' }]])));
  assert.deepEqual(env, { CM_a: '1', PW: 'hunter2' });
  assert.throws(() => resolveEnv(c, ctx(new Map([['ConfigMap/cfg', {}]]))), /secret "sec" not found/);
});
