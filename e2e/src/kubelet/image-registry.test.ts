import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandLine, createImageRegistry, normalizeImage } from './image-registry.js';

test('image references fold tags, digests and Docker Hub spellings', () => {
  assert.equal(normalizeImage('docker.io/library/busybox:1.36'), 'busybox');
  assert.equal(normalizeImage('curlimages/curl:8.1.0'), 'curlimages/curl');
  assert.equal(normalizeImage(`ambit/echo@sha256:${'a'.repeat(64)}`), 'ambit/echo');
  assert.equal(normalizeImage('localhost:5000/ambit/echo:v1'), 'localhost:5000/ambit/echo');
});

test('command and args override entrypoint and cmd the Kubernetes way', () => {
  const e = { entrypoint: ['/bin/app'], cmd: ['--default'] };
  assert.deepEqual(commandLine(e, undefined, undefined), ['/bin/app', '--default']);
  assert.deepEqual(commandLine(e, undefined, ['--x']), ['/bin/app', '--x']);
  assert.deepEqual(commandLine(e, ['/bin/other'], undefined), ['/bin/other']);
  assert.deepEqual(commandLine(e, ['/bin/other'], ['-v']), ['/bin/other', '-v']);
});

test('unknown and invalid images resolve to ErrImagePull / InvalidImageName; tests can register images', () => {
  const reg = createImageRegistry({ 'test/sleeper': { entrypoint: ['sleep'], cmd: ['60'] } });
  const unknown = reg.resolve({ image: 'quay.io/nobody/nothing:1' });
  assert.equal(unknown.ok, false);
  assert.equal(!unknown.ok && unknown.reason, 'ErrImagePull');
  assert.match(!unknown.ok ? unknown.message : '', /no image quay\.io\/nobody\/nothing/);
  const invalid = reg.resolve({ image: 'UPPER/Case' });
  assert.equal(!invalid.ok && invalid.reason, 'InvalidImageName');
  const ok = reg.resolve({ image: 'docker.io/test/sleeper:latest', args: ['5'] });
  assert.deepEqual(ok.ok && ok.argv, ['sleep', '5']);
  assert.deepEqual(reg.resolve({ image: 'registry.k8s.io/pause:3.10' }).ok && (reg.resolve({ image: 'registry.k8s.io/pause:3.10' }) as { argv: string[] }).argv, ['sleep', 'infinity']);
});
