// The mesh under test for the acceptance tests: the cluster-in-a-box with Ambit installed from charts/ambit (the
// required path), or the embedded mesh of the demo (same binaries without Kubernetes; a fast loop to debug the
// waypoint). Both give the same three things: apply/delete configuration, run a client plan inside a meshed client
// pod, wait until the waypoint holds some objects.
//
// Cluster setup, as a user does it: Gateway API CRDs, `helm install ambit charts/ambit`, the fixture namespace
// labelled ambient with its Deployments and Services, `ambitctl waypoint apply -n gateway-conformance-mesh
// --enroll-namespace --wait`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANNOTATIONS, DATAPLANE_MODE, LABELS, PORTS, REDIRECTION, type KubeObject } from '@ambit/api';
import { k8sBinaries } from '../cluster/binaries.js';
import { parseManifest, startCluster, type Cluster, type KubernetesObject } from '../cluster/cluster.js';
import { CHART_DIR, helm, profilePath, REPO_ROOT } from '../chart/helm.js';
import { EmbeddedMesh } from '../demo/embedded-mesh.js';
import { createImageRegistry, e2eAppPath } from '../kubelet/image-registry.js';
import { runCommand } from '../process.js';
import { requireRoot, requireTools } from '../root.js';
import { waitFor } from '../wait.js';
import type { BatchResult, ClientPlan, ConsistentCase, ConsistentResult, MeshRequest, MeshResponse } from './expect.js';
import { CONSUMER_NS, ECHO_IMAGE, fixtureYaml, MESH_NS, type FixtureOptions } from './manifests.js';

export const CLIENT_SCRIPT = fileURLToPath(new URL('./client.js', import.meta.url));
export const AMBITCTL = join(REPO_ROOT, 'packages', 'ambitctl', 'bin', 'ambitctl');
const SYSTEM_NS = 'istio-system';
const WAYPOINT = 'waypoint';

/** Which client pod runs a plan: the mesh namespace's (default) or the consumer namespace's. */
export type ClientName = 'client' | 'consumer';

export interface MeshUnderTest {
  readonly kind: 'cluster' | 'embedded';
  /** Applies configuration objects (routes, VirtualServices, policies). */
  apply(yaml: string): Promise<void>;
  delete(yaml: string): Promise<void>;
  /** Runs a plan in a client pod; returns the client's JSON answer. */
  run<T>(plan: ClientPlan, from?: ClientName): Promise<T>;
  /** Until the waypoint holds every object of `yaml` (by kind and namespace/name), or none of them with `absent`. */
  waitWaypointConfig(yaml: string, options?: { absent?: boolean }): Promise<void>;
  /** IP of the (first) pod of a Deployment in the mesh namespace. */
  podIp(deployment: string): Promise<string>;
  /** Logs of the waypoint and agents for a failing test (written into dir). */
  collectLogs(dir: string): string[];
  close(): Promise<void>;
}

/** Runs the cases of one test; each must hold 3 times in a row within 30 s (the suite's MaxTimeToConsistency). */
export async function runConsistent(mesh: MeshUnderTest, cases: ConsistentCase[], options: { from?: ClientName; timeoutMs?: number } = {}): Promise<ConsistentResult[]> {
  return mesh.run<ConsistentResult[]>({ kind: 'consistent', cases, consistency: 3, timeoutMs: options.timeoutMs ?? 30_000 }, options.from);
}

/** One line per failed case, with its problems and the last response (for assertion messages). */
export function describeFailures(results: readonly ConsistentResult[]): string {
  return results.filter((r) => !r.ok).map((r) => {
    const last = r.last ? ` last: status=${r.last.status}${r.last.echo ? ` pod=${r.last.echo.pod} path=${r.last.echo.path}` : ''}${r.last.error ? ` error=${r.last.error}` : ''}` : '';
    return `  ${r.name}: ${r.problems.join('; ')} (after ${r.attempts} attempts)${last}`;
  }).join('\n');
}

export function runBatch(mesh: MeshUnderTest, request: MeshRequest, count: number, options: { concurrency?: number; from?: ClientName } = {}): Promise<BatchResult> {
  return mesh.run<BatchResult>({ kind: 'batch', request, count, concurrency: options.concurrency ?? 10 }, options.from);
}

export function runEach(mesh: MeshUnderTest, requests: MeshRequest[], options: { concurrency?: number; from?: ClientName } = {}): Promise<MeshResponse[]> {
  return mesh.run<MeshResponse[]>({ kind: 'each', requests, concurrency: options.concurrency ?? 1 }, options.from);
}

function objectKeys(yaml: string): { kind: string; namespace: string; name: string }[] {
  return parseManifest(yaml).map((o) => ({ kind: o.kind!, namespace: o.metadata?.namespace ?? MESH_NS, name: o.metadata!.name! }));
}

interface ConfigDump {
  staticConfig?: { configObjects?: string[]; rejectedConfigObjects?: unknown[] };
}

function holds(dump: ConfigDump, yaml: string, absent: boolean): boolean {
  const keys = dump.staticConfig?.configObjects ?? [];
  const rejected = JSON.stringify(dump.staticConfig?.rejectedConfigObjects ?? []);
  return objectKeys(yaml).every((o) => {
    const present = keys.some((k) => k.includes(o.kind) && k.includes(`${o.namespace}/${o.name}`));
    if (!absent && !present && rejected.includes(o.name) && rejected.includes(o.kind)) {
      throw new Error(`the waypoint rejected ${o.kind} ${o.namespace}/${o.name}: ${rejected.slice(0, 1000)}`);
    }
    return absent ? !present : present;
  });
}

function parseClientOutput<T>(r: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }, where: string): T {
  if (r.code !== 0) throw new Error(`client in ${where} failed (${r.code ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').at(-1);
  if (!line) throw new Error(`client in ${where} printed nothing; stderr: ${r.stderr.slice(-1000)}`);
  return JSON.parse(line) as T;
}

/** The exec bound of a plan: its own deadline plus start-up. */
function planTimeoutMs(plan: ClientPlan): number {
  if (plan.kind === 'consistent') return (plan.timeoutMs ?? 30_000) + 30_000;
  const n = plan.kind === 'batch' ? plan.count : plan.requests.length;
  const c = plan.concurrency ?? (plan.kind === 'batch' ? 10 : 1);
  return Math.ceil(n / c) * 11_000 + 30_000;
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster-in-a-box

interface PodView {
  metadata: { name: string; namespace: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

const isReady = (p: PodView) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export interface ClusterMeshOptions {
  consumer?: boolean;
  extraBackends?: FixtureOptions['extraBackends'];
  log?: (line: string) => void;
}

class ClusterMesh implements MeshUnderTest {
  readonly kind = 'cluster' as const;
  constructor(readonly cluster: Cluster, private readonly log: (line: string) => void) {}

  async apply(yaml: string): Promise<void> {
    await this.cluster.apply(yaml, { namespace: MESH_NS });
  }

  async delete(yaml: string): Promise<void> {
    await this.cluster.delete(yaml, { namespace: MESH_NS, wait: true });
  }

  async pods(namespace: string, selector?: string): Promise<PodView[]> {
    const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
    return (await this.cluster.client.find<{ items: PodView[] }>(`/api/v1/namespaces/${namespace}/pods${q}`))?.items ?? [];
  }

  private async clientPod(from: ClientName): Promise<PodView> {
    const ns = from === 'consumer' ? CONSUMER_NS : MESH_NS;
    const pod = (await this.pods(ns, 'app=client')).find((p) => p.status.phase === 'Running');
    if (!pod) throw new Error(`no running client pod in ${ns}`);
    return pod;
  }

  async run<T>(plan: ClientPlan, from: ClientName = 'client'): Promise<T> {
    const pod = await this.clientPod(from);
    const arg = Buffer.from(JSON.stringify(plan)).toString('base64');
    const r = await this.cluster.exec(pod.metadata, [process.execPath, CLIENT_SCRIPT, arg], { timeoutMs: planTimeoutMs(plan), maxBufferBytes: 64 << 20 });
    return parseClientOutput<T>(r, `${pod.metadata.namespace}/${pod.metadata.name}`);
  }

  async waypointConfigDump(): Promise<ConfigDump> {
    const pod = (await this.pods(MESH_NS, `${LABELS.gatewayName}=${WAYPOINT}`)).find((p) => p.status.phase === 'Running');
    if (!pod) throw new Error(`no running waypoint pod in ${MESH_NS}`);
    const script = `require('http').get('http://127.0.0.1:${PORTS.admin}/config_dump',r=>{let b='';r.on('data',c=>b+=c);r.on('end',()=>process.stdout.write(b))}).on('error',e=>{console.error(e.message);process.exit(1)})`;
    const r = await this.cluster.exec(pod.metadata, [process.execPath, '-e', script], { timeoutMs: 10_000, maxBufferBytes: 32 << 20 });
    if (r.code !== 0) throw new Error(`waypoint config_dump: ${r.stderr}`);
    return JSON.parse(r.stdout) as ConfigDump;
  }

  async waitWaypointConfig(yaml: string, options: { absent?: boolean } = {}): Promise<void> {
    await waitFor(async () => holds(await this.waypointConfigDump(), yaml, options.absent ?? false), {
      timeoutMs: 30_000, intervalMs: 250, message: `the waypoint to ${options.absent ? 'drop' : 'hold'} ${objectKeys(yaml).map((o) => `${o.kind} ${o.name}`).join(', ')}`,
    });
  }

  async podIp(deployment: string): Promise<string> {
    const pod = (await this.pods(MESH_NS)).find((p) => p.metadata.name.startsWith(`${deployment}-`) && p.status.podIP);
    if (!pod) throw new Error(`no pod of ${deployment} with an IP`);
    return pod.status.podIP!;
  }

  collectLogs(dir: string): string[] {
    return this.cluster.collectLogs(dir);
  }

  async close(): Promise<void> {
    await this.cluster.stop();
  }
}

async function kubectlOk(c: Cluster, args: string[], what: string): Promise<string> {
  const r = await c.kubectl(args, { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`${what}: kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * A 2-node cluster-in-a-box with Ambit installed from the chart, the fixture running and captured, and the namespace's
 * waypoint applied with ambitctl and Programmed. Fails (never skips) when something does not come up, naming it.
 */
export async function startClusterMesh(options: ClusterMeshOptions = {}): Promise<MeshUnderTest> {
  requireRoot('mesh acceptance tests');
  requireTools(['ip', 'nsenter', 'unshare', 'iptables-save']);
  const log = options.log ?? (() => undefined);
  const images = createImageRegistry({
    [ECHO_IMAGE]: { entrypoint: [process.execPath, e2eAppPath('conformance-echo')], cmd: ['--port', '8080'], requires: [e2eAppPath('conformance-echo')] },
  });
  const cluster = await startCluster({ nodes: 2, imageRegistry: images });
  const mesh = new ClusterMesh(cluster, log);
  try {
    const started = Date.now();
    const step = (what: string) => log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
    await kubectlOk(cluster, ['apply', '--server-side', '-f', join(k8sBinaries().gatewayApiCrdsDir, 'experimental')], 'Gateway API CRDs');
    await kubectlOk(cluster, ['wait', '--for=condition=Established', '--timeout=30s', 'crd/gateways.gateway.networking.k8s.io', 'crd/httproutes.gateway.networking.k8s.io', 'crd/grpcroutes.gateway.networking.k8s.io'], 'Gateway API CRDs established');
    step('Gateway API CRDs installed');
    // The plain install: each node of the box has its own host directories (the kubelet's node root), and the agent
    // installs its CNI plugin there itself.
    const install = await helm([
      'install', 'ambit', CHART_DIR, '--namespace', SYSTEM_NS, '--create-namespace', '-f', profilePath('default'), '--kubeconfig', cluster.kubeconfigPath,
    ], { timeoutMs: 120_000 });
    if (install.code !== 0) throw new Error(`helm install: ${install.stderr.trim()}`);
    const systemReady = async () => {
      const all = await mesh.pods(SYSTEM_NS);
      const agents = all.filter((p) => p.metadata.labels?.app === 'ztunnel' && isReady(p));
      const controllers = all.filter((p) => p.metadata.labels?.app === 'istiod' && isReady(p));
      return agents.length === 2 && controllers.length >= 1;
    };
    await waitFor(systemReady, { timeoutMs: 120_000, intervalMs: 500, message: 'the controller and an agent on each node Ready' }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await describe(mesh, SYSTEM_NS)}`, { cause: err });
    });
    step('Ambit installed and Ready');

    await cluster.apply(fixtureYaml({ echo: { image: ECHO_IMAGE }, consumer: options.consumer ?? false, ...(options.extraBackends ? { extraBackends: options.extraBackends } : {}) }));
    const namespaces = options.consumer ? [MESH_NS, CONSUMER_NS] : [MESH_NS];
    await waitFor(async () => {
      for (const ns of namespaces) {
        const pods = await mesh.pods(ns);
        if (pods.length === 0 || !pods.every((p) => isReady(p) && p.metadata.annotations?.[ANNOTATIONS.redirection] === REDIRECTION.enabled)) return false;
      }
      return true;
    }, { timeoutMs: 90_000, intervalMs: 500, message: `the fixture pods Ready and captured (${ANNOTATIONS.redirection}=enabled)` }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${(await Promise.all(namespaces.map((ns) => describe(mesh, ns)))).join('\n')}`, { cause: err });
    });
    step('fixture Ready and captured');

    const ctl = await runCommand([process.execPath, AMBITCTL, 'waypoint', 'apply', '-n', MESH_NS, '--enroll-namespace', '--wait', '--waypoint-timeout', '90s', '--kubeconfig', cluster.kubeconfigPath], { timeoutMs: 120_000 });
    if (ctl.code !== 0) throw new Error(`ambitctl waypoint apply: exit ${ctl.code}: ${ctl.stdout.trim()} ${ctl.stderr.trim()}\n${await describe(mesh, MESH_NS)}`);
    await waitFor(async () => (await mesh.pods(MESH_NS, `${LABELS.gatewayName}=${WAYPOINT}`)).some(isReady), { timeoutMs: 60_000, intervalMs: 500, message: 'the waypoint pod Ready' });
    step('waypoint Programmed and Ready');
    return mesh;
  } catch (err) {
    // The setup failed before any test could: keep the logs (the tests' own failures keep theirs in suite.ts).
    const dir = mkdtempSync(join(tmpdir(), 'ambit-conformance-setup-logs-'));
    try {
      cluster.collectLogs(dir);
      log(`logs of the failed setup in ${dir}`);
    } catch (e) {
      log(`collecting logs failed: ${(e as Error).message}`);
    }
    await mesh.close().catch(() => undefined);
    throw err;
  }
}

interface EventView {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject?: { name?: string };
}

/** Each pod's phase, readiness and capture, and the namespace's Warning events (why a pod is stuck). */
async function describe(mesh: ClusterMesh, ns: string): Promise<string> {
  const pods = await mesh.pods(ns).catch(() => [] as PodView[]);
  const events = (await mesh.cluster.client.find<{ items: EventView[] }>(`/api/v1/namespaces/${ns}/events`).catch(() => undefined))?.items ?? [];
  const warnings = events.filter((e) => e.type === 'Warning').slice(-10).map((e) => `  ${e.involvedObject?.name ?? '-'}: ${e.reason}: ${(e.message ?? '').slice(0, 300)}`);
  return `pods in ${ns}:\n` + (pods.map((p) => `  ${p.metadata.name} on ${p.spec.nodeName ?? '-'}: ${p.status.phase} ready=${isReady(p)} redirection=${p.metadata.annotations?.[ANNOTATIONS.redirection] ?? '-'}`).join('\n') || '  (none)')
    + (warnings.length ? `\nwarning events in ${ns}:\n${warnings.join('\n')}` : '');
}

// ---------------------------------------------------------------------------------------------------------------
// Embedded mesh (the demo's): for debugging the waypoint's behaviour quickly; the required tests use the cluster.

class EmbeddedConformanceMesh implements MeshUnderTest {
  readonly kind = 'embedded' as const;
  private files = 0;
  private readonly applied = new Map<string, string>();
  constructor(readonly mesh: EmbeddedMesh, private readonly tmp: string) {}

  private resolveMap(from: ClientName): Record<string, string> {
    const ns = from === 'consumer' ? CONSUMER_NS : MESH_NS;
    const map: Record<string, string> = {};
    for (const s of this.mesh.services) {
      const ip = s.spec?.clusterIP as string;
      const sns = s.metadata.namespace ?? 'default';
      map[`${s.metadata.name}.${sns}`] = ip;
      map[`${s.metadata.name}.${sns}.svc.cluster.local`] = ip;
      if (sns === ns) map[s.metadata.name] = ip;
    }
    return map;
  }

  async apply(yaml: string): Promise<void> {
    const objects = parseManifest(yaml).map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata?.namespace ?? MESH_NS } }));
    const key = objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).join(',');
    const name = this.applied.get(key) ?? `conf-${++this.files}.yaml`;
    this.applied.set(key, name);
    this.mesh.writeConfig(name, objects as unknown as KubeObject[]);
  }

  async delete(yaml: string): Promise<void> {
    const key = parseManifest(yaml).map((o) => `${o.kind}/${o.metadata?.namespace ?? MESH_NS}/${o.metadata!.name}`).join(',');
    const name = this.applied.get(key);
    if (!name) throw new Error(`delete: ${key} was not applied`);
    this.applied.delete(key);
    rmSync(join(this.mesh.configDir, name), { force: true });
  }

  async run<T>(plan: ClientPlan, from: ClientName = 'client'): Promise<T> {
    const ns = from === 'consumer' ? CONSUMER_NS : MESH_NS;
    const pod = this.mesh.pods.find((p) => p.namespace === ns && p.labels.app === 'client');
    if (!pod) throw new Error(`no client pod in ${ns}`);
    const arg = Buffer.from(JSON.stringify({ ...plan, resolve: this.resolveMap(from) })).toString('base64');
    const r = await this.mesh.topo.execIn(pod.netns, [process.execPath, CLIENT_SCRIPT, arg], { timeoutMs: planTimeoutMs(plan), maxBufferBytes: 64 << 20 });
    return parseClientOutput<T>(r, `${ns}/${pod.name}`);
  }

  async waitWaypointConfig(yaml: string, options: { absent?: boolean } = {}): Promise<void> {
    await waitFor(async () => holds(await this.mesh.waypointConfigDump() as ConfigDump, yaml, options.absent ?? false), {
      timeoutMs: 30_000, intervalMs: 200, message: `the waypoint to ${options.absent ? 'drop' : 'hold'} the objects`,
    });
  }

  async podIp(deployment: string): Promise<string> {
    const pod = this.mesh.pods.find((p) => p.namespace === MESH_NS && p.deployment === deployment);
    if (!pod) throw new Error(`no pod of ${deployment}`);
    return pod.netns.ip;
  }

  collectLogs(): string[] {
    return [this.mesh.workDir];
  }

  async close(): Promise<void> {
    try {
      await this.mesh.close();
    } finally {
      rmSync(this.tmp, { recursive: true, force: true });
    }
  }
}

/** The same fixture on the demo's embedded mesh (controller on a YAML dir, real agents, CNI, waypoint). */
export async function startEmbeddedConformanceMesh(options: ClusterMeshOptions = {}): Promise<MeshUnderTest> {
  const tmp = mkdtempSync(join(tmpdir(), 'ambit-conformance-embedded-'));
  const mesh = await EmbeddedMesh.start({ nodes: 2, placement: (d, r) => (d === 'echo-v2' || d === 'client' ? 2 : 1 + (r % 2)) }, options.log);
  const m = new EmbeddedConformanceMesh(mesh, tmp);
  try {
    const yaml = fixtureYaml({
      echo: { image: 'ambit/http-echo', command: [process.execPath, e2eAppPath('conformance-echo')] },
      consumer: options.consumer ?? false,
      ...(options.extraBackends ? { extraBackends: options.extraBackends } : {}),
    });
    const file = join(tmp, 'fixture.yaml');
    // valueFrom env entries are ignored there: the embedded mesh sets POD_NAME and POD_NAMESPACE itself.
    writeFileSync(file, yaml);
    await mesh.deploy(file, options.log);
    for (const ns of options.consumer ? [MESH_NS, CONSUMER_NS] : [MESH_NS]) {
      mesh.labelNamespace(ns, { [LABELS.dataplaneMode]: DATAPLANE_MODE.ambient });
      await mesh.enroll(ns, options.log);
    }
    const gateway: KubeObject = {
      apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: WAYPOINT, namespace: MESH_NS, labels: { [LABELS.waypointFor]: 'service' } },
      spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    };
    mesh.writeConfig('05-waypoint.yaml', [gateway]);
    await mesh.startWaypoint(gateway, 2);
    mesh.labelNamespace(MESH_NS, { [LABELS.useWaypoint]: WAYPOINT });
    await mesh.waitServicesUseWaypoint(MESH_NS, ['echo', 'echo-v1', 'echo-v2']);
    return m;
  } catch (err) {
    await m.close().catch(() => undefined);
    throw err;
  }
}

/** The mesh the tests run on: the cluster-in-a-box, or the embedded mesh with AMBIT_CONFORMANCE_MESH=embedded. */
export function startMesh(options: ClusterMeshOptions = {}): Promise<MeshUnderTest> {
  // A test-run switch for debugging the waypoint quickly; the required runs use the cluster.
  return process.env.AMBIT_CONFORMANCE_MESH === 'embedded' ? startEmbeddedConformanceMesh(options) : startClusterMesh(options);
}

export type { KubernetesObject };
