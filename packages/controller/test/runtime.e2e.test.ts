// The controller runtime against a real kube-apiserver (startControlPlane from @ambit/e2e): TokenReview
// authentication with bound tokens, two replicas agreeing on one CA Secret, the root ConfigMap published and
// repaired in every namespace by the leader only, leadership lost the moment another holder takes the Lease, and
// failover between two controller processes when the leader is killed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createMemoryIndex } from '../src/translate/object-index.js';
import { k8sBinaries, requireRoot, startControlPlane, KubeApiError, type ControlPlane } from '@ambit/e2e';
import {
  createApp, createInformers, createKubeRest, createWorkQueue, createTokenReviewAuthenticator, loadKubeConfig, loadSettings, type App, type CallerIdentity,
} from '../src/index.js';

const NS = 'istio-system';
const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');
const silent = pino({ level: 'silent' });

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function httpGetJson(port: number, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    }).on('error', reject).end();
  });
}

describe('controller runtime on a real control plane', () => {
  let cp: ControlPlane;
  const apps: App[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    requireRoot('controller runtime e2e tests');
    k8sBinaries();
    cp = await startControlPlane();
    await cp.client.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(apps.map((a) => a.stop('test cleanup').catch(() => undefined)));
    await cp?.stop();
  });

  function settingsFor(podName: string, lease: string, extra: Record<string, string> = {}): ReturnType<typeof loadSettings> {
    return loadSettings({
      KUBECONFIG: cp.kubeconfigPath, POD_NAME: podName, POD_NAMESPACE: NS, AMBIT_XDS_PORT: '0', AMBIT_MONITORING_PORT: '0',
      AMBIT_XDS_HOST: '127.0.0.1', AMBIT_MONITORING_HOST: '127.0.0.1', AMBIT_LEADER_LEASE_NAME: lease, ...extra,
    });
  }

  test('informers: a kind whose CRD is missing does not block sync and starts once the CRD is installed; events reach index and queue', async () => {
    const rest = createKubeRest(loadKubeConfig({ kind: 'kubeconfig', path: cp.kubeconfigPath }));
    const index = createMemoryIndex();
    const keys: string[] = [];
    const queue = createWorkQueue<string>({ process: (k) => void keys.push(...k), logger: silent });
    const informers = createInformers({ rest, index, queue, logger: silent, kinds: ['Namespace', 'ServiceEntry'], missingRetryMs: 300 });
    try {
      informers.start();
      await until('informers synced', () => informers.synced(), 15_000);
      assert.equal(informers.status().ServiceEntry!.state, 'missing');
      assert.match(informers.status().ServiceEntry!.lastError!, /serviceentries.networking.istio.io\/v1 is not served/);
      assert.ok(index.get('Namespace', '', NS), 'namespaces listed');

      await cp.client.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'watched' } });
      await until('namespace add reaches the queue', () => keys.includes('Namespace//watched'), 10_000);

      const crdFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'charts', 'ambit', 'crds', 'networking.istio.io.yaml');
      const crd = parseAllDocuments(readFileSync(crdFile, 'utf8')).map((d) => d.toJS()).find((o) => o?.metadata?.name === 'serviceentries.networking.istio.io');
      assert.ok(crd, `ServiceEntry CRD in ${crdFile}`);
      await cp.client.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
      await until('ServiceEntry informer watching', () => informers.status().ServiceEntry!.state === 'watching', 20_000);
      await cp.client.post('/apis/networking.istio.io/v1/namespaces/watched/serviceentries', {
        apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'ext' },
        spec: { hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
      });
      const se = await until('ServiceEntry in the index', () => index.get('ServiceEntry', 'watched', 'ext'), 10_000);
      assert.equal(se.kind, 'ServiceEntry');
      assert.equal(se.metadata.managedFields, undefined, 'managedFields dropped');
      await cp.client.delete('/apis/networking.istio.io/v1/namespaces/watched/serviceentries/ext');
      await until('ServiceEntry deletion reaches the index', () => index.get('ServiceEntry', 'watched', 'ext') === undefined, 10_000);
      await queue.drained();
      assert.ok(keys.filter((k) => k === 'ServiceEntry/watched/ext').length >= 2, 'add and delete were queued');
    } finally {
      await informers.stop();
      await queue.stop();
      rest.close();
    }
  });

  test('TokenReview: a bound istio-ca token is accepted with its pod; wrong audience, a forged token, a non-JWT and the token of a deleted pod are refused with why', async () => {
    await cp.client.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tokens' } });
    await cp.client.post('/api/v1/namespaces/tokens/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app' } });
    const pod = await cp.client.post<{ metadata: { uid: string } }>('/api/v1/namespaces/tokens/pods', {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app-1' }, spec: { serviceAccountName: 'app', containers: [{ name: 'c', image: 'echo' }] },
    });
    const tokenFor = async (audiences: string[], bound = true): Promise<string> => (await cp.client.post<{ status: { token: string } }>(
      '/api/v1/namespaces/tokens/serviceaccounts/app/token',
      {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
        spec: { audiences, expirationSeconds: 3600, ...(bound ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'app-1', uid: pod.metadata.uid } } : {}) },
      },
    )).status.token;

    const rest = createKubeRest(loadKubeConfig({ kind: 'kubeconfig', path: cp.kubeconfigPath }));
    try {
      const authenticate = createTokenReviewAuthenticator({ rest, logger: silent });
      const ok = await authenticate(await tokenFor(['istio-ca']));
      assert.deepEqual(ok, { namespace: 'tokens', serviceAccount: 'app', podName: 'app-1', podUid: pod.metadata.uid } satisfies CallerIdentity);
      const unbound = await authenticate(await tokenFor(['istio-ca'], false));
      assert.deepEqual(unbound, { namespace: 'tokens', serviceAccount: 'app' });

      const wrongAudience = await authenticate(await tokenFor(['vault']));
      assert.ok(wrongAudience instanceof Error);
      assert.match(wrongAudience.message, /the token is for audience vault, not istio-ca/);

      const good = await tokenFor(['istio-ca']);
      const [h, p, s] = good.split('.');
      const forged = `${h}.${p}.${s!.slice(0, -6)}${s!.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`;
      const forgedResult = await authenticate(forged);
      assert.ok(forgedResult instanceof Error);
      assert.match(forgedResult.message, /TokenReview did not authenticate the token of system:serviceaccount:tokens:app: /);

      const notJwt = await authenticate('not-a-token');
      assert.ok(notJwt instanceof Error && /not a JWT/.test(notJwt.message));

      // Deleting the pod invalidates its bound token (after the cache's short TTL).
      await cp.client.delete('/api/v1/namespaces/tokens/pods/app-1?gracePeriodSeconds=0');
      const fresh = createTokenReviewAuthenticator({ rest, logger: silent });
      const afterDelete = await until('bound token of a deleted pod to be refused', async () => {
        const r = await fresh(good);
        return r instanceof Error ? r : undefined;
      }, 30_000);
      assert.match(afterDelete.message, /TokenReview did not authenticate/);
    } finally {
      rest.close();
    }
  });

  test('two replicas share one CA Secret; only the leader publishes and repairs istio-ca-root-cert; losing the Lease stops leader work at once', async () => {
    const a = createApp(settingsFor('ctl-a', 'lease-inproc'), { logger: silent, registry: new Registry() });
    const b = createApp(settingsFor('ctl-b', 'lease-inproc'), { logger: silent, registry: new Registry() });
    apps.push(a, b);
    await Promise.all([a.start(), b.start()]); // both race to create istio-ca-secret
    assert.equal(a.ca()!.rootCertPem, b.ca()!.rootCertPem);
    const secret = await cp.client.get<{ type: string; data: Record<string, string> }>(`/api/v1/namespaces/${NS}/secrets/istio-ca-secret`);
    assert.equal(secret.type, 'istio.io/ca-root');
    assert.equal(Buffer.from(secret.data['ca-cert.pem']!, 'base64').toString(), a.ca()!.rootCertPem);
    assert.ok(a.ready() && b.ready());

    const leader = await until('one leader', () => (a.leading() !== b.leading() ? (a.leading() ? a : b) : undefined), 10_000);
    const follower = leader === a ? b : a;
    const lease = await cp.client.get<{ spec: { holderIdentity: string; leaseDurationSeconds: number } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/lease-inproc`);
    assert.equal(lease.spec.holderIdentity, leader === a ? 'ctl-a' : 'ctl-b');
    assert.equal(lease.spec.leaseDurationSeconds, 15);

    const root = a.ca()!.rootCertPem;
    const cmPath = (ns: string): string => `/api/v1/namespaces/${ns}/configmaps/istio-ca-root-cert`;
    const rootIn = async (ns: string): Promise<string | undefined> => (await cp.client.find<{ data?: Record<string, string> }>(cmPath(ns)))?.data?.['root-cert.pem'];
    await until('root ConfigMap in default', async () => (await rootIn('default')) === root, 15_000);
    await cp.client.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });
    await until('root ConfigMap in the new namespace team-a', async () => (await rootIn('team-a')) === root, 15_000);

    await cp.client.request('PATCH', cmPath('team-a'), { data: { 'root-cert.pem': 'tampered' } }, 'application/merge-patch+json');
    await until('edited ConfigMap repaired', async () => (await rootIn('team-a')) === root, 15_000);
    await cp.client.delete(cmPath('team-a'));
    await until('deleted ConfigMap recreated', async () => (await rootIn('team-a')) === root, 15_000);

    // Someone else takes the Lease (a replica behind a partition would see the same): the leader must notice on
    // its next renewal and stop leader work, without waiting for its own lease to run out.
    const current = await cp.client.get<Record<string, any>>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/lease-inproc`);
    current.spec.holderIdentity = 'intruder';
    current.spec.leaseDurationSeconds = 3600;
    await cp.client.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/lease-inproc`, current);
    const t0 = Date.now();
    await until('old leader to stop leader work', () => !leader.leading(), 10_000);
    console.log(`leader work stopped ${Date.now() - t0} ms after the Lease was taken`);
    assert.equal(follower.leading(), false, 'the follower does not take a Lease that is validly held');
    assert.equal(leader.leader()!.status().holder, 'intruder');

    // Without a leader nobody repairs the ConfigMap.
    await cp.client.delete(cmPath('team-a'));
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await rootIn('team-a'), undefined);

    await Promise.all([a.stop(), b.stop()]);
  });

  test('failover between two controller processes: kill -9 the leader, the other takes the Lease within the lease duration; SIGTERM releases it', async () => {
    const spawnController = async (podName: string): Promise<{ child: ChildProcess; monitoring: number; output: () => string }> => {
      const monitoring = await freePort();
      const child = spawn(process.execPath, [MAIN], {
        env: {
          PATH: process.env.PATH, KUBECONFIG: cp.kubeconfigPath, POD_NAME: podName, POD_NAMESPACE: NS,
          AMBIT_XDS_PORT: String(await freePort()), AMBIT_XDS_HOST: '127.0.0.1', AMBIT_MONITORING_PORT: String(monitoring),
          AMBIT_MONITORING_HOST: '127.0.0.1', AMBIT_LEADER_LEASE_NAME: 'lease-processes', LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
      return { child, monitoring, output: () => out };
    };
    const p1 = await spawnController('proc-1');
    const p2 = await spawnController('proc-2');
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/lease-processes`;
    const holder = async (): Promise<string | undefined> => {
      try {
        return (await cp.client.get<{ spec: { holderIdentity?: string } }>(leasePath)).spec.holderIdentity ?? undefined;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return undefined;
        throw err;
      }
    };
    try {
      const first = await until('a process to hold the Lease', holder, 30_000);
      const [leaderProc, other] = first === 'proc-1' ? [p1, p2] : [p2, p1];
      const debug = await until('the leader reports leadership on /debug/syncz', async () => {
        const d = await httpGetJson(leaderProc.monitoring, '/debug/syncz');
        return d.leader?.leader === true ? d : undefined;
      }, 30_000);
      assert.equal(debug.leader.identity, first);
      const otherDebug = await until('the other replica is ready', async () => {
        const d = await httpGetJson(other.monitoring, '/debug/syncz');
        return d.leader ? d : undefined;
      }, 30_000);
      assert.equal(otherDebug.leader.leader, false);

      const killedAt = Date.now();
      leaderProc.child.kill('SIGKILL');
      const second = await until('the other process to take the Lease', async () => {
        const h = await holder();
        return h && h !== first ? h : undefined;
      }, 30_000);
      const took = Date.now() - killedAt;
      console.log(`failover took ${took} ms (lease duration 15 s, retry period 2 s)`);
      assert.equal(second, other === p1 ? 'proc-1' : 'proc-2');
      assert.ok(took <= 15_000 + 2 * 2_400 + 2_000, `failover within about the lease duration, took ${took} ms`);
      await until('the new leader reports leadership', async () => (await httpGetJson(other.monitoring, '/debug/syncz')).leader?.leader === true, 10_000);

      const exited = new Promise<number | null>((r) => other.child.once('exit', (code) => r(code)));
      other.child.kill('SIGTERM');
      assert.equal(await exited, 0, `graceful exit; output:\n${other.output().slice(-3000)}`);
      assert.equal(await holder(), undefined, 'the Lease is released on SIGTERM');
    } catch (err) {
      console.log(`proc-1 output:\n${p1.output().slice(-4000)}\nproc-2 output:\n${p2.output().slice(-4000)}`);
      throw err;
    }
  });
});
