// Control-plane process handling without Kubernetes binaries: a component that dies at start is reported with
// its last log lines and nothing is left behind; stale directories of a SIGKILLed run are swept; helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ControlPlaneProcessExitedError,
  ControlPlaneStartError,
  freePorts,
  startControlPlane,
  sweepStaleDirs,
  tailFile,
  type ControlPlaneBinaries,
} from './control-plane.js';

function fakeBinaries(dir: string, etcdScript: string): ControlPlaneBinaries {
  const write = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const never = write('never', 'echo "should not have been started" >&2; exit 99');
  return { etcd: write('etcd', etcdScript), kubeApiserver: never, kubeControllerManager: never, kubeScheduler: never, kubectl: never };
}

test('a component that dies at start is reported with its exit code and last log lines; nothing is left', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ambit-cp-test-'));
  try {
    const bin = join(base, 'bin');
    mkdirSync(bin);
    const binaries = fakeBinaries(
      bin,
      '[ "$1" = --help ] && exit 0\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do echo "line $i"; done\necho "fatal: listen tcp 127.0.0.1: address already in use" >&2\nexit 3',
    );
    const work = join(base, 'work');
    mkdirSync(work);
    const err = await startControlPlane({ binaries, baseDir: work }).then(
      () => assert.fail('start should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ControlPlaneProcessExitedError, String(err));
    assert.equal(err.component, 'etcd');
    assert.equal(err.code, 3);
    assert.match(err.message, /^etcd \(pid \d+\) exited with code 3; last log lines:\n/);
    assert.match(err.message, /fatal: listen tcp 127\.0\.0\.1: address already in use$/);
    assert.doesNotMatch(err.message, /line 5\n/, 'only the last lines');
    assert.match(err.message, /line 25\n/);
    assert.deepEqual(readdirSync(work), [], 'temp directory removed');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a killed component is reported with the signal', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ambit-cp-test-'));
  try {
    const bin = join(base, 'bin');
    mkdirSync(bin);
    const binaries = fakeBinaries(bin, '[ "$1" = --help ] && exit 0\necho "starting"\nkill -9 $$');
    const err = await startControlPlane({ binaries, baseDir: base }).catch((e: unknown) => e);
    assert.ok(err instanceof ControlPlaneProcessExitedError, String(err));
    assert.equal(err.signal, 'SIGKILL');
    assert.match(err.message, /^etcd \(pid \d+\) was killed by SIGKILL; last log lines:\nstarting$/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a missing binary is named before anything starts', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ambit-cp-test-'));
  try {
    const binaries = { ...fakeBinaries(base, 'exit 0'), kubeScheduler: join(base, 'no-such-kube-scheduler') };
    await assert.rejects(startControlPlane({ binaries, baseDir: base }), (e: Error) => {
      assert.ok(e instanceof ControlPlaneStartError);
      assert.match(e.message, /kubeScheduler binary .*no-such-kube-scheduler is missing or not executable; run scripts\/install-k8s-binaries\.sh/);
      return true;
    });
    assert.ok(!readdirSync(base).some((e) => e.startsWith('ambit-cp-')));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('stale directories of dead owners are swept, live ones kept', () => {
  const base = mkdtempSync(join(tmpdir(), 'ambit-cp-test-'));
  try {
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    mkdirSync(join(base, 'ambit-cp-dead'));
    writeFileSync(join(base, 'ambit-cp-dead', 'owner.pid'), dead);
    mkdirSync(join(base, 'ambit-cp-live'));
    writeFileSync(join(base, 'ambit-cp-live', 'owner.pid'), String(process.pid));
    mkdirSync(join(base, 'ambit-cp-no-owner'));
    mkdirSync(join(base, 'unrelated'));
    writeFileSync(join(base, 'unrelated', 'owner.pid'), dead);
    assert.deepEqual(sweepStaleDirs(base), [join(base, 'ambit-cp-dead')]);
    assert.deepEqual(readdirSync(base).sort(), ['ambit-cp-live', 'ambit-cp-no-owner', 'unrelated']);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('tailFile keeps the last non-empty lines; a missing file is empty', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-cp-test-'));
  try {
    writeFileSync(join(dir, 'log'), 'a\nb\n\nc\nd\n');
    assert.equal(tailFile(join(dir, 'log'), 2), 'c\nd');
    assert.equal(tailFile(join(dir, 'log'), 10), 'a\nb\nc\nd');
    assert.equal(tailFile(join(dir, 'missing'), 3), '');
    assert.ok(!existsSync(join(dir, 'missing')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('freePorts returns distinct loopback ports', async () => {
  const ports = await freePorts(5);
  assert.equal(new Set(ports).size, 5);
  for (const p of ports) assert.ok(p > 0 && p < 65536);
});
