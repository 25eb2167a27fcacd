// Test-API pieces that need no cluster: manifest parsing and argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManifestError, parseManifest, startCluster } from './cluster.js';

test('multi-document manifest: empty documents skipped, Lists flattened, order kept', () => {
  const objs = parseManifest(`
---
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
# only a comment
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: demo}, data: {k: v}}
  - {apiVersion: v1, kind: ServiceAccount, metadata: {name: b, namespace: demo}}
---
`);
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata?.name}`), ['Namespace/demo', 'ConfigMap/a', 'ServiceAccount/b']);
});

test('manifest errors name the document', () => {
  assert.throws(() => parseManifest('apiVersion: v1\nkind: A\nmetadata: {name: x}\n---\nkind: [unclosed\n'), (e: Error) => e instanceof ManifestError && /^document 2: /.test(e.message));
  assert.throws(() => parseManifest('apiVersion: v1\nmetadata: {name: x}\n'), /document 1: apiVersion and kind are required/);
  assert.throws(() => parseManifest('apiVersion: v1\nkind: ConfigMap\n'), /document 1 \(ConfigMap\): metadata.name is required/);
  assert.throws(() => parseManifest('- a\n- b\n'), /document 1 is not an object/);
});

test('a node count that is not a whole number >= 0 is refused before anything starts', async () => {
  await assert.rejects(startCluster({ nodes: -1 }), RangeError);
  await assert.rejects(startCluster({ nodes: 1.5 }), RangeError);
});
