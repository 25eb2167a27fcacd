import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigFile } from '../src/index.js';

test('multi-document YAML and Lists become objects with defaults the apiserver would add', () => {
  const objs = parseConfigFile('mesh.yaml', [
    'apiVersion: v1', 'kind: Namespace', 'metadata: {name: demo, labels: {istio.io/dataplane-mode: ambient}}', '---',
    'kind: Service', 'metadata: {name: web}', 'spec: {ports: [{port: 80}]}', '---', '# only a comment', '---',
    'apiVersion: v1', 'kind: List', 'items:', '- {kind: Pod, metadata: {name: p, namespace: demo}}',
  ].join('\n'));
  assert.deepEqual(objs.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`), ['Namespace /demo', 'Service default/web', 'Pod demo/p']);
  assert.equal(objs[1]!.apiVersion, 'v1');
  assert.match(objs[2]!.metadata.uid!, /^[0-9a-f]{8}-/);
  assert.equal(parseConfigFile('x.yaml', 'kind: Pod\nmetadata: {name: p, namespace: demo}')[0]!.metadata.uid, objs[2]!.metadata.uid, 'uid is stable');
});

test('errors name the file, the line and the field', () => {
  assert.throws(() => parseConfigFile('bad.yaml', 'kind: Pod\nmetadata:\n  name: a\nkind: Service\n'), /^Error: bad.yaml:4:1: Map keys must be unique/);
  assert.throws(() => parseConfigFile('a.yaml', 'kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {}\n'), /a.yaml:4: Pod: metadata.name: required/);
  assert.throws(() => parseConfigFile('b.yaml', 'kind: Deployment\nmetadata: {name: d}\n'), /b.yaml:1: kind: "Deployment" is not one the controller uses/);
  assert.throws(() => parseConfigFile('c.yaml', '- 1\n- 2\n'), /c.yaml:1: a document must be a Kubernetes object \(a mapping\), got a list/);
  assert.throws(() => parseConfigFile('d.yaml', 'apiVersion: apps/v1\nkind: Service\nmetadata: {name: s}\n'), /d.yaml:1: Service s: apiVersion: "apps\/v1" is not v1/);
});
