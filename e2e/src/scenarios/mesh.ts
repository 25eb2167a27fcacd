// The mesh the scenario tests share: a 2-node cluster-in-a-box with the Gateway API CRDs and Ambit installed from
// charts/ambit by `helm install` (the controller Deployment with 2 replicas, the agent DaemonSet), plus what the
// tests need to look inside: pods and their network namespaces, the agents' metrics (15020), container logs, the
// service-account tokens the kubelet wrote, and small programs run inside pods (scenarios/apps).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireRoot, requireTools } from '../root.js';
import { waitFor } from '../wait.js';
import type { ExecResult, NetnsProcess } from '../process.js';
import { k8sBinaries } from '../cluster/binaries.js';
import { repoPath } from '../kubelet/image-registry.js';
import { startCluster, type Cluster, type KubernetesObject } from '../cluster/cluster.js';
import { CHART_DIR, helm, profilePath } from '../chart/helm.js';
import { parseMetrics, type Sample } from '../demo/metrics.js';

export const SYSTEM_NS = 'istio-system';
export const RELEASE = 'ambit';
/** The controller's Service, as agents and waypoints reach it. */
export const ISTIOD = `istiod.${SYSTEM_NS}.svc:15012`;

export interface PodView extends KubernetesObject {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string; serviceAccountName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number; state?: Record<string, { reason?: string; message?: string }> }[];
  };
}

export const isReady = (p: PodView): boolean => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true && !p.metadata.deletionTimestamp;

/**
 * Apps that run the node agent's own client code (its CA and xDS clients) live with the agent, in
 * packages/ztunnel/test/pod-apps (this package cannot import the agent: the agent's tests import this package).
 */
const AGENT_POD_APPS = new Set(['ca-request', 'xds-config-dump']);

/** Path of a compiled scenario app (scenarios/apps/<name>.js, or the agent's pod apps). */
export function scenarioApp(name: string): string {
  if (AGENT_POD_APPS.has(name)) return repoPath(`packages/ztunnel/dist/test/pod-apps/${name}.js`);
  return fileURLToPath(new URL(`./apps/${name}.js`, import.meta.url));
}

/** Path of a compiled shared e2e app (apps/<name>.js). */
export function sharedApp(name: string): string {
  return fileURLToPath(new URL(`../apps/${name}.js`, import.meta.url));
}

export interface MeshOptions {
  /** Log of progress lines (t.diagnostic). */
  log?: (line: string) => void;
}

/** A running cluster with Ambit installed. Always stop() it. */
export class Mesh {
  private installed = true;

  constructor(
    readonly cluster: Cluster,
    /** Temp dir: root cert copies. */
    readonly dir: string,
    private readonly log: (line: string) => void,
  ) {}

  async pods(namespace: string, selector?: string): Promise<PodView[]> {
    const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
    return (await this.cluster.client.find<{ items: PodView[] }>(`/api/v1/namespaces/${namespace}/pods${q}`))?.items ?? [];
  }

  async pod(namespace: string, name: string): Promise<PodView> {
    const p = await this.cluster.client.find<PodView>(`/api/v1/namespaces/${namespace}/pods/${name}`);
    if (!p) throw new Error(`pod ${namespace}/${name} does not exist`);
    return p;
  }

  /** The agent pod (DaemonSet ztunnel) on a node, Ready. */
  async agentOn(node: string): Promise<PodView> {
    const agent = (await this.pods(SYSTEM_NS, 'app=ztunnel')).find((p) => p.spec.nodeName === node && isReady(p));
    if (!agent) throw new Error(`no Ready agent pod on ${node}:\n  ${describePods(await this.pods(SYSTEM_NS))}`);
    return agent;
  }

  async controllers(): Promise<PodView[]> {
    return (await this.pods(SYSTEM_NS, 'app=istiod')).filter((p) => !p.metadata.deletionTimestamp);
  }

  /** The network namespace of a running pod (its sandbox on the node that runs it). */
  netnsOf(pod: PodView): string {
    const netns = this.cluster.nodePool?.kubeletFor(pod.spec.nodeName ?? '')?.worker(pod.metadata.uid)?.sandbox?.netns;
    if (!netns) throw new Error(`pod ${pod.metadata.namespace}/${pod.metadata.name} has no running sandbox (node ${pod.spec.nodeName ?? 'none'})`);
    return netns;
  }

  /** Starts a long-running process in a pod's netns (as `kubectl exec` would); killed at cluster teardown. */
  spawnInPod(pod: PodView, argv: readonly string[]): Promise<NetnsProcess> {
    return this.cluster.nodePool!.topology.spawnIn(this.netnsOf(pod), argv);
  }

  /** Runs a short command in a pod's netns with the cluster's DNS (Cluster.exec). */
  exec(pod: PodView, argv: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
    return this.cluster.exec(pod.metadata, argv, { timeoutMs });
  }

  /** A scenario app (scenarios/apps) run with node in a pod; its one JSON output line parsed. */
  async runApp<T>(pod: PodView, app: string, args: readonly string[], timeoutMs = 30_000): Promise<T> {
    const r = await this.exec(pod, [process.execPath, scenarioApp(app), ...args], timeoutMs);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`${app} in ${pod.metadata.namespace}/${pod.metadata.name} printed no JSON (exit ${r.code}): ${r.stdout.slice(-500)} ${r.stderr.slice(-1500)}`);
    }
  }

  /** The agent's Prometheus metrics on a node, scraped inside its pod at 127.0.0.1:15020/metrics. */
  async agentMetrics(node: string): Promise<Sample[]> {
    const agent = await this.agentOn(node);
    const r = await this.cluster.nodePool!.topology.execIn(this.netnsOf(agent), ['curl', '-sS', '--max-time', '5', 'http://127.0.0.1:15020/metrics'], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`scraping the agent on ${node}: curl exit ${r.code}: ${r.stderr}`);
    return parseMetrics(r.stdout);
  }

  /** The directory the kubelet keeps for a pod (logs, volumes). */
  podDir(pod: PodView): string {
    const want = `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`;
    const found = findDir(this.cluster.nodePool!.dir, want, 6);
    if (!found) throw new Error(`no kubelet directory ${want} under ${this.cluster.nodePool!.dir}`);
    return found;
  }

  /** A container's log (every restart, oldest first). */
  containerLog(pod: PodView, container: string): string {
    const dir = join(this.podDir(pod), container);
    if (!existsSync(dir)) return '';
    return readdirSync(dir).filter((f) => f.endsWith('.log')).sort((a, b) => parseInt(a, 10) - parseInt(b, 10)).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
  }

  /** The file of a projected service-account token the kubelet wrote for a pod's volume. */
  tokenFile(pod: PodView, volume: string, path: string): string {
    const file = join(this.podDir(pod), 'volumes', volume, path);
    if (!existsSync(file)) throw new Error(`pod ${pod.metadata.name} has no token file ${file}`);
    return file;
  }

  /** The mesh root (ConfigMap istio-ca-root-cert, published by the controller) as a file. */
  async rootCertFile(): Promise<string> {
    const cm = await this.cluster.client.find<{ data?: Record<string, string> }>(`/api/v1/namespaces/${SYSTEM_NS}/configmaps/istio-ca-root-cert`);
    const pem = cm?.data?.['root-cert.pem'];
    if (!pem) throw new Error(`ConfigMap ${SYSTEM_NS}/istio-ca-root-cert has no root-cert.pem`);
    const file = join(this.dir, 'root-cert.pem');
    writeFileSync(file, pem);
    return file;
  }

  /** Holder of the controllers' Lease. */
  async leaseHolder(): Promise<string | undefined> {
    const lease = await this.cluster.client.find<{ spec?: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/ambit-controller-leader`);
    return lease?.spec?.holderIdentity ?? undefined;
  }

  /** Scales the controller Deployment and waits until that many replicas are Ready (0: until no pod is left). */
  async scaleControllers(replicas: number, timeoutMs = 90_000): Promise<void> {
    const r = await this.cluster.kubectl(['scale', 'deployment/ambit-controller', '-n', SYSTEM_NS, `--replicas=${replicas}`]);
    if (r.code !== 0) throw new Error(`kubectl scale: ${r.stderr}`);
    await this.waitPods(`${replicas} controller pod(s) ${replicas === 0 ? 'left' : 'Ready'}`, 'app=istiod', (list) =>
      replicas === 0 ? list.length === 0 : list.filter(isReady).length === replicas && list.length === replicas, timeoutMs);
  }

  /** Waits for the pods of istio-system matching `selector` to satisfy `check`; on timeout says what they are doing. */
  async waitPods(what: string, selector: string, check: (pods: PodView[]) => boolean, timeoutMs: number): Promise<void> {
    try {
      await waitFor(async () => check(await this.pods(SYSTEM_NS, selector)), { timeoutMs, intervalMs: 500, message: what });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n  ${describePods(await this.pods(SYSTEM_NS))}\n${this.logTails(SYSTEM_NS)}`, { cause: err });
    }
  }

  /** The last lines of every container log of a namespace's pods, for failure messages. */
  logTails(namespace: string, lines = 12): string {
    const pool = this.cluster.nodePool;
    if (!pool) return '';
    const out: string[] = [];
    const walk = (d: string, depth: number): void => {
      if (depth > 7 || !existsSync(d)) return;
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) {
          if (e !== 'volumes') walk(p, depth + 1);
        } else if (p.includes(`/${namespace}_`) && p.endsWith('.log')) {
          out.push(`  ${p.slice(pool.dir.length + 1)}:\n    ${readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n    ')}`);
        }
      }
    };
    walk(pool.dir, 0);
    return out.join('\n') || '  (no pod logs)';
  }

  /** Uninstalls the release (best effort), stops the cluster, removes the temp dir. */
  async stop(): Promise<void> {
    try {
      if (this.installed) {
        this.installed = false;
        await helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS, '--wait', '--timeout', '60s', '--kubeconfig', this.cluster.kubeconfigPath], { timeoutMs: 90_000 })
          .catch((err: unknown) => this.log(`helm uninstall failed: ${(err as Error).message}`));
      }
    } finally {
      try {
        await this.cluster.stop();
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
      }
    }
  }
}

function findDir(root: string, name: string, depth: number): string | undefined {
  if (depth < 0 || !existsSync(root)) return undefined;
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === 'volumes') continue;
    const p = join(root, e.name);
    if (e.name === name) return p;
    const found = findDir(p, name, depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** One line per pod: node, phase, readiness, container states. */
export function describePods(list: readonly PodView[]): string {
  if (list.length === 0) return '(no pods)';
  return list.map((p) => {
    const containers = (p.status.containerStatuses ?? []).map((s) => {
      const [state, detail] = Object.entries(s.state ?? {})[0] ?? ['?', {}];
      return `${s.name}=${state}${detail.reason ? `(${detail.reason}${detail.message ? `: ${detail.message.slice(0, 160)}` : ''})` : ''} restarts=${s.restartCount}`;
    }).join(', ');
    return `${p.metadata.name} on ${p.spec.nodeName ?? '-'}: ${p.status.phase ?? '?'} ready=${isReady(p)} ${containers}`;
  }).join('\n  ');
}

/**
 * Starts a 2-node cluster, applies the Gateway API CRDs, installs charts/ambit (profile default) with helm, and waits
 * until both controller replicas and both agents are Ready. A failure stops everything it started.
 */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  requireRoot('scenario e2e tests');
  requireTools(['ip', 'nsenter', 'unshare', 'iptables-save', 'tcpdump', 'curl']);
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'ambit-scenarios-'));
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster({ nodes: 2 });
    log(`cluster up in ${Date.now() - started} ms`);
    const crds = await cluster.kubectl(['apply', '--server-side', '-f', join(k8sBinaries().gatewayApiCrdsDir, 'standard')], { timeoutMs: 60_000 });
    if (crds.code !== 0) throw new Error(`Gateway API CRDs: ${crds.stderr}`);
    const est = await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/gatewayclasses.gateway.networking.k8s.io', 'crd/gateways.gateway.networking.k8s.io'], { timeoutMs: 40_000 });
    if (est.code !== 0) throw new Error(`Gateway API CRDs established: ${est.stderr}`);
    const install = await helm([
      'install', RELEASE, CHART_DIR, '--namespace', SYSTEM_NS, '--create-namespace', '-f', profilePath('default'), '--kubeconfig', cluster.kubeconfigPath,
    ], { timeoutMs: 120_000 });
    if (install.code !== 0) throw new Error(`helm install: ${install.stderr}`);
    const mesh = new Mesh(cluster, dir, log);
    await mesh.waitPods('2 controller replicas Ready', 'app=istiod', (l) => l.filter(isReady).length === 2, 90_000);
    await mesh.waitPods('an agent Ready on each node', 'app=ztunnel', (l) => l.filter(isReady).length === 2, 90_000);
    log(`Ambit installed and Ready ${Date.now() - started} ms after start`);
    return mesh;
  } catch (err) {
    await cluster?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Labels (or, with undefined, unlabels) a namespace. */
export async function labelNamespace(cluster: Cluster, namespace: string, key: string, value: string | undefined): Promise<void> {
  const r = await cluster.kubectl(['label', 'namespace', namespace, value === undefined ? `${key}-` : `${key}=${value}`, '--overwrite']);
  if (r.code !== 0) throw new Error(`kubectl label namespace ${namespace}: ${r.stderr}`);
}

/** Sum of a counter over the series whose labels include `match`. */
export function counterSum(samples: readonly Sample[], name: string, match: Readonly<Record<string, string>>): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** Lines of a hold-client's stdout, parsed. */
export interface HoldEvent {
  event: 'connected' | 'echo' | 'closed';
  seq?: number;
  reason?: string;
  at: number;
}

export function holdEvents(proc: NetnsProcess): HoldEvent[] {
  return proc.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as HoldEvent);
}

/** Starts hold-client in a pod against host:port and waits for its first echo. */
export async function startHoldingConnection(mesh: Mesh, from: PodView, host: string, port: number, marker: string): Promise<NetnsProcess> {
  const proc = await mesh.spawnInPod(from, [process.execPath, scenarioApp('hold-client'), '--host', host, '--port', String(port), '--marker', marker, '--interval-ms', '200']);
  await waitFor(() => holdEvents(proc).some((e) => e.event === 'echo') || proc.exited !== undefined, { timeoutMs: 15_000, message: `hold-client ${marker} echoing` });
  if (proc.exited) throw new Error(`hold-client ${marker} exited: ${proc.stdout()} ${proc.stderr()}`);
  return proc;
}

/** Echo count of a holding connection, and whether it has ended. */
export function holdState(proc: NetnsProcess): { echoes: number; closed: HoldEvent | undefined } {
  const events = holdEvents(proc);
  return { echoes: events.filter((e) => e.event === 'echo').length, closed: events.find((e) => e.event === 'closed') };
}
