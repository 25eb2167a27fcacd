import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkQueue } from './work-queue.js';
import { waitFor } from '../wait.js';

test('keys are de-duplicated, one run per key at a time, a key added while running runs once more', async () => {
  const runs: string[] = [];
  let active = 0;
  let maxActiveSameKey = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = createWorkQueue<string>({
    process: async (k) => {
      runs.push(k);
      active++;
      maxActiveSameKey = Math.max(maxActiveSameKey, active);
      if (runs.length === 1) await gate;
      active--;
    },
    concurrency: 1,
  });
  q.add('a');
  q.add('a');
  q.add('a'); // while 'a' runs: marks it dirty once
  q.add('b');
  q.add('b');
  release();
  await waitFor(() => runs.length === 3, { timeoutMs: 2000 });
  await q.idle();
  assert.deepEqual(runs.sort(), ['a', 'a', 'b']);
  assert.equal(maxActiveSameKey, 1);
  await q.stop();
});

test('failures retry with backoff; requeueAfterMs schedules the key again', async () => {
  let attempts = 0;
  const errors: number[] = [];
  const q = createWorkQueue<string>({
    process: async () => {
      attempts++;
      if (attempts < 3) throw new Error('not yet');
      if (attempts === 3) return { requeueAfterMs: 20 };
    },
    baseBackoffMs: 10,
    onError: (_k, _e, n) => errors.push(n),
  });
  q.add('x');
  await waitFor(() => attempts >= 4, { timeoutMs: 2000, message: 'retries and the requeue' });
  assert.deepEqual(errors, [1, 2]);
  await q.stop();
});
