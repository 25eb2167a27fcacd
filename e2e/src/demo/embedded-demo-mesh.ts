// The demo's story on the embedded mesh (no Kubernetes): the DemoMesh steps done the embedded way, each saying
// what it plays (scheduler and kubelet for Deployments, the CNI node agent for enrollment, the controller's
// waypoint deployer), over EmbeddedMesh.
import { basename } from 'node:path';
import { DATAPLANE_MODE, LABELS, type KubeObject } from '@ambit/api';
import { captureDuring, type CaptureResult } from '../capture.js';
import type { DemoConsole } from './console.js';
import type { DemoMesh, WaypointConfigDump } from './demo-mesh.js';
import { EmbeddedMesh, type EmbeddedMeshOptions, type LoadSummary, type MeshPod } from './embedded-mesh.js';
import { parseMetrics, type Sample } from './metrics.js';

export class EmbeddedDemoMesh implements DemoMesh {
  readonly closeDescription = 'stopping every process and deleting the namespaces';

  private constructor(readonly mesh: EmbeddedMesh) {}

  static async start(options: EmbeddedMeshOptions, progress: (what: string) => void): Promise<EmbeddedDemoMesh> {
    return new EmbeddedDemoMesh(await EmbeddedMesh.start(options, progress));
  }

  get workDir(): string {
    return this.mesh.workDir;
  }

  get logDirs(): readonly string[] {
    return [this.mesh.workDir];
  }

  get prefix(): string {
    return this.mesh.topo.prefix;
  }

  async deployApps(ui: DemoConsole, files: readonly string[]): Promise<void> {
    ui.say(`kubectl apply ${files.map((f) => `-f ${f}`).join(' ')}\n` +
      'The embedded controller knows Pods, not Deployments: the demo plays scheduler and kubelet, turning each Deployment\n' +
      'into a Pod in its own network namespace (and gives Services a ClusterIP, kube-proxy style DNAT on each node).');
    await ui.progress('starting productpage, details, ratings, reviews v1/v2/v3 and a curl pod', async (update) => {
      for (const f of files) await this.mesh.deploy(f, update);
    });
  }

  async podRows(namespace: string): Promise<string[][]> {
    return this.mesh.pods.filter((p) => p.namespace === namespace).map((p) => [`${p.namespace}/${p.name}`, this.mesh.nodeName(p.node), p.netns.ip]);
  }

  serviceUrl(namespace: string, name: string, path: string): string {
    return this.mesh.serviceUrl(namespace, name, path);
  }

  private curl(): MeshPod {
    const curl = this.mesh.pods.find((p) => p.labels.app === 'curl');
    if (!curl) throw new Error('no curl pod deployed');
    return curl;
  }

  load(urls: readonly string[], count: number, rate: number): Promise<LoadSummary> {
    return this.mesh.load(this.curl(), urls, count, rate);
  }

  async captureNodeLink<T>(work: () => Promise<T>): Promise<{ result: T; capture: CaptureResult }> {
    const node = this.mesh.topo.node(1);
    return await captureDuring(() => this.mesh.topo.capture(node, node.uplink, 'tcp'), work);
  }

  async enroll(ui: DemoConsole, namespace: string): Promise<void> {
    ui.say(`kubectl label namespace ${namespace} ${LABELS.dataplaneMode}=${DATAPLANE_MODE.ambient}\n` +
      'No restarts, no sidecars: the CNI plugin asks each node\'s agent to capture the running pods (what the CNI node agent\n' +
      'does in a cluster), and the Pods get ambient.istio.io/redirection=enabled so every peer speaks HBONE to them.');
    this.mesh.labelNamespace(namespace, { [LABELS.dataplaneMode]: DATAPLANE_MODE.ambient });
    await ui.progress('capturing the pods through the CNI plugin', (update) => this.mesh.enroll(namespace, update));
  }

  /** `kubectl rollout restart`: the containers restart in place (same pods, still captured), reconnecting. */
  async reconnectApps(ui: DemoConsole, namespace: string): Promise<void> {
    ui.say(`kubectl rollout restart deployment -n ${namespace}   (containers restart in place; the pods keep their capture)`);
    const apps = this.mesh.pods.filter((p) => p.namespace === namespace && !p.optOut && p.labels.app !== 'curl');
    await ui.progress('restarting the bookinfo containers so their connections reopen', () => this.mesh.restart(apps));
  }

  async agentMetrics(): Promise<Sample[]> {
    return parseMetrics(await this.mesh.agentMetrics());
  }

  async addWaypoint(ui: DemoConsole, namespace: string, gatewayFile: string, services: readonly string[]): Promise<void> {
    ui.say(`kubectl apply -f ${gatewayFile}   (istioctl/ambitctl waypoint apply -n ${namespace})\n` +
      `kubectl label namespace ${namespace} ${LABELS.useWaypoint}=waypoint\n` +
      'The demo deploys the waypoint as the controller\'s deployer would in a cluster: a pod with its own identity and a\n' +
      'Service with the HBONE port 15008.');
    const [gateway] = this.mesh.apply(gatewayFile);
    if (!gateway) throw new Error(`${basename(gatewayFile)} holds no Gateway`);
    await ui.progress('starting the waypoint pod', () => this.mesh.startWaypoint(gateway, 2));
    this.mesh.labelNamespace(namespace, { [LABELS.useWaypoint]: gateway.metadata.name });
    await ui.progress('waiting for the agents to send the namespace\'s services through the waypoint', () => this.mesh.waitServicesUseWaypoint(namespace, services));
  }

  async applyConfig(file: string): Promise<KubeObject[]> {
    return this.mesh.apply(file);
  }

  async deleteConfig(file: string): Promise<void> {
    this.mesh.remove(basename(file));
  }

  waypointConfigDump(): Promise<WaypointConfigDump> {
    return this.mesh.waypointConfigDump();
  }

  async waypointMetrics(): Promise<Sample[]> {
    return parseMetrics(await this.mesh.waypointMetrics());
  }

  close(): Promise<void> {
    return this.mesh.close();
  }
}
