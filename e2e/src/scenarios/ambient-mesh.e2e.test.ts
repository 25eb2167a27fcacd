// Ambit on a 2-node cluster-in-a-box, installed from charts/ambit with helm (scenarios/mesh.ts), the controller and
// the node agents working together through the real paths: Kubernetes watches, xDS, the CA, HBONE between nodes.
// One cluster for the whole file (starting one and installing the chart takes about a minute); the tests run in
// this order and each leaves the mesh as it found it, except the last, which replaces a controller pod.
// The controller outage (2 minutes) has its own cluster in controller-outage.e2e.test.ts: node's test runner gives
// a file 5 minutes.
//   1. labelling a namespace ambient turns cross-node traffic into HBONE (metrics + packet capture); unlabelling
//      turns it back to plaintext
//   2. an AuthorizationPolicy reaches the agents and applies to new connections within 2 s and closes now-denied
//      established ones within 2 s
//   3. the CA refuses a node agent a certificate for a pod on another node, with the reason
//   4. an invalid VirtualService is refused with a diagnostic naming the field (status + log) while the last good
//      version keeps being served over xDS
//   5. the leader is killed (SIGKILL, pod force-deleted): the other replica takes over and deploys the waypoint of
//      a Gateway created after the kill
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LABELS, DATAPLANE_MODE } from '@ambit/api';
import { waitFor } from '../wait.js';
import type { NetnsProcess } from '../process.js';
import { ISTIOD, SYSTEM_NS, describePods, holdState, isReady, labelNamespace, scenarioApp, startHoldingConnection } from './mesh.js';
import {
  FLIP_NS, MESH_NS, MTLS, captureOnNode1, echoOnce, guarded, m, marker, mtlsCounts, runningPods, useScenarioMesh, waitForCapture,
} from './scenario.js';

useScenarioMesh();

test('labelling a namespace ambient turns cross-node traffic into HBONE (mutual_tls, no plaintext on the wire); unlabelling turns it back', async (t) => {
  await guarded(t, async () => {
    const [client, echo] = await runningPods(FLIP_NS, ['client', 'echo']);
    const echoIp = echo!.status.podIP!;

    // Before: plaintext between the nodes, the marker visible on node-1's link.
    const plain1 = marker('PLAIN');
    const before1 = await captureOnNode1(() => echoOnce(client!, echoIp, plain1));
    assert.equal(before1.result.ok, true, `echo before labelling: ${JSON.stringify(before1.result)}`);
    assert.ok(before1.text(plain1), `the plaintext marker should cross node-1's link before labelling:\n${before1.summary}`);
    const base = await mtlsCounts(FLIP_NS);

    await labelNamespace(m().cluster, FLIP_NS, LABELS.dataplaneMode, DATAPLANE_MODE.ambient);
    const labelledAt = Date.now();
    await waitForCapture(FLIP_NS, ['client', 'echo'], true);
    t.diagnostic(`both pods captured ${Date.now() - labelledAt} ms after the label`);

    // The agents report the new connections as mutual_tls at both ends (they may need a moment to learn the
    // destination workload over xDS after the capture, so the first exchanges are retried until counted).
    const meshed = await waitFor(async () => {
      const r = await echoOnce(client!, echoIp, marker('WARM'));
      const c = await mtlsCounts(FLIP_NS);
      return r.ok && c.source > base.source && c.destination > base.destination ? c : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, message: `mutual_tls connections counted by both agents for ${FLIP_NS}` });
    t.diagnostic(`mutual_tls ${Date.now() - labelledAt} ms after the label`);

    const secret = marker('MESH');
    const during = await captureOnNode1(() => echoOnce(client!, echoIp, secret));
    assert.equal(during.result.ok, true, `echo through the mesh: ${JSON.stringify(during.result)}`);
    assert.equal(during.text(secret), false, `the marker must not cross node-1's link in plaintext under the mesh:\n${during.summary}`);
    assert.ok(during.ports.has(15008), `the traffic between the nodes should be HBONE to port 15008:\n${during.summary}`);
    assert.equal(during.result.serverSawPeer, client!.status.podIP, 'the server sees the client pod IP');
    const afterMesh = await mtlsCounts(FLIP_NS);
    assert.ok(afterMesh.destination > meshed.destination, `the exchange was counted as mutual_tls by the destination agent:\n${afterMesh.samples.map((s) => JSON.stringify(s.labels)).join('\n')}`);
    const series = afterMesh.samples.find((s) => s.labels.destination_workload_namespace === FLIP_NS && s.labels.connection_security_policy === MTLS);
    assert.equal(series?.labels.source_principal, `spiffe://cluster.local/ns/${FLIP_NS}/sa/client`);
    assert.equal(series?.labels.destination_principal, `spiffe://cluster.local/ns/${FLIP_NS}/sa/echo`);

    // Unlabel: the agents release the pods and traffic is plaintext again, with no new mTLS connection.
    await labelNamespace(m().cluster, FLIP_NS, LABELS.dataplaneMode, undefined);
    await waitForCapture(FLIP_NS, ['client', 'echo'], false);
    const plain2 = marker('PLAIN-AGAIN');
    const after2 = await captureOnNode1(() => echoOnce(client!, echoIp, plain2));
    assert.equal(after2.result.ok, true, `echo after unlabelling: ${JSON.stringify(after2.result)}`);
    assert.ok(after2.text(plain2), `the marker should be visible again after unlabelling:\n${after2.summary}`);
    const final = await mtlsCounts(FLIP_NS);
    assert.deepEqual([final.source, final.destination], [afterMesh.source, afterMesh.destination], 'no new mutual_tls connection after unlabelling');
  });
});

test('an AuthorizationPolicy applies to new connections within 2 s and closes now-denied established ones within 2 s', async (t) => {
  await guarded(t, async () => {
    const [client, echo] = await runningPods(MESH_NS, ['client', 'echo']);
    const echoIp = echo!.status.podIP!;
    let hold: NetnsProcess | undefined;
    let probe: NetnsProcess | undefined;
    const policy = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-client', namespace: MESH_NS },
      spec: {
        selector: { matchLabels: { app: 'echo' } },
        action: 'DENY',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${MESH_NS}/sa/client`] } }] }],
      },
    };
    try {
      hold = await startHoldingConnection(m(), client!, echoIp, 8080, marker('HOLD'));
      probe = await m().spawnInPod(client!, [process.execPath, scenarioApp('connect-probe'), '--host', echoIp, '--port', '8080', '--interval-ms', '100', '--attempt-timeout-ms', '1000']);
      const attempts = (): { ok: boolean; start: number; end: number; error?: string }[] =>
        probe!.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { ok: boolean; start: number; end: number });
      await waitFor(() => attempts().filter((a) => a.ok).length >= 3, { timeoutMs: 15_000, message: 'new connections allowed before the policy' });

      await m().cluster.apply(policy);
      const appliedAt = Date.now();
      // New connections: the first attempt started after which every attempt is refused.
      const deniedFrom = await waitFor(() => {
        const list = attempts().filter((a) => a.start >= appliedAt);
        const firstOfRun = list.findIndex((a, i) => !a.ok && list.slice(i).every((b) => !b.ok));
        return firstOfRun >= 0 && list.length - firstOfRun >= 3 ? list[firstOfRun]! : undefined;
      }, { timeoutMs: 10_000, intervalMs: 50, message: 'new connections refused after the DENY policy' });
      const closed = await waitFor(() => holdState(hold!).closed, { timeoutMs: 10_000, intervalMs: 50, message: 'the established connection closed by the DENY policy' });
      const newAfter = deniedFrom.start - appliedAt;
      const closedAfter = closed.at - appliedAt;
      t.diagnostic(`new connections refused from ${newAfter} ms (${deniedFrom.error}); established connection closed after ${closedAfter} ms (${closed.reason})`);
      assert.ok(newAfter <= 2000, `new connections must be refused within 2 s of the policy; the first refused attempt started ${newAfter} ms after it`);
      assert.ok(closedAfter <= 2000, `the now-denied established connection must be closed within 2 s; it was closed ${closedAfter} ms after the policy`);

      // Deleting the policy allows new connections again.
      await m().cluster.delete(policy);
      const deletedAt = Date.now();
      await waitFor(() => attempts().some((a) => a.ok && a.start >= deletedAt), { timeoutMs: 10_000, message: 'new connections allowed after the policy is deleted' });
    } finally {
      hold?.kill();
      probe?.kill();
      await m().cluster.delete(policy).catch(() => undefined);
    }
  });
});

test('the CA refuses node-1\'s agent a certificate for a pod that runs on node-2, saying why', async (t) => {
  await guarded(t, async () => {
    const agent = await m().agentOn('node-1');
    const token = m().tokenFile(agent, 'istio-token', 'istio-token');
    const root = await m().rootCertFile();
    const ask = (identity: string) => m().runApp<{ ok: boolean; code?: string; details?: string; identity?: string; message?: string }>(agent, 'ca-request', ['--address', ISTIOD, '--root', root, '--token', token, '--identity', identity]);

    // The same agent gets the identity of a pod on its own node: the refusal below is about the node, not the call.
    const own = await ask(`spiffe://cluster.local/ns/${MESH_NS}/sa/client`);
    assert.equal(own.ok, true, `certificate for a pod on node-1: ${JSON.stringify(own)}`);

    const other = await ask(`spiffe://cluster.local/ns/${MESH_NS}/sa/echo`);
    t.diagnostic(`refusal: ${other.code} ${other.details}`);
    assert.equal(other.ok, false, 'a certificate for a pod on node-2 must be refused to node-1\'s agent');
    assert.equal(other.code, 'PERMISSION_DENIED');
    assert.match(other.details ?? '', new RegExp(`no pod with service account ${MESH_NS}/echo runs on the caller's node node-1`));
    assert.match(other.details ?? '', /istio-system\/ztunnel/, 'the message names the caller');
  });
});

test('an invalid VirtualService is refused with a diagnostic naming the field while the last good version keeps serving', async (t) => {
  await guarded(t, async () => {
    const ref = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', name: 'echo-routes', namespace: MESH_NS };
    const vs = (weight: number) => ({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, namespace: MESH_NS },
      spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo', port: { number: 8080 } }, weight }] }] },
    });
    type VsStatus = { metadata: { generation: number }; status?: { conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[]; validationMessages?: { type: { code: string }; level: string; description: string }[] } };
    const validated = (o: VsStatus) => o.status?.conditions?.find((c) => c.type === 'ambit.io/Validated');
    const agent = await m().agentOn('node-1');
    const dump = async () => {
      const r = await m().runApp<{ resources?: { name: string; object: { metadata: { generation?: number }; spec: { http: { route: { weight: number }[] }[] } } }[]; error?: string }>(
        agent, 'xds-config-dump', ['--address', ISTIOD, '--root', await m().rootCertFile(), '--token', m().tokenFile(agent, 'istio-token', 'istio-token')]);
      if (!r.resources) throw new Error(`xDS config dump failed: ${JSON.stringify(r)}`);
      return r.resources.find((x) => x.name === `VirtualService/${MESH_NS}/${ref.name}`);
    };
    try {
      await m().cluster.apply(vs(100));
      const good = await m().cluster.waitFor<VsStatus>(ref, (o) => validated(o)?.status === 'True' && validated(o)?.observedGeneration === o.metadata.generation, { timeoutMs: 20_000, description: 'Validated=True' });
      const served = await dump();
      assert.equal(served?.object.spec.http[0]?.route[0]?.weight, 100, 'the valid version is served to waypoints');

      await m().cluster.apply(vs(-1));
      const bad = await m().cluster.waitFor<VsStatus>(ref, (o) => validated(o)?.status === 'False' && o.metadata.generation > good.metadata.generation, { timeoutMs: 20_000, description: 'Validated=False' });
      const cond = validated(bad)!;
      t.diagnostic(`condition: ${cond.reason}: ${cond.message}`);
      assert.equal(cond.reason, 'Invalid');
      assert.match(cond.message, /spec\.http\[0\]\.route\[0\]\.weight/, 'the condition names the field');
      assert.match(cond.message, new RegExp(`last valid version \\(generation ${good.metadata.generation}\\) is still served`));
      const vm = bad.status?.validationMessages ?? [];
      assert.ok(vm.some((v) => v.level === 'ERROR' && /spec\.http\[0\]\.route\[0\]\.weight/.test(v.description)), `validationMessages name the field: ${JSON.stringify(vm)}`);

      // Every replica logs it (each validates what it serves).
      for (const c of await m().controllers()) {
        const log = await waitFor(() => {
          const text = m().containerLog(c, 'discovery');
          return text.includes(`VirtualService ${MESH_NS}/${ref.name}`) && /spec\.http\[0\]\.route\[0\]\.weight/.test(text) ? text : undefined;
        }, { timeoutMs: 10_000, message: `controller ${c.metadata.name} logs the invalid VirtualService` }).catch((err: Error) => {
          throw new Error(`${err.message}; its log ends:\n${m().containerLog(c, 'discovery').split('\n').slice(-15).join('\n')}`);
        });
        assert.match(log, /rejected: 1 error\(s\); the last valid version stays in force/);
      }

      // The last good version is what waypoints still get.
      const still = await dump();
      assert.equal(still?.object.spec.http[0]?.route[0]?.weight, 100, `the last valid version stays served: ${JSON.stringify(still?.object.spec)}`);
      assert.equal(still?.object.metadata.generation, good.metadata.generation);
    } finally {
      await m().cluster.delete(vs(100)).catch(() => undefined);
    }
  });
});

test('the leader killed: the other replica takes over and deploys the waypoint of a Gateway created after the kill', { timeout: 200_000 }, async (t) => {
  await guarded(t, async () => {
    const gatewayRef = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', namespace: MESH_NS };
    try {
      const holder = await waitFor(() => m().leaseHolder(), { timeoutMs: 30_000, message: 'a leader' });
      const replicas = await m().controllers();
      const leader = replicas.find((p) => p.metadata.name === holder);
      assert.ok(leader, `the lease holder ${holder} is not a controller pod: ${describePods(replicas)}`);
      const survivor = replicas.find((p) => p.metadata.name !== holder && isReady(p));
      assert.ok(survivor, 'a second Ready replica');

      // Kill: SIGKILL the leader's process (it cannot release the Lease), then force-delete its pod so the kubelet
      // does not restart it under the same identity (the Deployment creates a new pod with a new name).
      const worker = m().cluster.nodePool!.kubeletFor(leader.spec.nodeName!)!.worker(leader.metadata.uid)!;
      for (const pid of worker.pids()) process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();
      const del = await m().cluster.kubectl(['delete', 'pod', leader.metadata.name, '-n', SYSTEM_NS, '--grace-period=0', '--force', '--wait=false']);
      assert.equal(del.code, 0, del.stderr);

      await m().cluster.apply({
        apiVersion: gatewayRef.apiVersion,
        kind: gatewayRef.kind,
        metadata: { name: gatewayRef.name, namespace: MESH_NS, labels: { [LABELS.waypointFor]: 'service' } },
        spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
      });

      const newHolder = await waitFor(async () => {
        const h = await m().leaseHolder();
        return h && h !== holder ? h : undefined;
      }, { timeoutMs: 40_000, intervalMs: 250, message: `a new lease holder after ${holder} was killed` });
      t.diagnostic(`new leader ${newHolder} after ${Date.now() - killedAt} ms (the surviving replica was ${survivor.metadata.name})`);
      assert.notEqual(newHolder, holder);

      await m().cluster.waitFor({ apiVersion: 'apps/v1', kind: 'Deployment', name: gatewayRef.name, namespace: MESH_NS }, () => true, { timeoutMs: 30_000, description: 'created by the new leader' });
      const programmed = await m().cluster.waitForCondition<{ status: { conditions: { type: string; status: string; message: string }[] } }>(gatewayRef, 'Programmed', { timeoutMs: 60_000 })
        .catch(async (err: Error) => {
          throw new Error(`${err.message}\n  ${describePods(await m().pods(MESH_NS))}\n${m().logTails(MESH_NS, 15)}`, { cause: err });
        });
      t.diagnostic(`Gateway Programmed ${Date.now() - killedAt} ms after the kill: ${programmed.status.conditions.find((c) => c.type === 'Programmed')?.message}`);
      const leaderPod = (await m().controllers()).find((p) => p.metadata.name === newHolder);
      assert.ok(leaderPod, `the new leader ${newHolder} is a running controller pod`);
      assert.match(m().containerLog(leaderPod, 'discovery'), /became leader/);
    } finally {
      await m().cluster.delete({ apiVersion: gatewayRef.apiVersion, kind: gatewayRef.kind, metadata: { name: gatewayRef.name, namespace: MESH_NS } }).catch(() => undefined);
    }
  });
});
