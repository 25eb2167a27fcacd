import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalizeIp, parseCidr } from './ip.js';

test('ipv4 stays as written', () => {
  assert.equal(canonicalizeIp('10.0.1.5'), '10.0.1.5');
});

test('ipv6 is compressed and lower-cased', () => {
  assert.equal(canonicalizeIp('FD00:0:0:0:0:0:0:1'), 'fd00::1');
  assert.equal(canonicalizeIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(canonicalizeIp('::'), '::');
  assert.equal(canonicalizeIp('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
});

test('ipv4-mapped ipv6 from a dual-stack socket becomes ipv4', () => {
  assert.equal(canonicalizeIp('::ffff:10.0.0.1'), '10.0.0.1');
});

test('garbage and zone ids are not addresses', () => {
  assert.equal(canonicalizeIp('10.0.1.x'), undefined);
  assert.equal(canonicalizeIp('fe80::1%eth0'), undefined);
  assert.equal(canonicalizeIp(''), undefined);
});

test('cidr parse: bare ip is a host route, bad prefix is refused', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
  assert.deepEqual(parseCidr('fd00::1'), { address: 'fd00::1', prefix: 128, family: 6 });
  assert.equal(typeof parseCidr('10.0.0.0/33'), 'string');
  assert.equal(typeof parseCidr('10.0.0.0/'), 'string');
  assert.equal(typeof parseCidr('nope/8'), 'string');
});
