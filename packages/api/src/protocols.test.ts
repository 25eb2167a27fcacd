import { test } from 'node:test';
import assert from 'node:assert/strict';
import { declaredServiceEntryPortProtocol, declaredServicePortProtocol, isOpaqueProtocol, waypointServiceView } from './protocols.js';

test('a Service port declares its protocol by appProtocol first, then by name prefix, as Istio parses them', () => {
  assert.equal(declaredServicePortProtocol({ name: 'http-web' }), 'http');
  assert.equal(declaredServicePortProtocol({ name: 'TCP' }), 'tcp');
  assert.equal(declaredServicePortProtocol({ name: 'mysql' }), 'mysql');
  assert.equal(declaredServicePortProtocol({ name: 'grpc-web' }), 'grpc-web');
  assert.equal(declaredServicePortProtocol({ name: 'grpc-api' }), 'grpc');
  assert.equal(declaredServicePortProtocol({ name: 'http', appProtocol: 'tcp' }), 'tcp', 'appProtocol wins');
  assert.equal(declaredServicePortProtocol({ name: 'tcp', appProtocol: 'kubernetes.io/h2c' }), 'http2');
  assert.equal(declaredServicePortProtocol({ name: 'tcp', appProtocol: 'example.com/custom' }), 'tcp', 'an unknown appProtocol falls back to the name');
  assert.equal(declaredServicePortProtocol({ name: 'web' }), undefined, 'undeclared: detected');
  assert.equal(declaredServicePortProtocol({}), undefined);
  assert.equal(declaredServiceEntryPortProtocol({ protocol: 'TLS' }), 'tls');
  assert.equal(declaredServiceEntryPortProtocol({ protocol: 'HTTP' }), 'http');
  assert.equal(declaredServiceEntryPortProtocol({}), undefined);
  for (const p of ['tcp', 'tls', 'https', 'mongo', 'mysql', 'redis'] as const) assert.ok(isOpaqueProtocol(p), p);
  for (const p of ['http', 'http2', 'grpc', 'grpc-web', undefined] as const) assert.ok(!isOpaqueProtocol(p), String(p));
});

test('waypointServiceView keeps the name and the opaque TCP ports only; nothing opaque: undefined', () => {
  const view = waypointServiceView({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'shop', labels: { a: 'b' }, generation: 3 },
    spec: { ports: [{ name: 'http', port: 80 }, { name: 'tls-x', port: 443 }, { name: 'tcp', port: 53, protocol: 'UDP' }], selector: { app: 'db' } },
  });
  assert.deepEqual(view, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'shop', generation: 3 }, spec: { ports: [{ name: 'tls-x', port: 443 }] } });
  assert.equal(waypointServiceView({ kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } }), undefined);
  assert.equal(waypointServiceView({ kind: 'Service', metadata: { name: 'none', namespace: 'shop' } }), undefined);
});
