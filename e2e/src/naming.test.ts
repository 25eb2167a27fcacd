import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  interNodeRoute,
  netnsPath,
  nodeBridgeIp,
  nodeNetnsName,
  nodePodCidr,
  nodeUplinkIp,
  ownsNetns,
  podHostIface,
  podIp,
  podNetnsName,
  randomPrefix,
  underlayNetnsName,
  underlayPortIface,
  validatePrefix,
} from './naming.js';

test('names carry the per-run prefix and stay short', () => {
  assert.equal(underlayNetnsName('amb-t1a2b'), 'amb-t1a2b-net');
  assert.equal(nodeNetnsName('amb-t1a2b', 1), 'amb-t1a2b-n1');
  assert.equal(podNetnsName('amb-t1a2b', 2, 3), 'amb-t1a2b-n2p3');
  assert.equal(netnsPath('amb-t1a2b-n2p3'), '/var/run/netns/amb-t1a2b-n2p3');
  // Longest allowed prefix and indices: still short enough to read in `ip netns list` and logs.
  assert.ok(podNetnsName('amb-abcdefgh', 250, 254).length <= 24);
});

test('addresses are 10.0.{node}.{pod} with the bridge at .1 and uplinks on 10.255.0.{node}', () => {
  assert.equal(podIp(1, 2), '10.0.1.2');
  assert.equal(podIp(2, 254), '10.0.2.254');
  assert.equal(nodeBridgeIp(3), '10.0.3.1');
  assert.equal(nodePodCidr(3), '10.0.3.0/24');
  assert.equal(nodeUplinkIp(7), '10.255.0.7');
  assert.deepEqual(interNodeRoute(2), { dst: '10.0.2.0/24', via: '10.255.0.2' });
});

test('interface names are fixed per namespace and under 15 characters', () => {
  assert.equal(podHostIface(2), 'vp2');
  assert.equal(underlayPortIface(12), 'n12');
  assert.ok(podHostIface(254).length <= 15 && underlayPortIface(250).length <= 15);
});

test('indices outside the address plan are rejected', () => {
  assert.throws(() => podIp(1, 1), /pod index 1 out of range/); // .1 is the gateway
  assert.throws(() => podIp(1, 255), /out of range/);
  assert.throws(() => nodeNetnsName('amb-x', 0), /node index 0/);
  assert.throws(() => nodeNetnsName('amb-x', 251), /node index 251/);
  assert.throws(() => podIp(1.5, 2), /node index/);
});

test('prefixes must start with amb- so the cleanup script finds them', () => {
  validatePrefix('amb-t1a2b');
  validatePrefix('amb-kind-1');
  assert.throws(() => validatePrefix('fz-n1'), /invalid topology prefix/);
  assert.throws(() => validatePrefix('amb-'), /invalid topology prefix/);
  assert.throws(() => validatePrefix('amb-Upper'), /invalid topology prefix/);
  assert.throws(() => validatePrefix('amb-toolongname'), /longer than 12/);
  assert.throws(() => validatePrefix('amb-a b'), /invalid topology prefix/);
});

test('random prefixes are valid and differ', () => {
  const a = randomPrefix();
  assert.match(a, /^amb-t[0-9a-f]{4}$/);
  const many = new Set(Array.from({ length: 20 }, () => randomPrefix()));
  assert.ok(many.size > 1);
});

test('a topology owns its prefix and <prefix>-*, not longer prefixes', () => {
  assert.ok(ownsNetns('amb-t1', 'amb-t1-n1p2'));
  assert.ok(ownsNetns('amb-t1', 'amb-t1-net'));
  assert.ok(!ownsNetns('amb-t1', 'amb-t12-n1'));
  assert.ok(!ownsNetns('amb-t1', 'ntx-smoke'));
});
