// Shared by the scenario test files: one mesh per file (startMesh, registered with before/after hooks), two
// namespaces of workloads (a client on node-1, an echo server on node-2), and the probes the tests use (an echo
// exchange with a marker, the agents' mTLS counters, a capture on node-1's link).
import { after, before, type TestContext } from 'node:test';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ANNOTATIONS, CONNECTION_SECURITY_POLICY, DATAPLANE_MODE, LABELS, METRICS, REDIRECTION, REPORTER } from '@ambit/api';
import { waitFor } from '../wait.js';
import type { Sample } from '../demo/metrics.js';
import { SYSTEM_NS, counterSum, describePods, sharedApp, startMesh, type Mesh, type PodView } from './mesh.js';

export const FLIP_NS = 'scn-flip';
export const MESH_NS = 'scn-mesh';
export const OPENED = METRICS.tcpConnectionsOpened;
export const MTLS = CONNECTION_SECURITY_POLICY.mutualTls;

let mesh: Mesh | undefined;
let failed = false;


export function m(): Mesh {
  if (!mesh) throw new Error('the mesh did not start (see the before hook)');
  return mesh;
}

/** A client (sleeps) on node-1 and an echo server on node-2, each with its own service account. */
export function workloads(namespace: string, ambient: boolean): string {
  return `
apiVersion: v1
kind: Namespace
metadata:
  name: ${namespace}
  ${ambient ? `labels: {${LABELS.dataplaneMode}: ${DATAPLANE_MODE.ambient}}` : ''}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: client, namespace: ${namespace}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: echo, namespace: ${namespace}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${namespace}, labels: {app: client}}
spec:
  nodeName: node-1
  serviceAccountName: client
  containers: [{name: sleep, image: registry.k8s.io/pause}]
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: ${namespace}, labels: {app: echo}}
spec:
  nodeName: node-2
  serviceAccountName: echo
  containers: [{name: echo, image: ambit/echo, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${namespace}}
spec:
  selector: {app: echo}
  ports: [{name: tcp-echo, port: 8080, targetPort: 8080}]
`;
}

export async function runningPods(namespace: string, names: readonly string[]): Promise<PodView[]> {
  return waitFor(async () => {
    const list = await m().pods(namespace);
    const ok = names.map((n) => list.find((p) => p.metadata.name === n && p.status.phase === 'Running' && p.status.podIP));
    return ok.every(Boolean) ? (ok as PodView[]) : undefined;
  }, { timeoutMs: 60_000, intervalMs: 300, message: `pods ${names.join(', ')} of ${namespace} running` }).catch(async (err: Error) => {
    const events = await m().cluster.kubectl(['get', 'events', '-n', namespace, '-o', 'custom-columns=OBJ:.involvedObject.name,REASON:.reason,MSG:.message']);
    throw new Error(`${err.message}\n  ${describePods(await m().pods(namespace))}\nevents:\n${events.stdout}\n${m().logTails(SYSTEM_NS, 15)}`, { cause: err });
  });
}

/** Waits until every named pod has (or, with false, no longer has) ambient.istio.io/redirection=enabled. */
export async function waitForCapture(namespace: string, names: readonly string[], captured: boolean, timeoutMs = 30_000): Promise<void> {
  try {
    await waitFor(async () => {
      const list = await m().pods(namespace);
      return names.every((n) => (list.find((p) => p.metadata.name === n)?.metadata.annotations?.[ANNOTATIONS.redirection] === REDIRECTION.enabled) === captured);
    }, { timeoutMs, intervalMs: 200, message: `pods ${names.join(', ')} of ${namespace} ${captured ? 'captured' : 'released'} (annotation ${ANNOTATIONS.redirection})` });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${m().logTails(SYSTEM_NS, 20)}`, { cause: err });
  }
}

export interface EchoResult { ok: boolean; banner: string | null; serverSawPeer: string | null; error?: string }

/** One echo exchange from `client` to host:8080 carrying `marker` (apps/echo-client.js run in the client's netns). */
export async function echoOnce(client: PodView, host: string, marker: string): Promise<EchoResult> {
  const r = await m().exec(client, [process.execPath, sharedApp('echo-client'), '--host', host, '--port', '8080', '--message', marker, '--timeout-ms', '5000'], 15_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`echo-client printed no result (exit ${r.code}): ${r.stderr.slice(-1000)}`);
  return JSON.parse(line) as EchoResult;
}

/** mTLS connections the agents counted for a namespace: node-1 as source, node-2 as destination. */
export async function mtlsCounts(namespace: string): Promise<{ source: number; destination: number; samples: Sample[] }> {
  const [n1, n2] = await Promise.all([m().agentMetrics('node-1'), m().agentMetrics('node-2')]);
  return {
    source: counterSum(n1, OPENED, { reporter: REPORTER.source, source_workload_namespace: namespace, connection_security_policy: MTLS }),
    destination: counterSum(n2, OPENED, { reporter: REPORTER.destination, destination_workload_namespace: namespace, connection_security_policy: MTLS }),
    samples: n2.filter((s) => s.name === OPENED),
  };
}

export const marker = (what: string): string => `AMBIT-${what}-${randomBytes(6).toString('hex')}`;

/** Traffic on node-1's link to the other nodes while `fn` runs. */
export async function captureOnNode1<T>(fn: () => Promise<T>): Promise<{ result: T; text: (needle: string) => boolean; ports: Set<number>; summary: string }> {
  const topo = m().cluster.nodePool!.topology;
  const node = topo.node(1);
  const cap = await topo.capture(node, node.uplink, 'tcp');
  try {
    const result = await fn();
    // Let the last packets reach the pcap file before stopping (tcpdump writes each packet at once with -U).
    await new Promise((r) => setTimeout(r, 300));
    const got = await cap.stop();
    return { result, text: (needle) => got.contains(needle), ports: new Set(got.packets.flatMap((p) => [p.srcPort, p.dstPort])), summary: got.summary(20) };
  } finally {
    await cap.stop().catch(() => undefined);
  }
}

/**
 * Placeholder pods that take the low pod indices (the kubelet gives a pod 10.0.N.P with the lowest free P). Only for
 * a machine shared with other test runs: their pods hold 10.0.N.2.. in netns of their own, and the agent rightly
 * refuses to capture a pod whose IP several namespaces hold (our kubelet puts no pod UID in cgroups to break the
 * tie). With these, the scenario pods get indices other runs rarely reach. Not needed when e2e files run alone.
 */
export function fillers(count: number): string {
  const docs = [`apiVersion: v1\nkind: Namespace\nmetadata: {name: scn-filler}`];
  for (const node of ['node-1', 'node-2']) {
    for (let i = 0; i < count; i++) {
      docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: ${node}-${i}, namespace: scn-filler}\nspec: {nodeName: ${node}, containers: [{name: pause, image: registry.k8s.io/pause}]}`);
    }
  }
  return docs.join('\n---\n');
}

/** Registers the file's before/after hooks: start the mesh and the workloads, and tear everything down. */
export function useScenarioMesh(): void {
before(async () => {
  const started = Date.now();
  mesh = await startMesh({ log: (l) => console.log(`# ${l}`) });
  await mesh.cluster.apply(fillers(6));
  await waitFor(async () => (await mesh!.pods('scn-filler')).filter((p) => p.status.phase === 'Running').length === 12, { timeoutMs: 60_000, intervalMs: 300, message: 'placeholder pods running' });
  await mesh.cluster.apply(workloads(FLIP_NS, false));
  await mesh.cluster.apply(workloads(MESH_NS, true));
  await runningPods(FLIP_NS, ['client', 'echo']);
  await runningPods(MESH_NS, ['client', 'echo']);
  await waitForCapture(MESH_NS, ['client', 'echo'], true, 60_000);
  console.log(`# mesh with workloads ready in ${Date.now() - started} ms`);
}, { timeout: 240_000 });

after(async () => {
  if (!mesh) return;
  if (failed) {
    const dir = join(tmpdir(), `ambit-scenarios-failed-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      mesh.cluster.collectLogs(dir);
      console.log(`# logs of the failed run: ${dir}`);
    } catch (err) {
      console.log(`# collecting logs failed: ${(err as Error).message}`);
    }
  }
  await mesh.stop();
  mesh = undefined;
}, { timeout: 180_000 });

}

/** Marks the run failed (for the logs in `after`) when a test throws. */
export async function guarded(t: TestContext, fn: () => Promise<void>): Promise<void> {
  const started = Date.now();
  try {
    await fn();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    t.diagnostic(`took ${Date.now() - started} ms`);
  }
}
