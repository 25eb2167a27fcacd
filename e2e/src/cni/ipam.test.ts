import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHostLocalStore, parseRange } from './ipam.js';
import { hostIfaceFor, netnsNameOf } from './bridge-plugin.js';

test('the range skips network, gateway and broadcast', () => {
  assert.deepEqual(parseRange({ subnet: '10.0.3.0/24' }), { subnet: '10.0.3.0/24', gateway: '10.0.3.1', rangeStart: '10.0.3.2', rangeEnd: '10.0.3.254', prefixLength: 24 });
  assert.throws(() => parseRange({ subnet: '10.0.3.0/24', gateway: '10.0.4.1' }), /not a host address/);
});

test('host-local store: lowest free, requested IP, repeat ADD idempotent, duplicates refused, release by container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipam-test-'));
  try {
    const s = openHostLocalStore(dir, 'net', parseRange({ subnet: '10.0.1.0/24', rangeEnd: '10.0.1.4' }));
    assert.equal(s.allocate('a', 'eth0').ip, '10.0.1.2');
    assert.equal(s.allocate('b', 'eth0', '10.0.1.4').ip, '10.0.1.4');
    assert.equal(s.allocate('a', 'eth0').ip, '10.0.1.2');
    assert.throws(() => s.allocate('c', 'eth0', '10.0.1.4'), /already allocated to container b/);
    assert.throws(() => s.allocate('c', 'eth0', '10.0.1.9'), /outside/);
    assert.equal(s.allocate('c', 'eth0').ip, '10.0.1.3');
    assert.throws(() => s.allocate('d', 'eth0'), (e: { code: number }) => e.code === 100);
    assert.deepEqual(s.release('a'), ['10.0.1.2']);
    assert.deepEqual(s.release('a'), []);
    assert.equal(s.allocate('d', 'eth0').ip, '10.0.1.2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('host veth names match the topology (vp<P>) and CNI_NETNS must be a named netns', () => {
  assert.equal(hostIfaceFor('10.0.2.7', 24), 'vp7');
  assert.equal(hostIfaceFor('10.1.2.7', 16), 'vh0a010207');
  assert.equal(netnsNameOf('/var/run/netns/amb-t1-n1p2'), 'amb-t1-n1p2');
  assert.throws(() => netnsNameOf('/proc/123/ns/net'), /named netns/);
});
