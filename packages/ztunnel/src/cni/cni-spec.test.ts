import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CNI_ERROR, CniError, compareVersions, convertResult, podIpsOf, SUPPORTED_CNI_VERSIONS, type CniResult } from './cni-spec.js';

// What a primary plugin (bridge + host-local) returns, in the 1.0.0 shape and the 0.3.x/0.4.0 shape.
const modern: CniResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:00:01:05', sandbox: '/var/run/netns/cni-1' }],
  ips: [{ address: '10.0.1.5/24', gateway: '10.0.1.1', interface: 0 }, { address: 'fd00:10::5/64', interface: 0 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.0.1.1' }],
  dns: { nameservers: ['10.96.0.10'] },
  'x-vendor': { kept: true },
};
const legacy: CniResult = {
  ...modern,
  ips: [{ version: '4', address: '10.0.1.5/24', gateway: '10.0.1.1', interface: 0 }, { version: '6', address: 'fd00:10::5/64', interface: 0 }],
};

for (const v of SUPPORTED_CNI_VERSIONS) {
  test(`result passes through unchanged in cniVersion ${v}`, () => {
    const isLegacy = compareVersions(v, '1.0.0') < 0;
    const input = { ...(isLegacy ? legacy : modern), cniVersion: v };
    assert.deepEqual(convertResult(input, v), input);
  });
}

test('a result is converted to the configured version when the previous plugin answered in another', () => {
  assert.deepEqual(convertResult({ ...legacy, cniVersion: '0.4.0' }, '1.0.0'), modern);
  assert.deepEqual(convertResult(modern, '0.3.1'), { ...legacy, cniVersion: '0.3.1' });
  assert.deepEqual(convertResult({ ips: [] }, '1.1.0'), { ips: [], cniVersion: '1.1.0' });
});

test('a pre-0.3.0 result cannot be handed on', () => {
  assert.throws(() => convertResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.1/24' } }, '1.0.0'), (e: unknown) => e instanceof CniError && e.code === CNI_ERROR.incompatibleVersion);
});

test('pod IPs are the result addresses without prefix length', () => {
  assert.deepEqual(podIpsOf(modern), ['10.0.1.5', 'fd00:10::5']);
  assert.deepEqual(podIpsOf({}), []);
});

test('versions compare numerically', () => {
  assert.equal(compareVersions('0.10.0', '0.4.0'), 1);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  assert.equal(compareVersions('0.3.1', '0.4.0'), -1);
});
