import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createWorkQueue } from './work-queue.js';

test('keys are de-duplicated and come out in due order', async () => {
  const q = createWorkQueue();
  q.add('b', 20);
  q.add('a');
  q.add('a');
  q.add('b', 0); // the earlier due time wins
  assert.equal(q.size, 2);
  const first = await q.next();
  const second = await q.next();
  assert.deepEqual([first, second].sort(), ['a', 'b']);
  q.stop();
});

test('a key added while it is processed runs again after done()', async () => {
  const q = createWorkQueue();
  q.add('gw');
  const k = await q.next();
  assert.equal(k, 'gw');
  q.add('gw');
  assert.equal(q.size, 1);
  let got: string | undefined;
  const waiting = q.next().then((x) => (got = x));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, undefined, 'must not hand out a key still being processed');
  q.done('gw');
  await waiting;
  assert.equal(got, 'gw');
  q.done('gw');
  q.stop();
});

test('a delayed key waits for its time; stop() releases a waiting consumer', async () => {
  let now = 1000;
  const q = createWorkQueue(() => now);
  q.add('later', 50);
  const pending = q.next();
  now += 60;
  assert.equal(await pending, 'later');
  const idle = q.next();
  q.stop();
  assert.equal(await idle, undefined);
  q.add('ignored');
  assert.equal(q.size, 0);
});
