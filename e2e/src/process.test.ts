import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedBuffer, runCommand } from './process.js';

test('bounded buffer keeps only the last bytes', () => {
  const b = new BoundedBuffer(5);
  b.push(Buffer.from('abc'));
  b.push(Buffer.from('defg'));
  assert.equal(b.toString(), 'cdefg');
  assert.equal(b.dropped, 2);
  b.push(Buffer.from('0123456789'));
  assert.equal(b.toString(), '56789');
});

test('runCommand returns code and output; check turns failures into errors', async () => {
  const ok = await runCommand(['sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.deepEqual({ code: ok.code, stdout: ok.stdout, stderr: ok.stderr }, { code: 3, stdout: 'out\n', stderr: 'err\n' });
  await assert.rejects(runCommand(['sh', '-c', 'echo nope >&2; exit 1'], { check: true }), /exit 1: nope/);
  assert.equal((await runCommand(['cat'], { input: 'piped' })).stdout, 'piped');
});

test('runCommand kills the whole process group at its timeout', async () => {
  const started = Date.now();
  await assert.rejects(runCommand(['sh', '-c', 'sleep 30 & sleep 30; wait'], { timeoutMs: 200 }), /timed out after 200 ms/);
  assert.ok(Date.now() - started < 5000);
});
