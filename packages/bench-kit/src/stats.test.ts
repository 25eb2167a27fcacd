import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, percentile, spread, summarizeUs } from './stats.js';

test('percentiles and medians of known samples', () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(sorted, 50), 50);
  assert.equal(percentile(sorted, 99), 99);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const s = spread([5, 1, 3]);
  assert.deepEqual([s.median, s.min, s.max], [3, 1, 5]);
  const sum = summarizeUs([1000, 2000, 3000]);
  assert.equal(sum.count, 3);
});
