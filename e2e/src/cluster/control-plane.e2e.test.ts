// The real control plane on loopback (etcd, kube-apiserver, kube-controller-manager, kube-scheduler built by
// scripts/install-k8s-binaries.sh): kubectl works with the admin kubeconfig, TokenRequest and TokenReview work
// with our service-account key, RBAC is enforced, YAML applies and waits work through the test API, a component
// killed midway is reported with its last log lines, and teardown leaves no process and no directory.
// Root-only like every e2e file; it fails (never skips) without root or without the binaries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../netns.js';
import { requireRoot } from '../root.js';
import { k8sBinaries } from './binaries.js';
import { startCluster, type Cluster, type KubernetesObject } from './cluster.js';
import { ControlPlaneProcessExitedError, KubeApiError, type ComponentName, type ControlPlane } from './control-plane.js';

const AUDIENCE = 'istio-ca';

describe('control plane on loopback', () => {
  let cluster: Cluster;
  let cp: ControlPlane;

  before(async () => {
    requireRoot('cluster-in-a-box e2e tests');
    k8sBinaries(); // throws, saying how to build them, when missing
    const started = Date.now();
    cluster = await startCluster();
    cp = cluster.controlPlane;
    const t = cp.timings!;
    // Reported, not asserted: start-up performance belongs to benchmarks.
    console.log(
      `control plane cold start ${Date.now() - started} ms (pki ${t.pki}, etcd ${t.etcd}, apiserver ${t.apiserver}, ` +
        `controller-manager+scheduler ${t.controllersAndScheduler}, default ServiceAccount ${t.defaultServiceAccount})`,
    );
  });

  after(async () => {
    await cluster?.stop();
  });

  test('every component listens on 127.0.0.1 only', async () => {
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const pids = new Set(cp.processes.map((p) => p.pid));
    assert.equal(pids.size, 4);
    const r = await cp.kubectl(['version', '-o', 'json'], { check: true });
    assert.match(r.stdout, /"serverVersion"/);
    const ss = await import('../process.js').then((m) => m.runCommand(['ss', '-Htlnp'], { check: true }));
    const ours = ss.stdout.split('\n').filter((l) => [...pids].some((pid) => l.includes(`pid=${pid},`)));
    assert.ok(ours.length >= 5, `listeners of our components:\n${ours.join('\n')}`);
    for (const line of ours) assert.match(line, /\s127\.0\.0\.1:\d+\s/, `non-loopback listener: ${line}`);
  });

  test('kubectl get ns with the admin kubeconfig', async () => {
    const r = await cluster.kubectl(['get', 'ns', '-o', 'name'], { check: true });
    for (const ns of ['namespace/default', 'namespace/kube-system', 'namespace/kube-public']) assert.ok(r.stdout.includes(ns), r.stdout);
  });

  test('TokenRequest with audience istio-ca, validated by TokenReview as the service account', async () => {
    await cluster.apply('apiVersion: v1\nkind: Namespace\nmetadata: {name: tokens}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: tokens}\n');
    const tr = await cp.client.post<{ status: { token: string; expirationTimestamp: string } }>(
      '/api/v1/namespaces/tokens/serviceaccounts/app/token',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [AUDIENCE], expirationSeconds: 3600 } },
    );
    const token = tr.status.token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iss: string; aud: string[]; sub: string };
    assert.equal(claims.iss, cp.serviceAccountIssuer);
    assert.deepEqual(claims.aud, [AUDIENCE]);
    assert.equal(claims.sub, 'system:serviceaccount:tokens:app');

    type Review = { status: { authenticated?: boolean; user?: { username: string; groups: string[] }; audiences?: string[]; error?: string } };
    const review = (audiences: string[]): Promise<Review> =>
      cp.client.post<Review>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences },
      });
    const ok = await review([AUDIENCE]);
    assert.equal(ok.status.authenticated, true, JSON.stringify(ok.status));
    assert.equal(ok.status.user?.username, 'system:serviceaccount:tokens:app');
    assert.ok(ok.status.user?.groups.includes('system:serviceaccounts:tokens'));
    assert.deepEqual(ok.status.audiences, [AUDIENCE]);
    // The same token for another audience is refused: audiences are enforced.
    const wrong = await review(['https://kubernetes.default.svc.cluster.local']);
    assert.notEqual(wrong.status.authenticated, true);
    // Deleting the service account invalidates its tokens (--service-account-lookup) once the apiserver's
    // authentication cache lets go of the last positive answer (10 s).
    await cp.client.delete('/api/v1/namespaces/tokens/serviceaccounts/app');
    await cp.waitUntil('token of a deleted service account to be refused', async () => (await review([AUDIENCE])).status.authenticated !== true, { timeoutMs: 30_000, intervalMs: 500 });
  });

  test('RBAC: a service-account token cannot list secrets until a Role and RoleBinding grant it', async () => {
    await cluster.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: rbac}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: rbac}
---
apiVersion: v1
kind: Secret
metadata: {name: s1, namespace: rbac}
stringData: {k: v}
`);
    const { status } = await cp.client.post<{ status: { token: string } }>('/api/v1/namespaces/rbac/serviceaccounts/reader/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 600 },
    });
    const asReader = await cp.clientFor({ token: status.token });
    const denied = await asReader.get('/api/v1/namespaces/rbac/secrets').then(
      () => assert.fail('listing secrets should be forbidden'),
      (e: unknown) => e,
    );
    assert.ok(denied instanceof KubeApiError, String(denied));
    assert.equal(denied.status, 403);
    assert.match(denied.message, /User "system:serviceaccount:rbac:reader" cannot list resource "secrets"/);

    await cluster.apply(`
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: rbac}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-reads-secrets, namespace: rbac}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: rbac}]
`);
    const list = await cp.waitUntil(
      'the RoleBinding to take effect',
      () => asReader.get<{ items: KubernetesObject[] }>('/api/v1/namespaces/rbac/secrets'),
      { timeoutMs: 10_000 },
    );
    assert.ok(list.items.some((s) => s.metadata?.name === 's1'));
    // Still nothing outside the namespace the binding covers.
    await assert.rejects(asReader.get('/api/v1/namespaces/default/secrets'), (e: unknown) => e instanceof KubeApiError && e.status === 403);
  });

  test('apply a multi-document manifest and wait for a Deployment to be scheduled by the real controllers', async () => {
    const applied = await cluster.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.invalid/web:1}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.ambit.dev}
spec:
  group: example.ambit.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: example.ambit.dev/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec: {size: 3}
`);
    assert.deepEqual(applied.map((o) => `${o.kind}/${o.metadata?.name}`), ['Namespace/demo', 'Deployment/web', 'CustomResourceDefinition/widgets.example.ambit.dev', 'Widget/w1']);
    // The CRD's own condition, and the controller-manager's work: a ReplicaSet with 2 pods.
    await cluster.waitForCondition({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'widgets.example.ambit.dev' }, 'Established');
    await cluster.waitForCondition({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'demo' }, 'Progressing');
    const pods = await cp.waitUntil(
      '2 pods of deployment web',
      async () => {
        const l = await cp.client.get<{ items: KubernetesObject[] }>('/api/v1/namespaces/demo/pods?labelSelector=app%3Dweb');
        return l.items.length === 2 ? l.items : undefined;
      },
      { timeoutMs: 20_000 },
    );
    // Every pod got a projected service-account token volume (ServiceAccount admission, no legacy secrets).
    for (const p of pods) {
      const vols = (p as { spec: { volumes?: { name: string; projected?: unknown }[] } }).spec.volumes ?? [];
      assert.ok(vols.some((v) => v.name.startsWith('kube-api-access-') && v.projected), JSON.stringify(vols));
    }
    // Re-applying is idempotent; the Widget round-trips.
    await cluster.apply(applied);
    const w = await cluster.get({ apiVersion: 'example.ambit.dev/v1', kind: 'Widget', name: 'w1', namespace: 'demo' });
    assert.deepEqual(w?.spec, { size: 3 });
    await cluster.delete('apiVersion: example.ambit.dev/v1\nkind: Widget\nmetadata: {name: w1, namespace: demo}\n', { wait: true });
    assert.equal(await cluster.get({ apiVersion: 'example.ambit.dev/v1', kind: 'Widget', name: 'w1', namespace: 'demo' }), undefined);
  });

  test('a server-side error names the document', async () => {
    await assert.rejects(
      cluster.apply('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 99999}]}\n'),
      /apply Service default\/bad \(document 2\): PATCH .*HTTP 422 Invalid: .*99999/,
    );
    await assert.rejects(cluster.apply('apiVersion: nope.example/v1\nkind: Thing\nmetadata: {name: x}\n'), /the server has no nope.example\/v1 Thing/);
  });
});

for (const victim of ['etcd', 'kube-apiserver'] as ComponentName[]) {
  test(`killing ${victim} midway is reported with its last log lines, and teardown leaves nothing`, async () => {
    requireRoot('cluster-in-a-box e2e tests');
    const base = mkdtempSync(join(tmpdir(), 'ambit-cp-kill-'));
    let c: Cluster | undefined;
    try {
      c = await startCluster({ baseDir: base });
      const cp = c.controlPlane;
      const pids = cp.processes.map((p) => p.pid);
      const seen: ControlPlaneProcessExitedError[] = [];
      cp.onFailure((e) => seen.push(e));
      const pid = cp.process(victim).pid;
      // A wait of the test API in progress fails with the death, not with a timeout.
      const waiting = c.waitForCondition({ apiVersion: 'v1', kind: 'Namespace', name: 'never' }, 'Ready', { timeoutMs: 60_000 });
      process.kill(pid, 'SIGKILL');
      const err = await waiting.then(() => assert.fail('wait should fail'), (e: unknown) => e);
      assert.ok(err instanceof ControlPlaneProcessExitedError, String(err));
      assert.equal(err.component, victim);
      assert.equal(err.pid, pid);
      assert.match(err.message, new RegExp(`^${victim} \\(pid ${pid}\\) was killed by SIGKILL; last log lines:\\n`));
      assert.ok(err.lastLogLines.length > 0, 'the log had lines');
      assert.equal(cp.failure, err);
      assert.equal(seen[0], err);
      // Later waits and applies fail at once with the same cause.
      await assert.rejects(c.apply('apiVersion: v1\nkind: Namespace\nmetadata: {name: late}\n'), (e: unknown) => e === err);
      await c.stop();
      for (const p of pids) assert.ok(!isProcessAlive(p), `pid ${p} still alive`);
      assert.ok(!existsSync(cp.dir), `${cp.dir} left behind`);
      assert.deepEqual(readdirSync(base), []);
    } finally {
      await c?.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });
}

test('teardown after a normal run leaves no process and no directory', async () => {
  requireRoot('cluster-in-a-box e2e tests');
  const c = await startCluster();
  const pids = c.controlPlane.processes.map((p) => p.pid);
  const dir = c.controlPlane.dir;
  const logs = mkdtempSync(join(tmpdir(), 'ambit-cp-logs-'));
  try {
    assert.deepEqual(c.collectLogs(logs).map((f) => f.slice(logs.length + 1)).sort(), ['etcd.log', 'kube-apiserver.log', 'kube-controller-manager.log', 'kube-scheduler.log']);
    await c.stop();
    for (const p of pids) assert.ok(!isProcessAlive(p), `pid ${p} still alive`);
    assert.ok(!existsSync(dir));
    await c.stop(); // twice is fine
  } finally {
    rmSync(logs, { recursive: true, force: true });
  }
});
