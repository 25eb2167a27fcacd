import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostsFile } from './embedded-mesh.js';

test('embedded pods resolve Services by the names CoreDNS answers, the short name only in their own namespace', () => {
  const svc = (name: string, namespace: string, clusterIP?: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: clusterIP ? { clusterIP } : {} });
  const text = hostsFile([svc('reviews', 'bookinfo', '10.96.0.12'), svc('echo', 'other', '10.96.0.13'), svc('pending', 'bookinfo')], 'bookinfo');
  assert.equal(text, [
    '127.0.0.1 localhost',
    '::1 localhost',
    '10.96.0.12 reviews.bookinfo.svc.cluster.local reviews.bookinfo.svc reviews.bookinfo reviews',
    '10.96.0.13 echo.other.svc.cluster.local echo.other.svc echo.other',
    '',
  ].join('\n'));
});
