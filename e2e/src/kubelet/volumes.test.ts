// hostPath volumes without a mount namespace: node-local paths under each node's root, host-global paths shared,
// hostPath types applied as the kubelet does. No root needed: everything happens in a temp directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { DEFAULT_NODE_LOCAL_PATHS, hostPathOnNode, prepareHostPath, prepareVolumes, type HostPathMapping, type VolumeApi } from './volumes.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ambit-volumes-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const noApi: VolumeApi = {
  requestToken: () => Promise.reject(new Error('must not be called')),
  configMap: () => Promise.reject(new Error('must not be called')),
  secret: () => Promise.reject(new Error('must not be called')),
};

const daemonPod = (volumes: NonNullable<V1Pod['spec']>['volumes']): V1Pod => ({
  metadata: { name: 'agent-x', namespace: 'sys', uid: 'u1' },
  spec: {
    containers: [{ name: 'agent', volumeMounts: (volumes ?? []).map((v) => ({ name: v.name, mountPath: `/host${v.hostPath?.path ?? ''}` })) }],
    volumes,
  },
});

test('default node-local paths are the CNI dirs and the Ambit run and state dirs', () => {
  assert.deepEqual([...DEFAULT_NODE_LOCAL_PATHS], ['/etc/cni/net.d', '/opt/cni/bin', '/var/run/ambit', '/var/lib/ambit']);
});

test('node-local hostPaths map under the node root; host-global paths and look-alike prefixes do not', () => {
  const m: HostPathMapping = { nodeRoot: '/tmp/pool/node-2/root', nodeLocalPaths: DEFAULT_NODE_LOCAL_PATHS };
  assert.equal(hostPathOnNode('/etc/cni/net.d', m), '/tmp/pool/node-2/root/etc/cni/net.d');
  assert.equal(hostPathOnNode('/etc/cni/net.d/', m), '/tmp/pool/node-2/root/etc/cni/net.d/');
  assert.equal(hostPathOnNode('/var/run/ambit/cni.sock', m), '/tmp/pool/node-2/root/var/run/ambit/cni.sock');
  assert.equal(hostPathOnNode('/opt/cni/bin/../bin', m), '/tmp/pool/node-2/root/opt/cni/bin');
  assert.equal(hostPathOnNode('/proc', m), '/proc');
  assert.equal(hostPathOnNode('/var/run/netns', m), '/var/run/netns');
  assert.equal(hostPathOnNode('/sys/fs/cgroup', m), '/sys/fs/cgroup');
  assert.equal(hostPathOnNode('/etc/cni/net.dx', m), '/etc/cni/net.dx');
  assert.equal(hostPathOnNode('/etc/cni/net.d', undefined), '/etc/cni/net.d', 'no mapping: the host path');
  assert.throws(() => hostPathOnNode('etc/cni', m), /must be absolute/);
});

test('two nodes mounting the same hostPath get different directories; a shared path stays one', async (t) => {
  const dir = tempDir(t);
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  const pod = daemonPod([
    { name: 'cni-conf', hostPath: { path: '/etc/cni/net.d', type: 'DirectoryOrCreate' } },
    { name: 'run', hostPath: { path: '/var/run/ambit', type: 'DirectoryOrCreate' } },
    { name: 'shared', hostPath: { path: shared, type: 'Directory' } },
  ]);
  const envs = [];
  for (const n of [1, 2]) {
    const mapping: HostPathMapping = { nodeRoot: join(dir, `node-${n}`, 'root'), nodeLocalPaths: DEFAULT_NODE_LOCAL_PATHS };
    const { envFor } = await prepareVolumes(pod, join(dir, `pods-${n}`), noApi, mapping);
    envs.push(JSON.parse(envFor(pod.spec!.containers[0]!).AMBIT_MOUNTS!) as Record<string, string>);
  }
  const [one, two] = envs as [Record<string, string>, Record<string, string>];
  assert.equal(one['/host/etc/cni/net.d'], join(dir, 'node-1/root/etc/cni/net.d'));
  assert.equal(two['/host/etc/cni/net.d'], join(dir, 'node-2/root/etc/cni/net.d'));
  assert.ok(statSync(one['/host/etc/cni/net.d']!).isDirectory(), 'DirectoryOrCreate created it on node 1');
  assert.ok(statSync(two['/host/var/run/ambit']!).isDirectory(), 'DirectoryOrCreate created it on node 2');
  writeFileSync(join(one['/host/etc/cni/net.d']!, '10-x.conflist'), '{}');
  assert.equal(existsSync(join(two['/host/etc/cni/net.d']!, '10-x.conflist')), false, 'a file written on node 1 is not on node 2');
  assert.equal(one[`/host${shared}`], shared);
  assert.equal(two[`/host${shared}`], shared);
});

test('hostPath types: missing Directory/File fail naming the volume; FileOrCreate creates; wrong kinds are refused', (t) => {
  const dir = tempDir(t);
  const m: HostPathMapping = { nodeRoot: join(dir, 'root'), nodeLocalPaths: ['/var/lib/ambit'] };
  assert.throws(() => prepareHostPath('state', { path: '/var/lib/ambit/x', type: 'Directory' }, m), /hostPath volume "state" \(\/var\/lib\/ambit\/x -> .*\): hostPath type check failed: \/var\/lib\/ambit\/x is not a directory/);
  assert.throws(() => prepareHostPath('f', { path: '/var/lib/ambit/f', type: 'File' }, m), /is not a file/);
  assert.throws(() => prepareHostPath('f', { path: '/var/lib/ambit/f', type: 'FileOrCreate' }, m), /its directory \/var\/lib\/ambit does not exist/);
  const created = prepareHostPath('d', { path: '/var/lib/ambit', type: 'DirectoryOrCreate' }, m);
  assert.equal(created, join(dir, 'root/var/lib/ambit'));
  const file = prepareHostPath('f', { path: '/var/lib/ambit/f', type: 'FileOrCreate' }, m);
  assert.ok(statSync(file).isFile());
  assert.equal(prepareHostPath('f', { path: '/var/lib/ambit/f', type: 'File' }, m), file);
  assert.throws(() => prepareHostPath('d', { path: '/var/lib/ambit/f', type: 'DirectoryOrCreate' }, m), /is not a directory/);
  assert.throws(() => prepareHostPath('s', { path: '/var/lib/ambit/f', type: 'Socket' }, m), /is not a socket/);
  assert.throws(() => prepareHostPath('x', { path: '/var/lib/ambit', type: 'Dir' }, m), /unknown hostPath type "Dir"/);
  assert.equal(prepareHostPath('untyped', { path: '/var/lib/ambit/none' }, m), join(dir, 'root/var/lib/ambit/none'), 'no type: no check, nothing created');
  assert.equal(existsSync(join(dir, 'root/var/lib/ambit/none')), false);
});
