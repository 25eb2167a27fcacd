import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAuthority, parseAuthority, formatBaggage, parseBaggage, formatForwarded, parseForwarded, newTraceparent, parseTraceparent } from '../src/index.js';

test('authority: IPv4, bracketed IPv6, hostname; malformed refused', () => {
  assert.equal(formatAuthority('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(formatAuthority('fd00::1', 8080), '[fd00::1]:8080');
  assert.deepEqual(parseAuthority('10.0.0.1:80'), { host: '10.0.0.1', port: 80, isIp: true });
  assert.deepEqual(parseAuthority('[fd00::1]:8080'), { host: 'fd00::1', port: 8080, isIp: true });
  assert.deepEqual(parseAuthority('reviews.default.svc.cluster.local:9080'), { host: 'reviews.default.svc.cluster.local', port: 9080, isIp: false });
  for (const bad of ['', '10.0.0.1', 'fd00::1:80', '[fd00::1]', '10.0.0.1:0', '10.0.0.1:65536', 'a b:80', '[zz]:80', ':80']) {
    assert.equal(parseAuthority(bad), undefined, bad);
  }
});

test('baggage is written in Istio key order, skipping empty values', () => {
  const b = formatBaggage({ clusterName: 'Kubernetes', namespace: 'default', workloadType: 'deployment', workloadName: 'sleep', serviceName: 'sleep', serviceVersion: 'v1', region: '', zone: 'z1' });
  assert.equal(b, 'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep,service.name=sleep,service.version=v1,cloud.availability_zone=z1');
  assert.deepEqual(parseBaggage(b), { clusterName: 'Kubernetes', namespace: 'default', workloadType: 'deployment', workloadName: 'sleep', serviceName: 'sleep', serviceVersion: 'v1', zone: 'z1' });
  assert.equal(formatBaggage({}), '');
});

test('forwarded carries the source and, for services, the host', () => {
  assert.equal(formatForwarded('10.0.1.2', 5555), 'for="10.0.1.2:5555"');
  assert.equal(formatForwarded('fd00::2', 5555, 'echo.default.svc.cluster.local'), 'for="[fd00::2]:5555";host=echo.default.svc.cluster.local');
  assert.deepEqual(parseForwarded('for="10.0.1.2:5555";host=echo.default.svc.cluster.local'), { for: '10.0.1.2:5555', host: 'echo.default.svc.cluster.local' });
});

test('traceparent is W3C, random per connection, unsampled', () => {
  const a = newTraceparent();
  const b = newTraceparent();
  assert.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.notEqual(a, b);
  assert.deepEqual(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), { traceId: '0af7651916cd43dd8448eb211c80319c', parentId: 'b7ad6b7169203331', flags: '01' });
  assert.equal(parseTraceparent('00-00000000000000000000000000000000-b7ad6b7169203331-01'), undefined);
  assert.equal(parseTraceparent('garbage'), undefined);
});
