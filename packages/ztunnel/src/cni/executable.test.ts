// The self-contained CNI plugin as a real node gets it: built (esbuild bundle + Node SEA), installed by the agent's
// installer into a CNI bin dir, and executed from there the way a container runtime does, with only the CNI
// variables in its environment (no PATH, so no node to find) and the working directory elsewhere, against a real
// enrollment server on a unix socket. No root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { fakeNetns, tempDir } from '../inpod/test-helpers.js';
import { cniEnv, netconf, PREV_1_0, runPluginFile, startAgent } from './cni-test-helpers.js';
import { buildCniExecutable } from './executable.js';
import { createCniInstaller } from './install.js';

test('the self-contained plugin executable, installed by the installer, captures a pod with no node on PATH', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t, 'ambit-cni-exe-');
  const built = await buildCniExecutable(join(dir, 'ambit-cni-built'));
  t.diagnostic(`built ${(built.bytes / 1e6).toFixed(1)} MB, plugin script ${(built.scriptBytes / 1e3).toFixed(1)} kB`);
  assert.ok(built.scriptBytes > 1000 && built.scriptBytes < 1_000_000, `bundle of ${built.scriptBytes} bytes`);

  const confDir = join(dir, 'net.d');
  const binDir = join(dir, 'bin');
  mkdirSync(confDir);
  writeFileSync(join(confDir, '10-k8s.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'bridge' }] }));
  const installer = createCniInstaller({
    confDir, binDir, pluginExecutable: built.path, logger: pino({ level: 'silent' }),
    entry: { type: 'ambit-cni', agentSocket: join(dir, 'unused.sock'), logLevel: 'info', excludeNamespaces: [] },
  });
  const first = await installer.reconcile();
  assert.equal(first.state === 'installed' && first.wroteBinary, true, JSON.stringify(first));
  const installed = join(binDir, 'ambit-cni');
  assert.ok(readFileSync(installed).equals(readFileSync(built.path)), 'the installed file is the built executable');
  assert.equal(statSync(installed).mode & 0o777, 0o755);
  const again = await installer.reconcile();
  assert.equal(again.state === 'installed' && again.wroteBinary, false, 'in place: not rewritten');
  writeFileSync(installed, '#!/bin/sh\nexit 1\n');
  const repaired = await installer.reconcile();
  assert.equal(repaired.state === 'installed' && repaired.wroteBinary, true, 'a replaced file is put back');
  assert.ok(readFileSync(installed).equals(readFileSync(built.path)));

  const version = await runPluginFile(installed, { CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' }), '/');
  assert.equal(version.code, 0, version.stderr);
  assert.deepEqual(version.json, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  assert.equal(version.stderr, '', 'no SEA warning or other noise on stderr');

  const { socketPath, capturer } = await startAgent(t);
  const netns = fakeNetns(dir, 'sleep-1');
  const add = await runPluginFile(installed, cniEnv('ADD', netns), netconf(socketPath), '/');
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(add.json, PREV_1_0);
  assert.ok(capturer.isCaptured('uid-sleep-1'));
  const del = await runPluginFile(installed, cniEnv('DEL', netns), netconf(socketPath), '/');
  assert.equal(del.code, 0, del.stderr);
  assert.ok(!capturer.isCaptured('uid-sleep-1'));
});
