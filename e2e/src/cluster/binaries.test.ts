import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { clusterToolsDir, clusterToolsHash, k8sBinaries, k8sCacheDir, K8sBinariesError } from './binaries.js';

const BINARIES = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'kubectl', 'etcd', 'etcdctl', 'helm', 'coredns'];

function fakeTools(root: string): string {
  const tools = join(root, 'tools');
  mkdirSync(join(tools, 'kubernetes'), { recursive: true });
  mkdirSync(join(tools, 'etcd'), { recursive: true });
  writeFileSync(join(tools, 'kubernetes', 'go.mod'), 'module x\n\nrequire k8s.io/kubernetes v1.36.3\n');
  writeFileSync(join(tools, 'kubernetes', 'go.sum'), 'k8s.io/kubernetes v1.36.3 h1:x=\n');
  writeFileSync(join(tools, 'etcd', 'go.mod'), 'module y\n');
  writeFileSync(join(tools, 'etcd', 'README'), 'not hashed\n');
  return tools;
}

function fakeBuild(cache: string, key: string, modulesHash: string, opts: { recipe?: number; builtAt?: string; binaries?: string[] } = {}): string {
  const dir = join(cache, 'k8s', key);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'crds', 'gateway-api', 'standard'), { recursive: true });
  const binaries = opts.binaries ?? BINARIES;
  for (const b of binaries) {
    writeFileSync(join(dir, 'bin', b), '#!/bin/sh\n');
    chmodSync(join(dir, 'bin', b), 0o755);
  }
  const stamp = {
    key,
    recipe: opts.recipe ?? 1,
    modulesHash,
    versions: { kubernetes: 'v1.36.3', etcd: 'v3.6.16', helm: 'v3.21.4', coredns: 'v1.14.7', gatewayApi: 'v1.6.3', go: 'go1.26.8' },
    binaries: Object.fromEntries(binaries.map((b) => [b, `bin/${b}`])),
    gatewayApiCrds: 'crds/gateway-api',
    buildSeconds: { total: 1 },
    builtAt: opts.builtAt ?? '2026-01-01T00:00:00Z',
  };
  writeFileSync(join(dir, 'stamp.json'), JSON.stringify(stamp));
  return dir;
}

function withTemp(fn: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'ambit-k8s-bin-'));
  try {
    fn(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('k8sBinaries finds the build whose stamp matches the pins, in the cache named by AMBIT_CACHE', () => {
  withTemp((root) => {
    const tools = fakeTools(root);
    const cache = join(root, 'cache');
    fakeBuild(cache, 'v1.35.0-000000000000', 'other pins', { builtAt: '2027-01-01T00:00:00Z' });
    const dir = fakeBuild(cache, 'v1.36.3-abcdefabcdef', clusterToolsHash(tools));
    const saved = process.env.AMBIT_CACHE;
    process.env.AMBIT_CACHE = cache;
    try {
      assert.equal(k8sCacheDir(), cache);
      const b = k8sBinaries({ toolsDir: tools });
      assert.equal(b.dir, dir);
      assert.equal(b.kubeApiserver, join(dir, 'bin', 'kube-apiserver'));
      assert.equal(b.kubeControllerManager, join(dir, 'bin', 'kube-controller-manager'));
      assert.equal(b.kubeScheduler, join(dir, 'bin', 'kube-scheduler'));
      assert.equal(b.kubeProxy, join(dir, 'bin', 'kube-proxy'));
      assert.equal(b.kubectl, join(dir, 'bin', 'kubectl'));
      assert.equal(b.etcd, join(dir, 'bin', 'etcd'));
      assert.equal(b.etcdctl, join(dir, 'bin', 'etcdctl'));
      assert.equal(b.helm, join(dir, 'bin', 'helm'));
      assert.equal(b.coredns, join(dir, 'bin', 'coredns'));
      assert.equal(b.gatewayApiCrdsDir, join(dir, 'crds', 'gateway-api'));
      assert.equal(b.versions.kubernetes, 'v1.36.3');
      assert.equal(b.versions.etcd, 'v3.6.16');
    } finally {
      if (saved === undefined) delete process.env.AMBIT_CACHE;
      else process.env.AMBIT_CACHE = saved;
    }
  });
});

test('k8sBinaries says how to install when nothing is installed', () => {
  withTemp((root) => {
    assert.throws(
      () => k8sBinaries({ cacheDir: join(root, 'empty'), toolsDir: fakeTools(root) }),
      (err: unknown) => {
        assert.ok(err instanceof K8sBinariesError);
        assert.match(err.message, /^Kubernetes binaries not installed .*run scripts\/install-k8s-binaries\.sh/);
        return true;
      },
    );
  });
});

test('k8sBinaries refuses a build from other pins', () => {
  withTemp((root) => {
    const tools = fakeTools(root);
    fakeBuild(root, 'v1.36.3-abcdefabcdef', clusterToolsHash(tools));
    writeFileSync(join(tools, 'kubernetes', 'go.mod'), 'module x\n\nrequire k8s.io/kubernetes v1.36.4\n');
    assert.throws(() => k8sBinaries({ cacheDir: root, toolsDir: tools }), /built from other pins .*install-k8s-binaries\.sh/);
    // without a tools directory any complete build does
    assert.equal(k8sBinaries({ cacheDir: root, toolsDir: null }).versions.kubernetes, 'v1.36.3');
  });
});

test('k8sBinaries reports a missing binary, and a build without CoreDNS has no coredns', () => {
  withTemp((root) => {
    const tools = fakeTools(root);
    const dir = fakeBuild(root, 'v1.36.3-abcdefabcdef', clusterToolsHash(tools), { binaries: BINARIES.filter((b) => b !== 'coredns') });
    assert.equal(k8sBinaries({ cacheDir: root, toolsDir: tools }).coredns, undefined);
    rmSync(join(dir, 'bin', 'kube-apiserver'));
    assert.throws(() => k8sBinaries({ cacheDir: root, toolsDir: tools }), /kube-apiserver is missing or not executable/);
  });
});

test('clusterToolsHash hashes go.mod, go.sum and .go files like the install script', () => {
  withTemp((root) => {
    const tools = fakeTools(root);
    // the script's own modules_hash(), taken out of scripts/install-k8s-binaries.sh
    const scriptPath = join(clusterToolsDir() ?? '', '..', '..', 'scripts', 'install-k8s-binaries.sh');
    const r = spawnSync('bash', ['-c', 'source <(sed -n "/^modules_hash()/,/^}/p" "$1"); TOOLS=$2; modules_hash', 'bash', scriptPath, tools], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(clusterToolsHash(tools), r.stdout.trim());
    const before = clusterToolsHash(tools);
    writeFileSync(join(tools, 'etcd', 'README'), 'changed, not hashed\n');
    assert.equal(clusterToolsHash(tools), before);
  });
});

test('clusterToolsDir is this repo\'s e2e/cluster-tools', () => {
  const dir = clusterToolsDir();
  assert.ok(dir && dir.endsWith(join('e2e', 'cluster-tools')), String(dir));
});
