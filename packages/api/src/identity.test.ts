import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSpiffeId, parseSpiffeId } from './identity.js';
import { ILLEGAL_TARGET_PORTS, PORTS } from './ports.js';

test('spiffe id round trip', () => {
  const id = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' };
  const uri = formatSpiffeId(id);
  assert.equal(uri, 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.deepEqual(parseSpiffeId(uri), id);
});

test('spiffe id parse rejects other shapes', () => {
  assert.equal(parseSpiffeId('spiffe://cluster.local/workload/x'), undefined);
  assert.equal(parseSpiffeId('https://cluster.local/ns/a/sa/b'), undefined);
  assert.equal(parseSpiffeId('spiffe://cluster.local/ns/a/sa/b/extra'), undefined);
});

test('illegal target ports are the three capture ports', () => {
  assert.deepEqual([...ILLEGAL_TARGET_PORTS].sort(), [PORTS.outbound, PORTS.inboundPlaintext, PORTS.hbone].sort());
});
