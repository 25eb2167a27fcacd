import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createWorkQueue } from '../src/index.js';

const logger = pino({ level: 'silent' });

test('keys added in one burst are processed once, as one batch', async () => {
  const batches: string[][] = [];
  const q = createWorkQueue<string>({ process: (keys) => void batches.push(keys), logger });
  for (let i = 0; i < 3; i++) for (const k of ['Pod/default/a', 'Pod/default/b', 'Service/default/s']) q.add(k);
  await q.drained();
  assert.deepEqual(batches, [['Pod/default/a', 'Pod/default/b', 'Service/default/s']]);
  assert.equal(q.stats().processed, 3);
  await q.stop();
});

test('a key added while its batch runs is processed again afterwards; one worker at a time', async () => {
  const batches: string[][] = [];
  let running = 0;
  let maxRunning = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = createWorkQueue<string>({
    logger,
    async process(keys) {
      running++;
      maxRunning = Math.max(maxRunning, running);
      batches.push(keys);
      if (batches.length === 1) await gate;
      running--;
    },
  });
  q.add('a');
  await new Promise((r) => setImmediate(r));
  q.add('a');
  q.add('b');
  q.add('a');
  release();
  await q.drained();
  assert.deepEqual(batches, [['a'], ['a', 'b']]);
  assert.equal(maxRunning, 1);
  await q.stop();
});

test('a failed batch is retried with backoff, and given up after maxAttempts', async () => {
  const seen: string[] = [];
  const q = createWorkQueue<string>({
    logger,
    retryDelayMs: 5,
    maxAttempts: 3,
    process(keys) {
      seen.push(...keys);
      if (keys.includes('bad')) throw new Error('boom');
    },
  });
  q.add('bad');
  await q.drained();
  assert.deepEqual(seen, ['bad', 'bad', 'bad']);
  assert.equal(q.stats().failures, 3);
  q.add('good');
  await q.drained();
  assert.deepEqual(seen.slice(3), ['good']);
  await q.stop();
});

test('maxBatch splits a large burst', async () => {
  const sizes: number[] = [];
  const q = createWorkQueue<number>({ process: (keys) => void sizes.push(keys.length), logger, maxBatch: 4 });
  for (let i = 0; i < 10; i++) q.add(i);
  await q.drained();
  assert.deepEqual(sizes, [4, 4, 2]);
  await q.stop();
});
