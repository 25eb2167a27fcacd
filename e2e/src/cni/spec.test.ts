import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cniEnvironment, CniError, convertResult, parseNetworkConfig, parsePluginOutput, pluginOrder, pluginStdin, resultIps } from './spec.js';

const LIST = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'ambit',
  plugins: [{ type: 'ambit-bridge', bridge: 'br0' }, { type: 'ambit-cni', agentSocket: '/run/a.sock', prevResult: { stale: true } }],
});

test('a conflist derives each plugin stdin with the list name and version, prevResult only where given', () => {
  const list = parseNetworkConfig(LIST, 'x.conflist');
  assert.deepEqual(pluginStdin(list, 0), { type: 'ambit-bridge', bridge: 'br0', cniVersion: '1.0.0', name: 'ambit' });
  const prev = { cniVersion: '1.0.0', ips: [{ address: '10.0.1.2/24', interface: 1 }] };
  const second = pluginStdin(list, 1, prev);
  assert.deepEqual(second.prevResult, prev);
  assert.equal(second.agentSocket, '/run/a.sock');
  // A prevResult written in the file is never passed on as if it were a real one.
  assert.equal('prevResult' in pluginStdin(list, 1), false);
});

test('ADD and CHECK run the chain forwards, DEL backwards', () => {
  const list = parseNetworkConfig(LIST);
  assert.deepEqual(pluginOrder(list, 'ADD'), [0, 1]);
  assert.deepEqual(pluginOrder(list, 'CHECK'), [0, 1]);
  assert.deepEqual(pluginOrder(list, 'DEL'), [1, 0]);
});

test('a single-plugin .conf becomes a one-plugin list; bad configs are refused with CNI codes', () => {
  const l = parseNetworkConfig(JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'ambit-bridge', bridge: 'br0' }));
  assert.deepEqual(l.plugins, [{ type: 'ambit-bridge', bridge: 'br0' }]);
  assert.throws(() => parseNetworkConfig('{'), (e: CniError) => e.code === 6);
  assert.throws(() => parseNetworkConfig(JSON.stringify({ cniVersion: '0.2.0', name: 'n', plugins: [{ type: 'x' }] })), (e: CniError) => e.code === 1);
  assert.throws(() => parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] })), (e: CniError) => e.code === 7);
  assert.throws(() => parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] })), /plain executable name/);
});

test('the CNI_* environment carries IgnoreUnknown first and the path list', () => {
  const env = cniEnvironment({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/x', ifName: 'eth0', args: { K8S_POD_NAME: 'p', IP: '10.0.1.5' }, path: ['/a', '/b'] });
  assert.deepEqual(env, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.0.1.5', CNI_PATH: '/a:/b' });
});

test('plugin output: result, empty success, error object, and a failure without one', () => {
  assert.deepEqual(resultIps(parsePluginOutput(0, '{"cniVersion":"1.0.0","ips":[{"address":"10.0.1.5/24"}]}', '', 'p')), ['10.0.1.5']);
  assert.equal(parsePluginOutput(0, '', '', 'p'), undefined);
  assert.throws(() => parsePluginOutput(1, '{"cniVersion":"1.0.0","code":100,"msg":"boom","details":"d"}', '', 'ambit-cni'), (e: CniError) => e.code === 100 && /ambit-cni failed: boom/.test(e.message) && e.details === 'd');
  assert.throws(() => parsePluginOutput(2, '', 'segfault', 'p'), /without a CNI error object: segfault/);
});

test('results convert between 0.4.0 (ip version field) and 1.x', () => {
  const r = { cniVersion: '1.0.0', ips: [{ address: '10.0.1.5/24' }], custom: 1 };
  assert.deepEqual(convertResult(r, '0.4.0'), { cniVersion: '0.4.0', ips: [{ address: '10.0.1.5/24', version: '4' }], custom: 1 });
  assert.deepEqual(convertResult(convertResult(r, '0.4.0'), '1.1.0').ips, [{ address: '10.0.1.5/24' }]);
});
