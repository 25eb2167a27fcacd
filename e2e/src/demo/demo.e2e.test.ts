// The whole embedded demo (npm run demo) as a test: every step's check must pass, and the teardown must leave no
// namespaces or processes. Bounded: the loads are fixed request counts at a fixed rate (about 1,300 requests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createConsole } from './console.js';
import { runEmbeddedDemo } from './story.js';
import { listNetns } from '../netns.js';
import { requireRoot } from '../root.js';

test('embedded demo: bookinfo enrolled, mTLS proven, waypoint routes 90/10 then v3, fault and deny path checked, clean teardown', { timeout: 180_000 }, async () => {
  requireRoot();
  let output = '';
  const sink = new Writable({ write(chunk, _enc, done) { output += String(chunk); done(); } });
  const ui = createConsole(sink, { color: false });
  const result = await runEmbeddedDemo(ui, {});
  process.stdout.write(output.replace(/^/gm, '# '));
  assert.deepEqual(result.failures, [], `failed checks:\n${result.failures.join('\n')}`);
  const split = result.measurements.split as { v1: number; v2: number; v3: number; v2Share: number };
  assert.equal(split.v3, 0);
  assert.ok(split.v1 + split.v2 >= 200, `only ${split.v1 + split.v2} requests in the split step`);
  assert.ok(split.v2Share >= 0.04 && split.v2Share <= 0.16, `v2 share ${split.v2Share}`);
  assert.match(output, /\[\d+\] Clean up/);
  const left = listNetns().filter((n) => n === result.prefix || n.startsWith(`${result.prefix}-`));
  assert.deepEqual(left, [], 'the demo left network namespaces');
});
