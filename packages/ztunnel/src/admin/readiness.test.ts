import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadiness } from './readiness.js';

test('ready with no tasks; pending lists registered tasks until each is done', async () => {
  const r = createReadiness();
  assert.equal(r.isReady(), true);
  await r.whenReady();
  const xds = r.register('xds');
  const zds = r.register('zds');
  assert.deepEqual(r.pending(), ['xds', 'zds']);
  const ready = r.whenReady();
  xds();
  xds();
  assert.deepEqual(r.pending(), ['zds']);
  zds();
  await ready;
  assert.equal(r.isReady(), true);
});

test('two tasks with the same name are both waited for', () => {
  const r = createReadiness();
  const a = r.register('cert');
  const b = r.register('cert');
  assert.deepEqual(r.pending(), ['cert']);
  a();
  assert.deepEqual(r.pending(), ['cert']);
  b();
  assert.deepEqual(r.pending(), []);
});
