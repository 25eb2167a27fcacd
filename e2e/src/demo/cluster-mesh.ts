// The demo's story on the cluster-in-a-box: a real apiserver (with controller-manager and scheduler), two nodes run by
// our kubelet (pods are processes in their own network namespaces), kube-proxy and CoreDNS; Ambit installed by
// `helm install` (scenarios/mesh.ts startMesh), the user's YAML applied with kubectl, the namespace enrolled with
// `kubectl label`, the waypoint added with `ambitctl waypoint apply`. Nothing is played by the demo: it only reads,
// from the host, what a user reads with kubectl and port-forward (pods, the agents' and waypoint's 15000/15020,
// entered through each pod's network namespace).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ANNOTATIONS, DATAPLANE_MODE, LABELS, PORTS, REDIRECTION, type KubeObject } from '@ambit/api';
import { captureDuring, type CaptureResult } from '../capture.js';
import { netnsPath } from '../naming.js';
import { AMBITCTL } from '../conformance/mesh.js';
import { runCommand, type ExecResult } from '../process.js';
import { describePods, isReady, labelNamespace, startMesh, SYSTEM_NS, type Mesh, type PodView } from '../scenarios/mesh.js';
import { waitFor } from '../wait.js';
import type { DemoConsole } from './console.js';
import { agentConfigDump, waitAgentsKnowHbone, waitAgentsUseWaypoint, type DemoMesh, type WaypointConfigDump } from './demo-mesh.js';
import { LOADGEN, type LoadSummary } from './embedded-mesh.js';
import { parseManifests } from './manifests.js';
import { parseMetrics, type Sample } from './metrics.js';
import { httpGetInNetns } from './netns-io.js';

const WAYPOINT = 'waypoint';

export interface ClusterDemoMeshOptions {
  /** Keep the logs of every process (control plane, kubelets, pods) in workDir after close. */
  keep?: boolean;
}

const isCaptured = (p: PodView): boolean => p.metadata.annotations?.[ANNOTATIONS.redirection] === REDIRECTION.enabled;
const isWaypoint = (p: { metadata: { labels?: Record<string, string> } }): boolean => p.metadata.labels?.[LABELS.gatewayName] !== undefined;

export class ClusterDemoMesh implements DemoMesh {
  readonly closeDescription = 'helm uninstall ambit -n istio-system, then stopping the cluster (pods, kubelets, kube-proxy, CoreDNS, control plane)';
  private closing: Promise<void> | undefined;

  private constructor(readonly mesh: Mesh, readonly workDir: string, private readonly options: ClusterDemoMeshOptions) {}

  /** startCluster({nodes: 2}), the Gateway API CRDs and `helm install ambit charts/ambit`, until Ambit is Ready. */
  static async start(options: ClusterDemoMeshOptions, progress: (what: string) => void): Promise<ClusterDemoMesh> {
    const mesh = await startMesh({ log: progress });
    return new ClusterDemoMesh(mesh, mkdtempSync(join(tmpdir(), 'ambit-demo-kubernetes-')), options);
  }

  get prefix(): string {
    return this.mesh.cluster.nodePool!.topology.prefix;
  }

  get kubeconfigPath(): string {
    return this.mesh.cluster.kubeconfigPath;
  }

  get logDirs(): readonly string[] {
    return [this.podLogDir];
  }

  /** Where the kubelets keep pod logs while the cluster runs. */
  get podLogDir(): string {
    return this.mesh.cluster.nodePool!.dir;
  }

  /** kubectl with the cluster's admin kubeconfig; throws with kubectl's words on a non-zero exit. */
  private async kubectl(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    const r = await this.mesh.cluster.kubectl(args, { timeoutMs });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** `pod`, `node`, `ip` and readiness rows of the system namespace (for the install step's table). */
  async systemPodRows(): Promise<string[][]> {
    return (await this.mesh.pods(SYSTEM_NS)).map((p) => [`${SYSTEM_NS}/${p.metadata.name}`, p.spec.nodeName ?? '-', p.status.podIP ?? '-', isReady(p) ? 'Ready' : (p.status.phase ?? '?')]);
  }

  async deployApps(ui: DemoConsole, files: readonly string[]): Promise<void> {
    ui.say(`kubectl apply ${files.map((f) => `-f ${f}`).join(' ')}\n` +
      'The apiserver stores them; the controller-manager turns each Deployment into a ReplicaSet and a Pod, the scheduler\n' +
      'places the Pods, our kubelet runs each container as a process in the pod\'s network namespace (image ambit/bookinfo\n' +
      'is e2e/src/apps/bookinfo.ts), kube-proxy programs the Service VIPs and CoreDNS answers productpage.bookinfo.svc.');
    const namespaces = new Set(files.flatMap((f) => parseManifests(f).deployments.map((d) => d.namespace)));
    await ui.progress('kubectl apply, then waiting for every Deployment to be Available', async (update) => {
      for (const line of (await this.kubectl(['apply', ...files.flatMap((f) => ['-f', f])])).trim().split('\n')) update(line);
      for (const ns of namespaces) {
        await this.kubectl(['wait', '--for=condition=Available', 'deployment', '--all', '-n', ns, '--timeout=120s'], 130_000).catch(async (err: Error) => {
          throw new Error(`${err.message}\n  ${describePods(await this.mesh.pods(ns))}\n${this.mesh.logTails(ns)}`, { cause: err });
        });
        update(`every Deployment of ${ns} is Available`);
      }
    });
    // Ready pods become endpoints; kube-proxy and CoreDNS follow within a moment. A user's first curl would retry.
    await ui.progress('waiting for productpage to answer through its Service name', () => waitFor(async () => {
      const r = await this.load([this.serviceUrl('bookinfo', 'productpage', '/productpage')], 4, 20);
      return Object.values(r.byUrl)[0]?.statuses['200'] === 4;
    }, { timeoutMs: 30_000, intervalMs: 500, message: 'productpage to answer 200 from the curl pod' }));
  }

  /** The namespace's pods that are not on their way out (kubectl get pods without the Terminating ones). */
  private async livePods(namespace: string, selector?: string): Promise<PodView[]> {
    return (await this.mesh.pods(namespace, selector)).filter((p) => !p.metadata.deletionTimestamp);
  }

  async podRows(namespace: string): Promise<string[][]> {
    return (await this.livePods(namespace)).map((p) => [`${namespace}/${p.metadata.name}`, p.spec.nodeName ?? '-', p.status.podIP ?? '-']);
  }

  /** What a client in the same namespace writes: the Service's short name, resolved by CoreDNS. */
  serviceUrl(_namespace: string, name: string, path: string): string {
    return `http://${name}:9080${path}`;
  }

  async load(urls: readonly string[], count: number, rate: number): Promise<LoadSummary> {
    const curl = (await this.livePods('bookinfo', 'app=curl')).find(isReady);
    if (!curl) throw new Error(`no Ready curl pod in bookinfo:\n  ${describePods(await this.mesh.pods('bookinfo'))}`);
    const argv = [process.execPath, LOADGEN, ...urls.flatMap((u) => ['--url', u]), '--count', String(count), '--rate', String(rate), '--concurrency', '16'];
    const r: ExecResult = await this.mesh.cluster.exec(curl.metadata, argv, { timeoutMs: Math.ceil((count / rate) * 1000) + 30_000 });
    if (r.code !== 0) throw new Error(`load generator in ${curl.metadata.name} failed (${r.code ?? r.signal}): ${r.stderr.slice(-1000)}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as LoadSummary;
  }

  async captureNodeLink<T>(work: () => Promise<T>): Promise<{ result: T; capture: CaptureResult }> {
    const topo = this.mesh.cluster.nodePool!.topology;
    const node = topo.node(1);
    return await captureDuring(() => topo.capture(node, node.uplink, 'tcp'), work);
  }

  /** Node name -> the network namespace (path) of the Ready agent pod on it. */
  private async agentNetns(): Promise<Map<string, string>> {
    const agents = (await this.livePods(SYSTEM_NS, 'app=ztunnel')).filter(isReady);
    return new Map(agents.map((a) => [a.spec.nodeName ?? a.metadata.name, netnsPath(this.mesh.netnsOf(a))]));
  }

  /**
   * Until the namespace's app pods (not the waypoint) are exactly the Ready, captured ones, and every agent knows each
   * of them as an HBONE workload and no pod of the namespace that is gone.
   */
  private async waitCapturedEverywhere(namespace: string, update: (what: string) => void, timeoutMs = 90_000): Promise<PodView[]> {
    const pods = await waitFor(async () => {
      const all = await this.mesh.pods(namespace);
      const apps = all.filter((p) => !isWaypoint(p));
      return apps.every((p) => !p.metadata.deletionTimestamp && isReady(p) && isCaptured(p)) ? apps : undefined;
    }, { timeoutMs, intervalMs: 300, message: `every pod of ${namespace} Ready and annotated ${ANNOTATIONS.redirection}=${REDIRECTION.enabled}` }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n  ${describePods(await this.mesh.pods(namespace))}\n${this.mesh.logTails(SYSTEM_NS, 20)}`, { cause: err });
    });
    for (const p of pods) update(`${namespace}/${p.metadata.name} on ${p.spec.nodeName} captured (${ANNOTATIONS.redirection}=${REDIRECTION.enabled})`);
    const agents = await this.agentNetns();
    await waitAgentsKnowHbone(agents, pods.map((p) => p.status.podIP!), 30_000);
    const names = new Set(pods.map((p) => p.metadata.name));
    for (const [node, netns] of agents) {
      await waitFor(async () => (await agentConfigDump(netns)).workloads.every((w) => w.namespace !== namespace || names.has(w.name ?? '') || w.protocol !== 'HBONE'),
        { timeoutMs: 30_000, intervalMs: 200, message: `the agent of ${node} to forget the deleted pods of ${namespace}` });
    }
    update('both agents know every pod as HBONE');
    return pods;
  }

  async enroll(ui: DemoConsole, namespace: string): Promise<void> {
    ui.say(`kubectl label namespace ${namespace} ${LABELS.dataplaneMode}=${DATAPLANE_MODE.ambient}\n` +
      'No restarts, no sidecars: each node agent watches Namespaces and Pods, finds the network namespace of every running\n' +
      'pod of the namespace on its node and captures it in place, then annotates the Pod ambient.istio.io/redirection=enabled;\n' +
      'the controller tells every peer to speak HBONE to it.');
    await labelNamespace(this.mesh.cluster, namespace, LABELS.dataplaneMode, DATAPLANE_MODE.ambient);
    await ui.progress('waiting for the agents to capture the running pods', (update) => this.waitCapturedEverywhere(namespace, update));
  }

  async reconnectApps(ui: DemoConsole, namespace: string): Promise<void> {
    const list = await this.mesh.cluster.client.find<{ items: { metadata: { name: string }; spec: { template: { metadata: { labels?: Record<string, string> } } } }[] }>(`/apis/apps/v1/namespaces/${namespace}/deployments`);
    const names = (list?.items ?? []).filter((d) => d.spec.template.metadata.labels?.app !== 'curl' && !isWaypoint(d.spec.template)).map((d) => d.metadata.name);
    ui.say(`kubectl rollout restart deployment -n ${namespace} ${names.join(' ')}\n` +
      'New pods replace the old ones; the CNI plugin (chained after the node\'s network plugin by the agent DaemonSet) has\n' +
      'each new pod captured by its node\'s agent before its container starts.');
    const before = new Set((await this.livePods(namespace)).map((p) => p.metadata.uid));
    await ui.progress('restarting the bookinfo Deployments so their connections reopen', async (update) => {
      await this.kubectl(['rollout', 'restart', ...names.map((n) => `deployment/${n}`), '-n', namespace]);
      for (const n of names) {
        await this.kubectl(['rollout', 'status', `deployment/${n}`, '-n', namespace, '--timeout=120s'], 130_000);
        update(`deployment/${n} rolled out`);
      }
      const pods = await this.waitCapturedEverywhere(namespace, () => undefined);
      const fresh = pods.filter((p) => !before.has(p.metadata.uid));
      update(`${fresh.length} new pods, every one captured at creation`);
    });
  }

  async agentMetrics(): Promise<Sample[]> {
    const nodes = [...(await this.agentNetns()).keys()];
    return (await Promise.all(nodes.map((n) => this.mesh.agentMetrics(n)))).flat();
  }

  async addWaypoint(ui: DemoConsole, namespace: string, gatewayFile: string, services: readonly string[]): Promise<void> {
    const argv = ['waypoint', 'apply', '-n', namespace, '--enroll-namespace', '--wait'];
    ui.say(`ambitctl ${argv.join(' ')}\n` +
      `It writes the Gateway of ${basename(gatewayFile)} (class istio-waypoint, an HBONE listener on 15008) and labels the namespace\n` +
      `${LABELS.useWaypoint}=${WAYPOINT}; the controller's deployer creates the waypoint's ServiceAccount, Deployment and Service,\n` +
      'and --wait returns once the Gateway is Programmed.');
    await ui.progress('ambitctl waypoint apply, then waiting for the waypoint pod', async (update) => {
      const r = await runCommand([process.execPath, AMBITCTL, ...argv, '--waypoint-timeout', '90s', '--kubeconfig', this.kubeconfigPath], { timeoutMs: 120_000 });
      for (const line of r.stdout.trim().split('\n').filter(Boolean)) update(`ambitctl: ${line}`);
      if (r.code !== 0) throw new Error(`ambitctl waypoint apply: exit ${r.code ?? r.signal}: ${r.stdout.trim()} ${r.stderr.trim()}\n  ${describePods(await this.mesh.pods(namespace))}`);
      await waitFor(async () => (await this.waypointPod(namespace)) !== undefined, { timeoutMs: 60_000, intervalMs: 300, message: 'the waypoint pod Ready' }).catch(async (err: Error) => {
        throw new Error(`${err.message}\n  ${describePods(await this.mesh.pods(namespace))}\n${this.mesh.logTails(namespace)}`, { cause: err });
      });
      const pod = (await this.waypointPod(namespace))!;
      update(`waypoint pod ${pod.metadata.name} on ${pod.spec.nodeName} (${pod.status.podIP}) Ready`);
    });
    await ui.progress('waiting for the agents to send the namespace\'s services through the waypoint', async () =>
      waitAgentsUseWaypoint(await this.agentNetns(), namespace, services, 30_000));
  }

  private async waypointPod(namespace = 'bookinfo'): Promise<PodView | undefined> {
    return (await this.livePods(namespace, `${LABELS.gatewayName}=${WAYPOINT}`)).find(isReady);
  }

  private async requireWaypoint(): Promise<{ pod: PodView; netns: string }> {
    const pod = await this.waypointPod();
    if (!pod) throw new Error(`no Ready waypoint pod in bookinfo:\n  ${describePods(await this.mesh.pods('bookinfo'))}`);
    return { pod, netns: netnsPath(this.mesh.netnsOf(pod)) };
  }

  async applyConfig(file: string): Promise<KubeObject[]> {
    await this.kubectl(['apply', '-f', file]);
    return parseManifests(file).objects;
  }

  async deleteConfig(file: string): Promise<void> {
    await this.kubectl(['delete', '-f', file, '--wait']);
  }

  async waypointConfigDump(): Promise<WaypointConfigDump> {
    const { netns } = await this.requireWaypoint();
    const r = await httpGetInNetns(netns, '127.0.0.1', PORTS.admin, '/config_dump');
    if (r.status !== 200) throw new Error(`waypoint /config_dump: HTTP ${r.status}`);
    return JSON.parse(r.body) as WaypointConfigDump;
  }

  async waypointMetrics(): Promise<Sample[]> {
    const { pod, netns } = await this.requireWaypoint();
    const r = await httpGetInNetns(netns, pod.status.podIP!, PORTS.metrics, '/metrics');
    if (r.status !== 200) throw new Error(`waypoint /metrics: HTTP ${r.status}`);
    return parseMetrics(r.body);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.options.keep) this.mesh.cluster.collectLogs(this.workDir);
      } finally {
        try {
          await this.mesh.stop();
        } finally {
          if (!this.options.keep) rmSync(this.workDir, { recursive: true, force: true });
        }
      }
    })();
    return this.closing;
  }
}
