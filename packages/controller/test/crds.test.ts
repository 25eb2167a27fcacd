// The chart's Istio CRDs: parseable, structural (what the apiserver requires of apiextensions.k8s.io/v1), and one
// per watched Istio kind with the group, plural and storage version the controller watches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { WATCHED_KINDS } from '@ambit/api';
import { loadCrdFiles } from './crd-files.js';

const ISTIO_GROUPS = ['networking.istio.io', 'security.istio.io', 'telemetry.istio.io'];
const SHORT_NAMES: Record<string, string> = {
  VirtualService: 'vs', DestinationRule: 'dr', ServiceEntry: 'se', WorkloadEntry: 'we',
  AuthorizationPolicy: 'ap', PeerAuthentication: 'pa', RequestAuthentication: 'ra', Telemetry: 'telemetry',
};
const SERVED: Record<string, string[]> = {
  'networking.istio.io': ['v1', 'v1beta1', 'v1alpha3'],
  'security.istio.io': ['v1', 'v1beta1'],
  'telemetry.istio.io': ['v1', 'v1alpha1'],
};
/** Keys a logical junctor (oneOf/anyOf/allOf/not) may hold in a structural schema. */
const JUNCTOR_KEYS = new Set(['required', 'not', 'anyOf', 'allOf', 'oneOf', 'properties', 'items', 'pattern', 'minimum', 'maximum', 'enum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'format']);

/** Problems that make a schema non-structural, with their paths. */
function structuralProblems(schema: unknown, path: string, out: string[] = []): string[] {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) {
    out.push(`${path}: not a schema object`);
    return out;
  }
  const s = schema as Record<string, any>;
  const free = s['x-kubernetes-preserve-unknown-fields'] === true || s['x-kubernetes-int-or-string'] === true;
  if (typeof s.type !== 'string' && !free) out.push(`${path}: no type`);
  if (s.properties && s.additionalProperties !== undefined) out.push(`${path}: both properties and additionalProperties`);
  if (s.type === 'array' && !s.items) out.push(`${path}: array without items`);
  if (s.type !== 'object' && (s.properties || s.additionalProperties)) out.push(`${path}: properties on a non-object`);
  for (const [k, v] of Object.entries(s.properties ?? {})) structuralProblems(v, `${path}.${k}`, out);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') structuralProblems(s.additionalProperties, `${path}[*]`, out);
  if (s.items) structuralProblems(s.items, `${path}[]`, out);
  for (const j of ['oneOf', 'anyOf', 'allOf']) for (const [i, sub] of ((s[j] as unknown[]) ?? []).entries()) junctorProblems(sub, s, `${path}.${j}[${i}]`, out);
  if (s.not) junctorProblems(s.not, s, `${path}.not`, out);
  if (Array.isArray(s.required)) for (const r of s.required) if (!s.properties?.[r]) out.push(`${path}: required ${r} is not a property`);
  return out;
}

function junctorProblems(sub: unknown, parent: Record<string, any>, path: string, out: string[]): void {
  const s = sub as Record<string, any>;
  for (const k of Object.keys(s)) if (!JUNCTOR_KEYS.has(k)) out.push(`${path}: ${k} is not allowed inside a logical junctor`);
  for (const r of (s.required as string[] | undefined) ?? []) if (!parent.properties?.[r]) out.push(`${path}: required ${r} is not a property of the enclosing schema`);
  for (const j of ['oneOf', 'anyOf', 'allOf']) for (const [i, x] of ((s[j] as unknown[]) ?? []).entries()) junctorProblems(x, parent, `${path}.${j}[${i}]`, out);
  if (s.not) junctorProblems(s.not, parent, `${path}.not`, out);
}

const files = loadCrdFiles();
const crds = files.flatMap((f) => f.documents.map((d) => ({ file: basename(f.path), crd: d })));

test('one CRD file per Istio API group, each holding only that group', () => {
  assert.deepEqual(files.map((f) => basename(f.path)), ISTIO_GROUPS.map((g) => `${g}.yaml`).sort());
  for (const { file, crd } of crds) {
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1', file);
    assert.equal(crd.kind, 'CustomResourceDefinition', file);
    assert.equal(`${crd.spec.group}.yaml`, file, `${crd.metadata.name} is in ${file}`);
    assert.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
  }
});

test('every schema of every served version is structural', () => {
  for (const { crd } of crds) {
    for (const v of crd.spec.versions) {
      const schema = v.schema?.openAPIV3Schema;
      assert.ok(schema, `${crd.metadata.name} ${v.name} has no schema`);
      assert.deepEqual(structuralProblems(schema, `${crd.metadata.name}/${v.name}`), []);
      assert.equal(schema.properties.spec.type, 'object');
      assert.equal(schema.properties.status['x-kubernetes-preserve-unknown-fields'], true, 'status keeps what the controller writes');
      assert.deepEqual(v.subresources, { status: {} }, `${crd.metadata.name} ${v.name} has the status subresource`);
    }
  }
});

test('the structural check itself catches type-less nodes and junctors that declare types', () => {
  assert.deepEqual(structuralProblems({ type: 'object', properties: { a: { description: 'x' } } }, 'x'), ['x.a: no type']);
  assert.deepEqual(structuralProblems({ type: 'object', properties: { a: { type: 'string' } }, oneOf: [{ type: 'string', required: ['a'] }] }, 'x'), ['x.oneOf[0]: type is not allowed inside a logical junctor']);
  assert.deepEqual(structuralProblems({ type: 'array' }, 'x'), ['x: array without items']);
});

test('each watched Istio kind has its CRD with the group, plural, short name and versions the controller expects', () => {
  const istioKinds = Object.entries(WATCHED_KINDS).filter(([, k]) => ISTIO_GROUPS.includes(k.group));
  assert.equal(istioKinds.length, 8);
  for (const [kind, w] of istioKinds) {
    const found = crds.filter(({ crd }) => crd.spec.names.kind === kind);
    assert.equal(found.length, 1, `one CRD for ${kind}`);
    const crd = found[0]!.crd;
    assert.equal(crd.spec.group, w.group);
    assert.equal(crd.spec.names.plural, w.plural);
    assert.equal(crd.spec.scope, w.namespaced ? 'Namespaced' : 'Cluster');
    assert.ok(crd.spec.names.shortNames.includes(SHORT_NAMES[kind]), `${kind} short name ${SHORT_NAMES[kind]}`);
    const versions = crd.spec.versions as { name: string; served: boolean; storage: boolean }[];
    assert.deepEqual(versions.map((v) => v.name).sort(), [...SERVED[w.group]!].sort(), `${kind} served versions`);
    assert.ok(versions.every((v) => v.served));
    assert.deepEqual(versions.filter((v) => v.storage).map((v) => v.name), [w.version], `${kind} stores ${w.version}`);
  }
  assert.equal(crds.length, 8, 'no CRDs beyond the watched Istio kinds');
});

test('printer columns use JSON paths into fields the schema defines', () => {
  for (const { crd } of crds) {
    for (const v of crd.spec.versions) {
      for (const col of v.additionalPrinterColumns ?? []) {
        if (col.jsonPath === '.metadata.creationTimestamp') continue;
        let node = v.schema.openAPIV3Schema;
        for (const part of String(col.jsonPath).slice(1).split('.')) node = node?.properties?.[part];
        assert.ok(node?.type, `${crd.metadata.name} column ${col.name}: ${col.jsonPath} is not in the schema`);
      }
    }
  }
});
