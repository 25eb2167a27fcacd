import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetnsFinder, parseFibTrieLocal, parseIfInet6 } from './netns-finder.js';
import { recordingLogger, tempDir } from '../inpod/test-helpers.js';

const fibTrie = (local: string[]): string => `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.1.0/24 2 0 2
        |-- 10.0.1.0
           /24 link UNICAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.0
           /8 host LOCAL
        |-- 127.0.0.1
           /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
${local.map((ip) => `     |-- ${ip}\n        /32 host LOCAL\n`).join('')}     |-- 10.0.1.255
        /32 link BROADCAST
`;

test('fib_trie: host-local /32 leaves only (no network, broadcast or /8 routes)', () => {
  assert.deepEqual(parseFibTrieLocal(fibTrie(['10.0.1.7'])).sort(), ['10.0.1.7', '127.0.0.1']);
});

test('if_inet6: addresses in canonical form', () => {
  const text = 'fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n';
  assert.deepEqual(parseIfInet6(text), ['fd00::2', '::1']);
});

/**
 * A fake host: /proc/<pid>/ns/net and /var/run/netns/<name> are plain files, hard-linked where they name the same
 * namespace (same inode, as nsfs gives), and /proc/<pid>/net/* hold the addresses.
 */
function fakeHost(dir: string) {
  const procDir = join(dir, 'proc');
  const netnsDir = join(dir, 'netns');
  mkdirSync(netnsDir, { recursive: true });
  const namespaces = new Map<string, string>();
  return {
    procDir, netnsDir,
    namespace(name: string, opts: { named?: boolean; pids?: number[]; v4?: string[]; v6?: string } = {}) {
      const file = join(dir, `ns-${name}`);
      writeFileSync(file, '');
      namespaces.set(name, file);
      if (opts.named) linkSync(file, join(netnsDir, name));
      for (const pid of opts.pids ?? []) {
        mkdirSync(join(procDir, String(pid), 'ns'), { recursive: true });
        mkdirSync(join(procDir, String(pid), 'net'), { recursive: true });
        linkSync(file, join(procDir, String(pid), 'ns', 'net'));
        writeFileSync(join(procDir, String(pid), 'net', 'fib_trie'), fibTrie(opts.v4 ?? []));
        writeFileSync(join(procDir, String(pid), 'net', 'if_inet6'), opts.v6 ?? '');
      }
    },
    cgroup(pid: number, text: string) {
      writeFileSync(join(procDir, String(pid), 'cgroup'), text);
    },
    setV4(pid: number, v4: string[]) {
      writeFileSync(join(procDir, String(pid), 'net', 'fib_trie'), fibTrie(v4));
    },
  };
}

test('finds the namespace holding a pod IP, preferring its named netns file, reading /proc files not nsenter', async (t) => {
  const dir = tempDir(t, 'ambit-netns-');
  const host = fakeHost(dir);
  host.namespace('host', { pids: [1, 2], v4: ['10.255.0.1'] });
  host.namespace('pod-a', { named: true, pids: [10, 11], v4: ['10.0.1.2'] });
  host.namespace('pod-b', { named: true, pids: [20], v4: ['10.0.1.3'], v6: 'fd000000000000000000000000000103 04 40 00 80 eth0\n' });
  host.namespace('pod-c', { pids: [30], v4: ['10.0.1.4'] });
  const byPath: string[] = [];
  const finder = createNetnsFinder({ procDir: host.procDir, netnsDir: host.netnsDir, logger: recordingLogger().logger, readAddressesByPath: async (p) => { byPath.push(p); return []; } });
  assert.equal(await finder.find(['10.0.1.3'], 'u'), join(host.netnsDir, 'pod-b'));
  assert.equal(await finder.find(['fd00::103'], 'u'), join(host.netnsDir, 'pod-b'), 'matched by its IPv6 address');
  assert.equal(await finder.find(['10.0.1.4'], 'u'), join(host.procDir, '30', 'ns', 'net'), 'no named file: the process path');
  assert.equal(await finder.find(['10.0.9.9'], 'u'), undefined);
  assert.deepEqual(byPath, [], 'every namespace had a process: no nsenter');
});

test('a cached namespace whose addresses changed is read again; a namespace without a process is read by path', async (t) => {
  const dir = tempDir(t, 'ambit-netns-');
  const host = fakeHost(dir);
  host.namespace('sandbox', { named: true, pids: [40], v4: [] });
  host.namespace('bare', { named: true });
  const byPath: string[] = [];
  const finder = createNetnsFinder({
    procDir: host.procDir, netnsDir: host.netnsDir, logger: recordingLogger().logger,
    readAddressesByPath: async (p) => { byPath.push(p); return p.endsWith('bare') ? ['10.0.1.9'] : []; },
  });
  assert.equal(await finder.find(['10.0.1.5'], 'u'), undefined, 'the sandbox has no address yet');
  host.setV4(40, ['10.0.1.5']);
  assert.equal(await finder.find(['10.0.1.5'], 'u'), join(host.netnsDir, 'sandbox'));
  assert.equal(await finder.find(['10.0.1.9'], 'u'), join(host.netnsDir, 'bare'));
  assert.ok(byPath.every((p) => p === join(host.netnsDir, 'bare')), `only the namespace without a process is entered: ${byPath.join(', ')}`);
});

test('two namespaces holding the IP: the pod UID in a cgroup decides, otherwise it refuses', async (t) => {
  const dir = tempDir(t, 'ambit-netns-');
  const host = fakeHost(dir);
  host.namespace('mine', { named: true, pids: [50, 51], v4: ['10.0.1.2'] });
  host.namespace('theirs', { named: true, pids: [60], v4: ['10.0.1.2'] });
  const finder = createNetnsFinder({ procDir: host.procDir, netnsDir: host.netnsDir, logger: recordingLogger().logger });
  await assert.rejects(finder.find(['10.0.1.2'], '1b4e28ba-2fa1-11d2-883f-0016d3cca427'), /2 network namespaces hold 10\.0\.1\.2 .* and no process cgroup names pod uid 1b4e28ba-2fa1-11d2-883f-0016d3cca427/);
  host.cgroup(60, '0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a0a0a0a_0000_0000_0000_000000000000.slice/cri-containerd-1.scope\n');
  host.cgroup(51, '0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/cri-containerd-2.scope\n');
  assert.equal(await finder.find(['10.0.1.2'], '1b4e28ba-2fa1-11d2-883f-0016d3cca427'), join(host.netnsDir, 'mine'));
});
