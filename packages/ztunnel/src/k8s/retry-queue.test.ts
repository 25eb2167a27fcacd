import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRetryQueue } from './retry-queue.js';
import { waitFor } from '../inpod/test-helpers.js';

const until = async (what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('a key added while waiting is processed once', async () => {
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const q = createRetryQueue({ concurrency: 1, process: async (k) => { seen.push(k); if (k === 'a') await gate; } });
  q.add('a');
  q.add('b');
  q.add('b');
  q.add('b');
  release();
  await q.idle();
  assert.deepEqual(seen, ['a', 'b']);
  await q.stop();
});

test('a key added while it is processed runs once more afterwards, never twice at once', async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const q = createRetryQueue({
    process: async () => {
      active++; maxActive = Math.max(maxActive, active); runs++;
      if (runs === 1) await gate;
      active--;
    },
  });
  q.add('pod');
  await waitFor('first run', () => runs === 1);
  q.add('pod');
  q.add('pod');
  release();
  await waitFor('second run', () => runs === 2);
  await q.idle();
  assert.equal(runs, 2);
  assert.equal(maxActive, 1);
  await q.stop();
});

test('failures are retried with growing delays until the key succeeds, then the count resets', async () => {
  const delays: number[] = [];
  let attempts = 0;
  const q = createRetryQueue({
    baseDelayMs: 5, maxDelayMs: 20,
    process: async () => { attempts++; if (attempts < 5) throw new Error(`attempt ${attempts} failed`); },
    onError: (_k, _e, _n, retryInMs) => delays.push(retryInMs),
  });
  q.add('pod');
  await waitFor('success', () => attempts === 5);
  await q.idle();
  assert.deepEqual(delays, [5, 10, 20, 20]);
  assert.equal(q.failures('pod'), 0);
  assert.equal(q.size, 0);
  await q.stop();
});

test('stop cancels scheduled retries', async () => {
  let attempts = 0;
  const q = createRetryQueue({ baseDelayMs: 30, process: async () => { attempts++; throw new Error('no'); } });
  q.add('pod');
  await waitFor('first attempt', () => attempts === 1);
  assert.equal(q.size, 1, 'the retry is scheduled');
  await q.stop();
  assert.equal(q.size, 0, 'the scheduled retry is gone');
  q.add('pod');
  await q.idle();
  assert.equal(attempts, 1, 'a stopped queue takes no work');
});
