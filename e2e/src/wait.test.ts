import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollSync, waitFor, WaitTimeoutError } from './wait.js';

test('waitFor returns the first truthy value', async () => {
  let n = 0;
  const v = await waitFor(() => (++n >= 3 ? `done after ${n}` : undefined), { intervalMs: 1, timeoutMs: 1000 });
  assert.equal(v, 'done after 3');
});

test('waitFor times out with the message and the last error', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('port closed');
      },
      { timeoutMs: 50, intervalMs: 5, message: 'server listening' },
    ),
    (err: unknown) => {
      assert.ok(err instanceof WaitTimeoutError);
      assert.match(err.message, /timed out after 50 ms waiting for server listening \(last error: port closed\)/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1000);
});

test('waitFor accepts async conditions', async () => {
  let n = 0;
  assert.equal(await waitFor(async () => ++n === 2, { intervalMs: 1 }), true);
});

test('pollSync returns false at its deadline instead of throwing', () => {
  const started = Date.now();
  assert.equal(pollSync(() => false, { timeoutMs: 30, intervalMs: 5 }), false);
  assert.ok(Date.now() - started >= 25);
  let n = 0;
  assert.equal(pollSync(() => ++n > 2, { timeoutMs: 1000, intervalMs: 1 }), true);
});
