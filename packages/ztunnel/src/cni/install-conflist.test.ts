import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AMBIT_CNI_TYPE, CniInstallError, hasPlugin, insertPlugin, primaryConfigFile, removePlugin, type AmbitPluginEntry } from './install-conflist.js';

const ENTRY: AmbitPluginEntry = { type: 'ambit-cni', agentSocket: '/var/run/ambit/cni.sock', logLevel: 'info', excludeNamespaces: ['kube-system', 'istio-system'] };

const calicoList = {
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  plugins: [
    { type: 'calico', log_level: 'info', datastore_type: 'kubernetes', ipam: { type: 'calico-ipam' }, kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' } },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
  ],
};

test('the runtime\'s file is the lexically first *.conflist, *.conf or *.json; temp and other files are ignored', () => {
  assert.equal(primaryConfigFile(['99-loopback.conf', '10-calico.conflist', 'calico-kubeconfig', '.10-a.conflist.ambit-tmp-1']), '10-calico.conflist');
  assert.equal(primaryConfigFile(['20-b.json', '30-a.conf']), '20-b.json');
  assert.equal(primaryConfigFile(['calico-kubeconfig', 'README']), undefined);
});

test('chained insert appends ambit-cni after the primary plugin and the others, keeping every other key', () => {
  const edit = insertPlugin('10-calico.conflist', JSON.stringify(calicoList), ENTRY, 'replace');
  assert.ok(edit);
  assert.equal(edit.write, '10-calico.conflist');
  assert.equal(edit.remove, undefined);
  const out = JSON.parse(edit.text);
  assert.deepEqual(out, { ...calicoList, plugins: [...calicoList.plugins, { ...ENTRY }] });
  assert.ok(hasPlugin(edit.text));
});

test('insert is idempotent: the same entry again writes nothing', () => {
  const once = insertPlugin('10-calico.conflist', JSON.stringify(calicoList), ENTRY, 'replace')!;
  assert.equal(insertPlugin('10-calico.conflist', once.text, ENTRY, 'replace'), undefined);
  assert.equal(insertPlugin('10-calico.conflist', once.text, ENTRY, 'keep'), undefined);
  // Key order does not matter.
  const reordered = JSON.stringify({ ...calicoList, plugins: [...calicoList.plugins, { excludeNamespaces: ENTRY.excludeNamespaces, logLevel: 'info', agentSocket: ENTRY.agentSocket, type: 'ambit-cni' }] });
  assert.equal(insertPlugin('10-calico.conflist', reordered, ENTRY, 'replace'), undefined);
});

test('a different ambit-cni entry is replaced in place on start, but kept when repairing (no fight between two agent versions)', () => {
  const old = { ...calicoList, plugins: [calicoList.plugins[0], { type: AMBIT_CNI_TYPE, agentSocket: '/old.sock' }, calicoList.plugins[1]] };
  const edit = insertPlugin('10-calico.conflist', JSON.stringify(old), ENTRY, 'replace')!;
  const plugins = JSON.parse(edit.text).plugins as Array<{ type: string }>;
  assert.deepEqual(plugins.map((p) => p.type), ['calico', 'ambit-cni', 'portmap'], 'position kept, one entry only');
  assert.deepEqual(plugins[1], { ...ENTRY });
  assert.equal(insertPlugin('10-calico.conflist', JSON.stringify(old), ENTRY, 'keep'), undefined);
});

test('repair after a rewrite: the primary plugin rewrote its file without us, and we are put back', () => {
  const installed = insertPlugin('10-calico.conflist', JSON.stringify(calicoList), ENTRY, 'replace')!;
  assert.ok(hasPlugin(installed.text));
  const rewritten = JSON.stringify({ ...calicoList, plugins: [{ ...calicoList.plugins[0], log_level: 'debug' }, calicoList.plugins[1]] });
  assert.equal(hasPlugin(rewritten), false);
  const repaired = insertPlugin('10-calico.conflist', rewritten, ENTRY, 'keep')!;
  const out = JSON.parse(repaired.text);
  assert.equal(out.plugins[0].log_level, 'debug', 'the other writer\'s change stays');
  assert.deepEqual(out.plugins.at(-1), { ...ENTRY });
});

test('a single-plugin .conf becomes a .conflist holding it, then ambit-cni; the .conf is removed', () => {
  const conf = { cniVersion: '1.0.0', name: 'mynet', type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.22.0.0/16' } };
  const edit = insertPlugin('10-mynet.conf', JSON.stringify(conf), ENTRY, 'replace')!;
  assert.equal(edit.write, '10-mynet.conflist');
  assert.equal(edit.remove, '10-mynet.conf');
  assert.deepEqual(JSON.parse(edit.text), {
    cniVersion: '1.0.0', name: 'mynet',
    plugins: [{ type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.22.0.0/16' } }, { ...ENTRY }],
  });
  // A .json single config too.
  assert.equal(insertPlugin('05-x.json', JSON.stringify(conf), ENTRY, 'replace')!.write, '05-x.conflist');
  // Once converted, inserting again into the result changes nothing.
  assert.equal(insertPlugin(edit.write, edit.text, ENTRY, 'replace'), undefined);
});

test('remove takes out every ambit-cni entry and nothing else; without one there is nothing to write', () => {
  const installed = insertPlugin('10-calico.conflist', JSON.stringify(calicoList), ENTRY, 'replace')!;
  const edit = removePlugin('10-calico.conflist', installed.text)!;
  assert.equal(edit.write, '10-calico.conflist');
  assert.deepEqual(JSON.parse(edit.text), calicoList);
  assert.equal(removePlugin('10-calico.conflist', edit.text), undefined);
  const twice = JSON.stringify({ ...calicoList, plugins: [...calicoList.plugins, { type: 'ambit-cni' }, { type: 'ambit-cni', agentSocket: '/x' }] });
  assert.deepEqual(JSON.parse(removePlugin('10-calico.conflist', twice)!.text), calicoList);
  assert.equal(removePlugin('10-calico.conflist', '{not json'), undefined, 'an unreadable file is not ours to fix');
});

test('configs we cannot chain into are refused with the file and the reason', () => {
  const refuses = (name: string, text: string, re: RegExp) => assert.throws(() => insertPlugin(name, text, ENTRY, 'replace'), (e: Error) => e instanceof CniInstallError && re.test(e.message));
  refuses('10-a.conflist', '{"cniVersion":', /^CNI config 10-a.conflist is not JSON/);
  refuses('10-a.conflist', '[]', /10-a.conflist is not a JSON object/);
  refuses('10-a.conflist', JSON.stringify({ ...calicoList, cniVersion: '0.2.0' }), /10-a.conflist: cniVersion "0.2.0" is not one ambit-cni supports \(0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\)/);
  refuses('10-a.conflist', JSON.stringify({ ...calicoList, plugins: [] }), /plugins is empty, there is no primary plugin to chain after/);
  refuses('10-a.conflist', JSON.stringify({ ...calicoList, plugins: [1] }), /plugins must be an array of objects/);
  refuses('10-a.conf', JSON.stringify({ cniVersion: '1.0.0', name: 'x' }), /neither plugins nor type is set/);
  refuses('10-a.conflist', JSON.stringify({ ...calicoList, plugins: [{ type: 'ambit-cni' }, ...calicoList.plugins] }), /ambit-cni is the first plugin; it is a chained plugin/);
});
