import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryIndex } from './object-index.js';
import { namespace, pod, service } from './test-fixtures.js';

const names = (objs: { metadata: { name: string } }[]): string[] => objs.map((o) => o.metadata.name).sort();

test('set returns the previous version; delete removes it from every index', () => {
  const index = createMemoryIndex();
  assert.deepEqual(index.set(pod('shop', 'a', { ip: '10.0.1.5', labels: { app: 'cart' } })), {});
  const { previous } = index.set(pod('shop', 'a', { ip: '10.0.1.6', labels: { app: 'web' } }));
  assert.equal(previous?.status?.podIP, '10.0.1.5');
  assert.deepEqual(index.podsByIp('10.0.1.5'), []);
  assert.deepEqual(names(index.podsByIp('10.0.1.6')), ['a']);
  assert.deepEqual(index.selectByLabels('Pod', 'shop', { app: 'cart' }), []);
  assert.deepEqual(names(index.selectByLabels('Pod', 'shop', { app: 'web' })), ['a']);
  assert.equal(index.delete('Pod', 'shop', 'a')?.metadata.name, 'a');
  assert.equal(index.get('Pod', 'shop', 'a'), undefined);
  assert.deepEqual(index.podsByIp('10.0.1.6'), []);
  assert.deepEqual(index.selectByLabels('Pod', 'shop', { app: 'web' }), []);
  assert.equal(index.delete('Pod', 'shop', 'a'), undefined);
});

test('keys are kind + namespace + name: same name in two namespaces and two kinds coexist', () => {
  const index = createMemoryIndex();
  index.set(pod('a', 'x'));
  index.set(pod('b', 'x'));
  index.set(service('a', 'x'));
  index.set(namespace('a'));
  assert.equal(index.list('Pod').length, 2);
  assert.equal(index.list('Pod', 'a').length, 1);
  assert.equal(index.size('Service'), 1);
  assert.equal(index.get('Namespace', '', 'a')?.kind, 'Namespace');
  assert.deepEqual(index.namespacesOf('Pod').sort(), ['a', 'b']);
});

test('selectByLabels needs every selector pair; an empty selector selects nothing', () => {
  const index = createMemoryIndex();
  index.set(pod('shop', 'cart-v1', { labels: { app: 'cart', version: 'v1' } }));
  index.set(pod('shop', 'cart-v2', { labels: { app: 'cart', version: 'v2' } }));
  index.set(pod('other', 'cart-x', { labels: { app: 'cart', version: 'v1' } }));
  assert.deepEqual(names(index.selectByLabels('Pod', 'shop', { app: 'cart' })), ['cart-v1', 'cart-v2']);
  assert.deepEqual(names(index.selectByLabels('Pod', 'shop', { app: 'cart', version: 'v2' })), ['cart-v2']);
  assert.deepEqual(index.selectByLabels('Pod', 'shop', {}), []);
});

test('selectorsMatching finds the Services whose selector the labels satisfy, not selectorless ones', () => {
  const index = createMemoryIndex();
  index.set(service('shop', 'cart', { selector: { app: 'cart' } }));
  index.set(service('shop', 'cart-v1', { selector: { app: 'cart', version: 'v1' } }));
  index.set(service('shop', 'external', {}));
  index.set(service('other', 'cart', { selector: { app: 'cart' } }));
  assert.deepEqual(names(index.selectorsMatching('Service', 'shop', { app: 'cart', version: 'v2' })), ['cart']);
  assert.deepEqual(names(index.selectorsMatching('Service', 'shop', { app: 'cart', version: 'v1', x: 'y' })), ['cart', 'cart-v1']);
});

test('EndpointSlices are indexed by their Service and by the pods they name', () => {
  const index = createMemoryIndex();
  index.set({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'legacy-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'legacy' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.0.1.9'], targetRef: { kind: 'Pod', name: 'db-0', namespace: 'shop' } }],
    ports: [{ name: 'sql', port: 5432, protocol: 'TCP' }],
  });
  assert.deepEqual(names(index.endpointSlicesForService('shop', 'legacy')), ['legacy-abc']);
  assert.deepEqual(names(index.endpointSlicesForPod('shop', 'db-0')), ['legacy-abc']);
  index.delete('EndpointSlice', 'shop', 'legacy-abc');
  assert.deepEqual(index.endpointSlicesForPod('shop', 'db-0'), []);
});

test('objects without kind or name are refused with a message naming the problem', () => {
  const index = createMemoryIndex();
  assert.throws(() => index.set({ metadata: { name: 'x' } }), /has no kind/);
  assert.throws(() => index.set({ kind: 'Pod', metadata: { name: '' } }), /Pod object has no metadata.name/);
});
