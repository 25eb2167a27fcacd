// The installer on a real filesystem (temp dirs standing for the node's /etc/cni/net.d and /opt/cni/bin): install,
// repair after another writer's rewrite through the directory watch, the installed executable runs the real plugin,
// uninstall. No root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordingLogger, tempDir, waitFor } from '../inpod/test-helpers.js';
import { createCniInstaller, pluginWrapper } from './install.js';
import type { AmbitPluginEntry } from './install-conflist.js';

const ENTRY: AmbitPluginEntry = { type: 'ambit-cni', agentSocket: '/var/run/ambit/cni.sock', logLevel: 'info', excludeNamespaces: ['kube-system'] };
const PRIMARY = { cniVersion: '1.0.0', name: 'k8s', plugins: [{ type: 'bridge', bridge: 'cni0' }] };

type T = { after(fn: () => unknown): void };

function setup(t: T, files: Record<string, unknown> = { '10-k8s.conflist': PRIMARY }) {
  const dir = tempDir(t, 'ambit-cni-install-');
  const confDir = join(dir, 'etc/cni/net.d');
  const binDir = join(dir, 'opt/cni/bin');
  mkdirSync(confDir, { recursive: true });
  for (const [name, body] of Object.entries(files)) writeFileSync(join(confDir, name), typeof body === 'string' ? body : JSON.stringify(body));
  const { logger, lines } = recordingLogger();
  const installer = createCniInstaller({ confDir, binDir, entry: ENTRY, logger, debounceMs: 20 });
  t.after(() => installer.stop());
  return { dir, confDir, binDir, installer, lines };
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const types = (path: string): string[] => (readJson(path).plugins as Array<{ type: string }>).map((p) => p.type);
const has = (path: string): boolean => {
  try { return types(path).includes('ambit-cni'); } catch { return false; }
};

test('start chains ambit-cni into the primary conflist and installs an executable plugin; installed resolves', async (t) => {
  const { confDir, binDir, installer } = setup(t);
  await installer.start();
  await installer.installed;
  assert.deepEqual(types(join(confDir, '10-k8s.conflist')), ['bridge', 'ambit-cni']);
  assert.deepEqual(readJson(join(confDir, '10-k8s.conflist')).plugins[1], { ...ENTRY });
  accessSync(join(binDir, 'ambit-cni'), constants.X_OK);
  assert.equal(readFileSync(join(binDir, 'ambit-cni'), 'utf8'), pluginWrapper(process.execPath, fileURLToPath(new URL('../../../bin/ambit-cni', import.meta.url))));
  assert.deepEqual(readdirSync(confDir), ['10-k8s.conflist'], 'no temp file left behind');
  const again = await installer.reconcile('replace');
  assert.deepEqual(again, { state: 'installed', config: '10-k8s.conflist', wroteConfig: false, wroteBinary: false }, 'idempotent');
});

test('the installed executable runs the real plugin (VERSION)', async (t) => {
  const { binDir, installer } = setup(t);
  await installer.start();
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(join(binDir, 'ambit-cni'), [], { env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
    child.stdin.end(JSON.stringify({ cniVersion: '1.0.0' }));
  });
  assert.equal(out.code, 0);
  assert.equal(JSON.parse(out.stdout).cniVersion, '1.0.0');
});

test('a rewrite by another writer is repaired through the directory watch; a deleted executable is put back', async (t) => {
  const { confDir, binDir, installer, lines } = setup(t);
  await installer.start();
  const file = join(confDir, '10-k8s.conflist');
  // The primary CNI rewrites its config (as calico does on restart), dropping our entry.
  writeFileSync(file, JSON.stringify({ ...PRIMARY, plugins: [{ type: 'bridge', bridge: 'cni0', mtu: 1400 }] }));
  await waitFor('ambit-cni back in the rewritten conflist', () => has(file));
  assert.equal(readJson(file).plugins[0].mtu, 1400, 'the other writer\'s change is kept');
  assert.ok(lines.some((l) => /chained ambit-cni into 10-k8s.conflist/.test(l.msg)));
  // Someone removes the plugin executable.
  writeFileSync(join(binDir, 'ambit-cni'), 'broken');
  await waitFor('the executable restored', () => readFileSync(join(binDir, 'ambit-cni'), 'utf8').startsWith('#!/bin/sh'));
});

test('a new first conflist (the primary renamed its file) gets the entry; uninstall removes it from every file and the executable', async (t) => {
  const { confDir, binDir, installer } = setup(t);
  await installer.start();
  writeFileSync(join(confDir, '05-k8s.conflist'), JSON.stringify(PRIMARY));
  await waitFor('entry in the new first conflist', () => has(join(confDir, '05-k8s.conflist')));
  await installer.stop();
  const r = await installer.uninstall();
  assert.deepEqual(r, { configs: ['05-k8s.conflist', '10-k8s.conflist'], binary: true });
  assert.deepEqual(readJson(join(confDir, '05-k8s.conflist')), PRIMARY);
  assert.deepEqual(readJson(join(confDir, '10-k8s.conflist')), PRIMARY);
  assert.equal(existsSync(join(binDir, 'ambit-cni')), false);
  assert.deepEqual(await installer.uninstall(), { configs: [], binary: false }, 'a second uninstall has nothing to do');
});

test('a .conf is converted to a .conflist with the plugin chained', async (t) => {
  const { confDir, installer } = setup(t, { '10-bridge.conf': { cniVersion: '0.4.0', name: 'br', type: 'bridge' }, '99-loopback.conf': { cniVersion: '0.4.0', name: 'lo', type: 'loopback' } });
  await installer.start();
  assert.deepEqual(readdirSync(confDir).sort(), ['10-bridge.conflist', '99-loopback.conf']);
  assert.deepEqual(readJson(join(confDir, '10-bridge.conflist')), { cniVersion: '0.4.0', name: 'br', plugins: [{ type: 'bridge' }, { ...ENTRY }] });
});

test('without a primary config the installer waits, and installs when one appears', async (t) => {
  const { confDir, installer, lines } = setup(t, {});
  let done = false;
  void installer.installed.then(() => { done = true; });
  await installer.start();
  assert.equal(done, false);
  assert.ok(lines.some((l) => /no CNI network configuration in .* yet; waiting for the primary CNI plugin/.test(l.msg)));
  writeFileSync(join(confDir, '10-k8s.conflist'), JSON.stringify(PRIMARY));
  // The installer's watches and timers do not hold the process open (the agent's servers do): poll meanwhile.
  await waitFor('installed to resolve', () => done);
  assert.deepEqual(types(join(confDir, '10-k8s.conflist')), ['bridge', 'ambit-cni']);
});

test('a config we cannot chain into is logged with its reason and left untouched', async (t) => {
  const bad = JSON.stringify({ cniVersion: '0.2.0', name: 'old', plugins: [{ type: 'bridge' }] });
  const { confDir, installer, lines } = setup(t, { '10-old.conflist': bad });
  await installer.start();
  assert.equal(readFileSync(join(confDir, '10-old.conflist'), 'utf8'), bad);
  assert.ok(lines.some((l) => l.level === 50 && /10-old.conflist: cniVersion "0.2.0" is not one ambit-cni supports/.test(l.msg)));
});
