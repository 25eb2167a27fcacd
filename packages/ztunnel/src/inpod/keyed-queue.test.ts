import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKeyedQueue } from './keyed-queue.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

test('tasks for one key run in arrival order, one at a time', async () => {
  const q = createKeyedQueue();
  const order: string[] = [];
  const gate = deferred();
  const a = q.run('pod-1', async () => { order.push('add start'); await gate.promise; order.push('add end'); });
  const d = q.run('pod-1', async () => { order.push('del'); });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['add start']);
  gate.resolve();
  await Promise.all([a, d]);
  assert.deepEqual(order, ['add start', 'add end', 'del']);
  assert.deepEqual(q.pendingKeys(), []);
});

test('a different key is not held up by a blocked one', async () => {
  const q = createKeyedQueue();
  const gate = deferred();
  const blocked = q.run('pod-1', () => gate.promise);
  assert.equal(await q.run('pod-2', async () => 'done'), 'done');
  assert.ok(q.pendingKeys().includes('pod-1'));
  gate.resolve();
  await blocked;
});

test('a failed task does not stop the next one for the same key', async () => {
  const q = createKeyedQueue();
  const failed = q.run('pod-1', async () => { throw new Error('capture failed'); });
  const next = q.run('pod-1', async () => 'released');
  await assert.rejects(failed, /capture failed/);
  assert.equal(await next, 'released');
});
