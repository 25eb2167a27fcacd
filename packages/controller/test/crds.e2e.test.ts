// The chart's Istio CRDs on a real kube-apiserver: they install and become Established, valid Istio objects are
// accepted under every served version (and pass our own validation too), printer columns and short names work
// with kubectl, unknown fields are pruned, and a type-wrong object is refused by the apiserver with the field named.
// Root-only like every e2e file; it fails (never skips) without root or without the Kubernetes binaries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiError, k8sBinaries, requireRoot, startControlPlane, waitFor, type ControlPlane } from '@ambit/e2e';
import { validateObject, type KubeObject } from '@ambit/api';
import { loadCrdFiles } from './crd-files.js';

const NS = 'crd-e2e';
const MANAGER = 'ambit-crd-e2e';

const VALID: KubeObject[] = [
  {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS },
    spec: {
      hosts: ['reviews'],
      http: [
        { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } }, uri: { prefix: '/' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], timeout: '1.5s', retries: { attempts: 3, perTryTimeout: '100ms' } },
        { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 90 }, { destination: { host: 'reviews', subset: 'v3' }, weight: 10 }] },
      ],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: NS },
    spec: {
      host: 'reviews',
      trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { tcp: { maxConnections: 100 } }, outlierDetection: { consecutive5xxErrors: 5, interval: '10s' } },
      subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }, { name: 'v3', labels: { version: 'v3' } }],
    },
  },
  {
    apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'reviews-viewer', namespace: NS },
    spec: {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }], to: [{ operation: { methods: ['GET'] } }] }],
    },
  },
];

function path(obj: KubeObject, version?: string): string {
  const [group, v] = obj.apiVersion!.split('/') as [string, string];
  const plural = { VirtualService: 'virtualservices', DestinationRule: 'destinationrules', AuthorizationPolicy: 'authorizationpolicies' }[obj.kind!]!;
  return `/apis/${group}/${version ?? v}/namespaces/${obj.metadata.namespace}/${plural}`;
}

/** Creates an object; resolves with the apiserver's refusal when it refuses (so tests can assert on it). */
async function create(cp: ControlPlane, obj: KubeObject): Promise<KubeApiError | Record<string, any>> {
  try {
    return await cp.client.post(path(obj), obj);
  } catch (err) {
    if (err instanceof KubeApiError) return err;
    throw err;
  }
}

describe('Istio CRDs on a real apiserver', () => {
  let cp: ControlPlane;

  before(async () => {
    requireRoot('CRD e2e tests');
    k8sBinaries(); // throws, saying how to build them, when missing
    cp = await startControlPlane();
    const crds = loadCrdFiles().flatMap((f) => f.documents);
    for (const crd of crds) {
      await cp.client.apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd, { fieldManager: MANAGER });
    }
    for (const crd of crds) {
      await waitFor(async () => {
        const got = await cp.client.get<{ status?: { conditions?: { type: string; status: string; message?: string }[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
        const conds = got.status?.conditions ?? [];
        const bad = conds.find((c) => c.type === 'NonStructuralSchema' && c.status === 'True');
        if (bad) throw new Error(`${crd.metadata.name} is not structural: ${bad.message}`);
        return conds.some((c) => c.type === 'Established' && c.status === 'True');
      }, { timeoutMs: 30_000, intervalMs: 100, message: `${crd.metadata.name} Established` });
    }
    await cp.client.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });

  after(async () => {
    await cp?.stop();
  });

  test('every CRD is Established, and the discovery lists each kind with its short name', async () => {
    const r = await cp.kubectl(['api-resources', '--api-group=networking.istio.io', '-o', 'wide'], { check: true });
    for (const line of ['virtualservices', 'destinationrules', 'serviceentries', 'workloadentries']) assert.match(r.stdout, new RegExp(line), r.stdout);
    const sec = await cp.kubectl(['api-resources', '--api-group=security.istio.io'], { check: true });
    assert.match(sec.stdout, /authorizationpolicies\s+ap\s+security\.istio\.io\/v1\s+true\s+AuthorizationPolicy/);
    const tel = await cp.kubectl(['api-resources', '--api-group=telemetry.istio.io'], { check: true });
    assert.match(tel.stdout, /telemetries\s+telemetry\s+telemetry\.istio\.io\/v1\s+true\s+Telemetry/);
  });

  test('valid VirtualService, DestinationRule and AuthorizationPolicy are accepted and pass our validation', async () => {
    for (const obj of VALID) {
      assert.deepEqual(validateObject(obj).filter((d) => d.severity === 'Error'), [], `${obj.kind} is valid for Ambit too`);
      const created = await create(cp, obj);
      assert.ok(!(created instanceof KubeApiError), `${obj.kind}: ${created instanceof Error ? created.message : ''}`);
      assert.deepEqual((created as { spec: unknown }).spec, obj.spec, `${obj.kind} stored as written`);
    }
    const vs = await cp.kubectl(['get', 'vs', '-n', NS], { check: true });
    assert.match(vs.stdout, /^NAME\s+GATEWAYS\s+HOSTS\s+AGE/m);
    assert.match(vs.stdout, /^reviews\s+\s*\["reviews"\]/m);
    const dr = await cp.kubectl(['get', 'dr', '-n', NS], { check: true });
    assert.match(dr.stdout, /^NAME\s+HOST\s+AGE\nreviews\s+reviews\s/m);
    const ap = await cp.kubectl(['get', 'ap', '-n', NS], { check: true });
    assert.match(ap.stdout, /^NAME\s+ACTION\s+AGE\nreviews-viewer\s+ALLOW\s/m);
  });

  test('older served versions read the same objects', async () => {
    const vs = VALID[0]!;
    for (const version of ['v1beta1', 'v1alpha3']) {
      const got = await cp.client.get<{ apiVersion: string; spec: unknown }>(`${path(vs, version)}/reviews`);
      assert.equal(got.apiVersion, `networking.istio.io/${version}`);
      assert.deepEqual(got.spec, vs.spec);
    }
    const ap = await cp.client.get<{ spec: unknown }>(`${path(VALID[2]!, 'v1beta1')}/reviews-viewer`);
    assert.deepEqual(ap.spec, VALID[2]!.spec);
  });

  test('a type-wrong field is refused by the apiserver with the field named', async () => {
    const badWeight: KubeObject = {
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad-weight', namespace: NS },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: 'abc' }] }] },
    };
    const e1 = await create(cp, badWeight);
    assert.ok(e1 instanceof KubeApiError, 'refused');
    assert.equal(e1.status, 422);
    assert.match(e1.message, /spec\.http\[0\]\.route\[0\]\.weight/);
    assert.match(e1.message, /must be of type integer/);

    const badSubsets: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'bad-subsets', namespace: NS }, spec: { host: 'reviews', subsets: 'v1' } };
    const e2 = await create(cp, badSubsets);
    assert.ok(e2 instanceof KubeApiError && e2.status === 422, String(e2));
    assert.match(e2.message, /spec\.subsets: Invalid value: "string": spec\.subsets in body must be of type array/);

    const badAction: KubeObject = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'bad-action', namespace: NS }, spec: { action: 'MAYBE' } };
    const e3 = await create(cp, badAction);
    assert.ok(e3 instanceof KubeApiError && e3.status === 422, String(e3));
    assert.match(e3.message, /spec\.action: Unsupported value: "MAYBE"/);

    const twoMatches: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'two-matches', namespace: NS }, spec: { hosts: ['r'], http: [{ match: [{ uri: { exact: '/a', prefix: '/b' } }], route: [{ destination: { host: 'r' } }] }] } };
    const e4 = await create(cp, twoMatches);
    assert.ok(e4 instanceof KubeApiError && e4.status === 422, String(e4));
    assert.match(e4.message, /spec\.http\[0\]\.match\[0\]\.uri/);

    for (const name of ['bad-weight', 'bad-subsets', 'bad-action', 'two-matches']) {
      const listed = await cp.kubectl(['get', 'vs,dr,ap', '-n', NS, '-o', 'name'], { check: true });
      assert.ok(!listed.stdout.includes(`/${name}\n`), `${name} was not stored`);
    }
  });

  test('unknown fields are pruned, not stored', async () => {
    const obj: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'pruned', namespace: NS }, spec: { host: 'reviews', bogusField: 1, subsets: [{ name: 'v1', extra: 'x' }] } };
    const created = await create(cp, obj);
    assert.ok(!(created instanceof KubeApiError), String(created));
    assert.deepEqual((created as { spec: unknown }).spec, { host: 'reviews', subsets: [{ name: 'v1' }] });
  });
});
