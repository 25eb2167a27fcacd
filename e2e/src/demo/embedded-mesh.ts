// The mesh of the embedded demo, with no Kubernetes binaries: nodes and pods are network namespaces
// (@ambit/e2e topology), the controller runs in embedded mode on a directory of YAML, one real node agent per node
// speaks xDS/CA to it, pods are captured through the real CNI plugin executable, and the waypoint is a pod of its
// own. What a cluster would do and nobody does here is done by this file, and said so:
//   scheduler + kubelet    -> Deployments expanded into Pods placed on topology pods, apps started in their netns
//   IP allocator           -> ClusterIPs from 10.96.0.0/16
//   kube-proxy             -> service-proxy.ts (DNAT per VIP in each node)
//   service-account tokens -> unsigned JWTs naming the service account (embedded CA reads the claims, loopback only)
//   the agent's annotator  -> `ambient.istio.io/redirection: enabled` written on the Pod objects after capture
//   istiod's ClusterIP     -> a loopback relay into each node / waypoint netns (netns-io.ts)
//   cluster DNS            -> an /etc/hosts per pod (bind-mounted in a private mount namespace) naming every Service
//                             as CoreDNS would (`reviews`, `reviews.bookinfo`, `reviews.bookinfo.svc.cluster.local`)
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  ANNOTATIONS, DATAPLANE_MODE, LABELS, PORTS, REDIRECTION, WAYPOINT_GATEWAY_CLASS, isWatchedKind, type KubeObject,
} from '@ambit/api';
import { createImageRegistry, repoPath, type ImageEntry } from '../kubelet/image-registry.js';
import { requireRoot, requireTools } from '../root.js';
import { createTopology, type Topology, type TopologyNode, type TopologyPod } from '../topology.js';
import type { NetnsProcess } from '../process.js';
import { waitFor } from '../wait.js';
import { parseManifests, podNameFor, podObject, selects, serviceEnv, servicePorts, type ContainerSpec, type ParsedManifests } from './manifests.js';
import { waitAgentsKnow, waitAgentsKnowHbone, waitAgentsUseWaypoint } from './demo-mesh.js';
import { httpGetInNetns, relayLoopback, type LoopbackRelay } from './netns-io.js';
import { applyServiceRules, type ServiceRule } from './service-proxy.js';

export const CONTROLLER_MAIN = repoPath('packages/controller/dist/src/main.js');
export const AGENT_MAIN = repoPath('packages/ztunnel/dist/src/main.js');
export const WAYPOINT_MAIN = repoPath('packages/waypoint/dist/src/main.js');
export const CNI_PLUGIN = repoPath('packages/ztunnel/bin/ambit-cni');
export const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));
/** The user's YAML of the demo (e2e/demo). */
export const DEMO_YAML_DIR = repoPath('e2e/demo');

const SYSTEM_NAMESPACE = 'istio-system';
const CLUSTER_DOMAIN = 'cluster.local';
const SERVICE_CIDR_PREFIX = '10.96.0.';

export interface MeshPod {
  name: string;
  namespace: string;
  deployment: string;
  labels: Record<string, string>;
  serviceAccountName: string;
  node: number;
  netns: TopologyPod;
  process?: NetnsProcess;
  enrolled: boolean;
  /** Not captured (the waypoint: istio.io/dataplane-mode=none). */
  optOut?: boolean;
  containers?: ContainerSpec[];
}

export interface EmbeddedMeshOptions {
  nodes?: number;
  /** Which node a Deployment's pods go to (the scheduler's job); default round robin. */
  placement?: (deployment: string, replica: number) => number;
  logLevel?: string;
  /** Keep the work directory (logs, config dir) after close. */
  keepWorkDir?: boolean;
  /** Images besides the cluster-in-a-box defaults (a benchmark's backend, the host's nginx); may override them. */
  images?: Record<string, ImageEntry>;
}

export interface StartWaypointOptions {
  /** Added to the waypoint's environment. */
  env?: Record<string, string>;
  /** Node flags before the waypoint's main (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
}

function jwtFor(namespace: string, serviceAccount: string, podName: string): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  // Unsigned: the embedded CA takes the identity from these claims (loopback-authenticator.ts) and says so.
  return [
    b64({ alg: 'none', typ: 'JWT' }),
    b64({ iss: 'ambit-demo', sub: `system:serviceaccount:${namespace}:${serviceAccount}`, 'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount }, pod: { name: podName } } }),
    'unsigned',
  ].join('.');
}

export class EmbeddedMesh {
  readonly configDir: string;
  readonly stateDir: string;
  readonly pods: MeshPod[] = [];
  readonly services: KubeObject[] = [];
  readonly namespaces = new Map<string, KubeObject>();
  readonly serviceAccounts: { namespace: string; name: string }[] = [];
  private controller: NetnsProcess | undefined;
  private readonly agents = new Map<number, NetnsProcess>();
  private readonly relays: LoopbackRelay[] = [];
  private waypointProc: NetnsProcess | undefined;
  waypointPod: MeshPod | undefined;
  private nextVip = 10;
  private generation = 0;
  private readonly images: ReturnType<typeof createImageRegistry>;

  private constructor(readonly topo: Topology, readonly controlPlane: TopologyNode, private readonly options: EmbeddedMeshOptions) {
    this.images = createImageRegistry(options.images ?? {});
    this.configDir = join(topo.workDir, 'config');
    this.stateDir = join(topo.workDir, 'state');
    mkdirSync(this.configDir, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
  }

  /** Nodes, the controller (on its own control-plane node), one agent per node. */
  static async start(options: EmbeddedMeshOptions = {}, progress: (what: string) => void = () => {}): Promise<EmbeddedMesh> {
    requireRoot();
    requireTools(['ip', 'iptables', 'iptables-restore', 'iptables-save', 'nsenter', 'tcpdump', 'unshare']);
    for (const f of [CONTROLLER_MAIN, AGENT_MAIN, CNI_PLUGIN, LOADGEN]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: build first (npx turbo run build)`);
    }
    const nodes = options.nodes ?? 2;
    progress(`creating ${nodes} nodes and a control-plane node (network namespaces)`);
    const topo = await createTopology({ nodes: nodes + 1, keepWorkDir: options.keepWorkDir ?? false });
    const mesh = new EmbeddedMesh(topo, topo.node(nodes + 1), options);
    try {
      mesh.writeSystemObjects();
      progress('starting the controller (embedded mode: watching a directory of YAML)');
      await mesh.startController();
      for (const n of mesh.workerNodes()) {
        progress(`starting the node agent on node-${n.index}`);
        await mesh.startAgent(n);
      }
    } catch (err) {
      await mesh.close().catch(() => undefined);
      throw err;
    }
    return mesh;
  }

  /** The node agent process of node `n` (its PID is the agent's own: CPU and memory can be read from /proc). */
  agentProcess(n: number): NetnsProcess {
    const proc = this.agents.get(n);
    if (!proc) throw new Error(`no node agent runs on node-${n}`);
    return proc;
  }

  workerNodes(): TopologyNode[] {
    return this.topo.nodes.filter((n) => n !== this.controlPlane);
  }

  nodeName(n: number): string {
    return `node-${n}`;
  }

  get workDir(): string {
    return this.topo.workDir;
  }

  /** Writes a config-dir file atomically (the controller ignores dot files, so the temp name is never read). */
  writeConfig(name: string, objects: readonly KubeObject[]): void {
    const tmp = join(this.configDir, `.${name}.${++this.generation}.tmp`);
    writeFileSync(tmp, objects.map((o) => stringify(o)).join('---\n'));
    renameSync(tmp, join(this.configDir, name));
  }

  private writeSystemObjects(): void {
    const objects: KubeObject[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }];
    for (const n of this.workerNodes()) {
      // The agents' own Pods: the CA lets an agent (service account istio-system/ztunnel) ask for the identities of
      // pods on the node its Pod runs on, and nothing else.
      objects.push(podObject({ name: `ztunnel-${this.nodeName(n.index)}`, namespace: SYSTEM_NAMESPACE, nodeName: this.nodeName(n.index), ip: n.bridgeIp, labels: { app: 'ztunnel' }, serviceAccountName: 'ztunnel', hostNetwork: true }));
    }
    this.writeConfig('00-istio-system.yaml', objects);
  }

  private async startController(): Promise<void> {
    const cp = this.controlPlane;
    this.controller = await this.topo.spawnIn(cp, [process.execPath, '--enable-source-maps', CONTROLLER_MAIN], {
      env: { AMBIT_CONFIG_DIR: this.configDir, AMBIT_STATE_DIR: this.stateDir, POD_NAME: 'ambit-controller', POD_NAMESPACE: SYSTEM_NAMESPACE, LOG_LEVEL: this.options.logLevel ?? 'info' },
      logFile: join(this.workDir, 'controller.log'),
    });
    const proc = this.controller;
    await waitFor(async () => {
      if (!proc.running) throw new Error(`the controller exited: ${this.tail('controller.log')}`);
      return (await httpGetInNetns(cp.nsPath, '127.0.0.1', 15014, '/ready').catch(() => ({ status: 0 }))).status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, message: 'the controller to become ready' });
  }

  get rootCertPath(): string {
    return join(this.stateDir, 'root-cert.pem');
  }

  private tail(file: string): string {
    const p = join(this.workDir, file);
    return existsSync(p) ? readFileSync(p, 'utf8').slice(-2000) : '(no log)';
  }

  private writeToken(name: string, namespace: string, serviceAccount: string, podName: string): string {
    const path = join(this.workDir, `${name}.token`);
    writeFileSync(path, jwtFor(namespace, serviceAccount, podName), { mode: 0o600 });
    return path;
  }

  private async relayFrom(netns: { nsPath: string }): Promise<void> {
    this.relays.push(await relayLoopback(netns.nsPath, this.controlPlane.nsPath, PORTS.xds));
  }

  private async startAgent(node: TopologyNode): Promise<void> {
    await this.relayFrom(node);
    const podName = `ztunnel-${this.nodeName(node.index)}`;
    const env = {
      XDS_ADDRESS: `https://127.0.0.1:${PORTS.xds}`,
      CA_ADDRESS: `https://127.0.0.1:${PORTS.xds}`,
      XDS_ROOT_CA: this.rootCertPath,
      CA_ROOT_CA: this.rootCertPath,
      AUTH_TOKEN: this.writeToken(podName, SYSTEM_NAMESPACE, 'ztunnel', podName),
      NODE_NAME: this.nodeName(node.index),
      POD_NAME: podName,
      POD_NAMESPACE: SYSTEM_NAMESPACE,
      SERVICE_ACCOUNT: 'ztunnel',
      INSTANCE_IP: node.bridgeIp,
      AMBIT_CNI_SOCKET: join(this.workDir, `cni-n${node.index}.sock`),
      AMBIT_POD_SNAPSHOT: join(this.workDir, `pods-n${node.index}.json`),
      AMBIT_KUBERNETES_WATCH: 'false',
      // The demo's teardown should not wait on the keep-alive connections of the apps.
      AMBIT_DRAIN_TIMEOUT_SECONDS: '1',
      LOG_LEVEL: this.options.logLevel ?? 'info',
    };
    const logFile = join(this.workDir, `agent-n${node.index}.log`);
    const proc = await this.topo.spawnIn(node, [process.execPath, '--enable-source-maps', AGENT_MAIN], { env, logFile });
    this.agents.set(node.index, proc);
    await waitFor(async () => {
      if (!proc.running) throw new Error(`the agent of node-${node.index} exited: ${this.tail(basename(logFile))}`);
      return (await httpGetInNetns(node.nsPath, '127.0.0.1', PORTS.readiness, '/healthz/ready').catch(() => ({ status: 0 }))).status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, message: `the agent of node-${node.index} to become ready` });
  }

  /**
   * Deploys a user's manifest file: Namespace and Services (with ClusterIPs) to the config dir, each Deployment as
   * Pods started in their namespaces, service rules on every node. Returns what was parsed.
   */
  async deploy(file: string, progress: (what: string) => void = () => {}): Promise<ParsedManifests> {
    const parsed = parseManifests(file);
    this.serviceAccounts.push(...parsed.serviceAccounts);
    const passThrough: KubeObject[] = [];
    for (const obj of parsed.objects) {
      if (obj.kind === 'Namespace') this.namespaces.set(obj.metadata.name, obj);
      else if (obj.kind === 'Service') this.services.push(this.allocateClusterIp(obj));
      else passThrough.push(obj);
    }
    for (const ns of this.namespaces.keys()) this.writeNamespace(ns);
    this.writeServices();
    if (passThrough.length) this.writeConfig(`user-${basename(file)}`, passThrough);
    const placement = this.options.placement ?? ((_d: string, r: number) => (r % this.workerNodes().length) + 1);
    const started: MeshPod[] = [];
    for (const d of parsed.deployments) {
      if (!this.serviceAccounts.some((sa) => sa.namespace === d.namespace && sa.name === d.serviceAccountName)) {
        throw new Error(`Deployment ${d.namespace}/${d.name}: spec.template.spec.serviceAccountName: ServiceAccount ${d.serviceAccountName} is not defined in the manifests`);
      }
      for (let r = 0; r < d.replicas; r++) {
        const node = placement(d.name, r);
        const pod: MeshPod = {
          name: podNameFor(d.name, r), namespace: d.namespace, deployment: d.name, labels: d.labels, serviceAccountName: d.serviceAccountName,
          node, netns: await this.topo.addPod(node), enrolled: false,
        };
        this.pods.push(pod);
        started.push(pod);
        progress(`pod ${pod.namespace}/${pod.name} on ${this.nodeName(node)} (${pod.netns.ip})`);
        pod.process = await this.startContainers(pod, d.containers);
      }
    }
    this.writePods();
    await this.applyServiceRules();
    await this.waitListening(started);
    return parsed;
  }

  private allocateClusterIp(svc: KubeObject): KubeObject {
    const ip = `${SERVICE_CIDR_PREFIX}${this.nextVip++}`;
    return { ...svc, spec: { ...svc.spec, clusterIP: ip, clusterIPs: [ip], type: svc.spec?.type ?? 'ClusterIP' } };
  }

  service(namespace: string, name: string): KubeObject {
    const s = this.services.find((x) => x.metadata.namespace === namespace && x.metadata.name === name);
    if (!s) throw new Error(`no Service ${namespace}/${name} deployed`);
    return s;
  }

  /** http://<clusterIP>:<port><path> of a Service. */
  serviceUrl(namespace: string, name: string, path: string): string {
    const s = this.service(namespace, name);
    return `http://${s.spec.clusterIP}:${servicePorts(s)[0]!.port}${path}`;
  }

  podsOf(namespace: string, selector: Record<string, string>): MeshPod[] {
    return this.pods.filter((p) => p.namespace === namespace && selects(selector, p.labels));
  }

  /**
   * Restarts the containers of pods (`kubectl rollout restart`, kept in the same sandbox, so capture stays): their
   * connections close, and new ones take the mesh's current path.
   */
  async restart(pods: readonly MeshPod[]): Promise<void> {
    for (const pod of pods) {
      if (!pod.containers || !pod.process) throw new Error(`pod ${pod.namespace}/${pod.name} has no containers to restart`);
      await pod.process.stop(3000);
      pod.process = await this.startContainers(pod, pod.containers);
    }
    for (const pod of pods) await this.waitPodListening(pod);
  }

  private async startContainers(pod: MeshPod, containers: ContainerSpec[]): Promise<NetnsProcess> {
    pod.containers = containers;
    // One process per pod: the samples have one container each (a sidecar-less mesh needs nothing more).
    if (containers.length !== 1) throw new Error(`${pod.namespace}/${pod.deployment}: the embedded demo runs pods with exactly one container, this one has ${containers.length}`);
    const c = containers[0]!;
    const resolved = this.images.resolve(c);
    if (!resolved.ok) throw new Error(`${pod.namespace}/${pod.name}: ${resolved.reason}: ${resolved.message}`);
    const env: Record<string, string> = {
      ...resolved.env,
      ...serviceEnv(this.services.filter((s) => s.metadata.namespace === pod.namespace)),
      POD_NAME: pod.name, POD_NAMESPACE: pod.namespace,
    };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    const hosts = join(this.workDir, `hosts-${pod.name}`);
    writeFileSync(hosts, hostsFile(this.services, pod.namespace));
    const argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hosts, ...resolved.argv];
    return await this.topo.spawnIn(pod.netns, argv, { env, logFile: join(this.workDir, `pod-${pod.name}.log`) });
  }

  private async waitListening(pods: MeshPod[]): Promise<void> {
    for (const pod of pods) await this.waitPodListening(pod);
  }

  private async waitPodListening(pod: MeshPod): Promise<void> {
    {
      const port = pod.containers?.[0]?.ports?.[0]?.containerPort;
      if (port === undefined) return;
      await waitFor(async () => {
        if (!pod.process?.running) throw new Error(`pod ${pod.name} exited: ${this.tail(`pod-${pod.name}.log`)}`);
        return (await httpGetInNetns(pod.netns.nsPath, pod.netns.ip, port, '/health').catch(() => ({ status: 0 }))).status === 200;
      }, { timeoutMs: 15_000, intervalMs: 100, message: `pod ${pod.name} listening on ${port}` });
    }
  }

  private writeNamespace(name: string): void {
    this.writeConfig(`10-namespace-${name}.yaml`, [this.namespaces.get(name)!]);
  }

  /** Sets labels on a Namespace (`kubectl label namespace ...`); null removes one. */
  labelNamespace(name: string, labels: Record<string, string | null>): void {
    const ns = this.namespaces.get(name);
    if (!ns) throw new Error(`no Namespace ${name} deployed`);
    const next = { ...(ns.metadata.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    this.namespaces.set(name, { ...ns, metadata: { ...ns.metadata, labels: next } });
    this.writeNamespace(name);
  }

  private writeServices(): void {
    this.writeConfig('20-services.yaml', this.services);
  }

  private writePods(): void {
    this.writeConfig('30-pods.yaml', this.pods.map((p) => podObject({
      name: p.name, namespace: p.namespace, nodeName: this.nodeName(p.node), ip: p.netns.ip, labels: p.labels, serviceAccountName: p.serviceAccountName,
      annotations: p.enrolled ? { [ANNOTATIONS.redirection]: REDIRECTION.enabled } : {},
    })));
  }

  private async applyServiceRules(): Promise<void> {
    const rules: ServiceRule[] = [];
    for (const svc of this.services) {
      const eps = this.podsOf(svc.metadata.namespace ?? 'default', svc.spec?.selector as Record<string, string>);
      for (const p of servicePorts(svc)) {
        rules.push({ name: `${svc.metadata.namespace}/${svc.metadata.name}`, vip: svc.spec.clusterIP as string, port: p.port, endpoints: eps.map((e) => ({ ip: e.netns.ip, port: p.targetPort })) });
      }
    }
    for (const n of this.workerNodes()) await applyServiceRules(n.netns, rules, n.bridge, n.podCidr);
  }

  /**
   * Enrolls every pod of an ambient namespace: the CNI plugin asks the node's agent to capture it (what the CNI
   * node agent does for running pods when the namespace gets the label), then the Pod is annotated
   * `ambient.istio.io/redirection: enabled`, which tells the controller (and every peer) to use HBONE.
   */
  async enroll(namespace: string, progress: (what: string) => void = () => {}): Promise<MeshPod[]> {
    const ns = this.namespaces.get(namespace);
    if (ns?.metadata.labels?.[LABELS.dataplaneMode] !== DATAPLANE_MODE.ambient) {
      throw new Error(`namespace ${namespace} is not labelled ${LABELS.dataplaneMode}=${DATAPLANE_MODE.ambient}`);
    }
    const pods = this.pods.filter((p) => p.namespace === namespace && !p.enrolled && !p.optOut);
    // The controller must have read the Pod objects first: its CA gives an agent only identities of pods it knows
    // on that agent's node (a CNI ADD racing the directory watch would wait for a certificate in vain).
    await waitAgentsKnow(this.agentNetns(), pods.map((p) => p.netns.ip), 'any');
    for (const pod of pods) {
      const r = await this.runCni('ADD', pod);
      if (r.code !== 0) throw new Error(`CNI ADD of ${namespace}/${pod.name} on ${this.nodeName(pod.node)} failed: ${r.stdout.trim()} ${r.stderr.trim()}`);
      pod.enrolled = true;
      progress(`captured ${namespace}/${pod.name} on ${this.nodeName(pod.node)}`);
    }
    this.writePods();
    // Every agent must know the new workloads as HBONE before anyone's traffic depends on it.
    await waitAgentsKnowHbone(this.agentNetns(), pods.map((p) => p.netns.ip));
    return pods;
  }

  private runCni(command: 'ADD' | 'DEL', pod: MeshPod): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const netconf = {
      cniVersion: '1.0.0', name: 'ambit-demo', type: 'ambit-cni', agentSocket: join(this.workDir, `cni-n${pod.node}.sock`), timeoutSeconds: 20,
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: pod.netns.nsPath }], ips: [{ address: `${pod.netns.ip}/24`, interface: 0, gateway: pod.netns.gateway }] },
    };
    return new Promise((resolve, reject) => {
      const child = spawn(CNI_PLUGIN, [], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: `sandbox-${pod.name}`, CNI_NETNS: pod.netns.nsPath,
          CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin',
          CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_UID=uid-${pod.name}`,
        },
      });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(JSON.stringify(netconf));
    });
  }

  /** Copies a user's YAML of Istio / Gateway API objects into the config dir (`kubectl apply -f`). */
  apply(file: string): KubeObject[] {
    const parsed = parseManifests(file);
    if (parsed.deployments.length || parsed.serviceAccounts.length) throw new Error(`${basename(file)}: apply() takes configuration objects only; use deploy() for workloads`);
    const bad = parsed.objects.find((o) => !isWatchedKind(o.kind));
    if (bad) throw new Error(`${basename(file)}: ${bad.kind} is not a kind the controller reads`);
    copyFileSync(file, join(this.configDir, `.${basename(file)}.tmp`));
    renameSync(join(this.configDir, `.${basename(file)}.tmp`), join(this.configDir, `user-${basename(file)}`));
    return parsed.objects;
  }

  /** Removes a file applied with apply() (`kubectl delete -f`); its objects are deleted. */
  remove(fileName: string): void {
    const p = join(this.configDir, `user-${basename(fileName)}`);
    if (!existsSync(p)) throw new Error(`${fileName} was not applied`);
    unlinkSync(p);
  }

  /**
   * Deploys the waypoint for a Gateway the user applied (what the controller's deployer does in a cluster: a
   * ServiceAccount, a Service with the HBONE port, a pod running the waypoint), opted out of capture.
   */
  async startWaypoint(gateway: KubeObject, node: number, options: StartWaypointOptions = {}): Promise<MeshPod> {
    if (!existsSync(WAYPOINT_MAIN)) throw new Error(`${WAYPOINT_MAIN} is missing: build packages/waypoint first`);
    if (gateway.spec?.gatewayClassName !== WAYPOINT_GATEWAY_CLASS) throw new Error(`Gateway ${gateway.metadata.namespace}/${gateway.metadata.name}: spec.gatewayClassName: must be ${WAYPOINT_GATEWAY_CLASS}`);
    const namespace = gateway.metadata.namespace ?? 'default';
    const name = gateway.metadata.name;
    const labels = { [LABELS.gatewayName]: name, [LABELS.dataplaneMode]: DATAPLANE_MODE.none };
    const pod: MeshPod = { name: podNameFor(name, 0), namespace, deployment: name, labels, serviceAccountName: name, node, netns: await this.topo.addPod(node), enrolled: false, optOut: true };
    this.pods.push(pod);
    this.waypointPod = pod;
    this.services.push(this.allocateClusterIp({
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels: { [LABELS.gatewayName]: name } },
      spec: { selector: { [LABELS.gatewayName]: name }, ports: [{ name: 'mesh', port: PORTS.hbone, targetPort: PORTS.hbone }] },
    }));
    this.writeServices();
    this.writePods();
    await this.applyServiceRules();
    await this.relayFrom(pod.netns);
    const env = {
      XDS_ADDRESS: `https://127.0.0.1:${PORTS.xds}`, CA_ADDRESS: `https://127.0.0.1:${PORTS.xds}`,
      XDS_ROOT_CA: this.rootCertPath, CA_ROOT_CA: this.rootCertPath,
      AUTH_TOKEN: this.writeToken(`waypoint-${name}`, namespace, name, pod.name),
      POD_NAME: pod.name, POD_NAMESPACE: namespace, SERVICE_ACCOUNT: name, GATEWAY_NAME: name,
      INSTANCE_IP: pod.netns.ip, NODE_NAME: this.nodeName(node), LOG_LEVEL: this.options.logLevel ?? 'info', AMBIT_DRAIN_TIMEOUT_SECONDS: '1',
      ...options.env,
    };
    const logFile = join(this.workDir, `waypoint-${name}.log`);
    const proc = await this.topo.spawnIn(pod.netns, [process.execPath, '--enable-source-maps', ...(options.nodeArgs ?? []), WAYPOINT_MAIN], { env, logFile });
    this.waypointProc = proc;
    pod.process = proc;
    await waitFor(async () => {
      if (!proc.running) throw new Error(`the waypoint exited: ${this.tail(basename(logFile))}`);
      return (await httpGetInNetns(pod.netns.nsPath, '127.0.0.1', PORTS.readiness, '/healthz/ready').catch(() => ({ status: 0 }))).status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, message: 'the waypoint to become ready' });
    return pod;
  }

  /** The waypoint's config dump (its admin port, inside its pod). */
  async waypointConfigDump(): Promise<{ staticConfig?: { configObjects?: string[]; configVersion?: unknown; rejectedConfigObjects?: unknown[] } }> {
    const pod = this.waypointPod;
    if (!pod) throw new Error('no waypoint is running');
    return JSON.parse((await httpGetInNetns(pod.netns.nsPath, '127.0.0.1', PORTS.admin, '/config_dump')).body) as never;
  }

  /** Until every agent routes `namespace/service` through a waypoint. */
  async waitServicesUseWaypoint(namespace: string, names: readonly string[]): Promise<void> {
    await waitAgentsUseWaypoint(this.agentNetns(), namespace, names);
  }

  /** Node name -> the netns its agent runs in (the node's own). */
  agentNetns(): Map<string, string> {
    return new Map(this.workerNodes().map((n) => [this.nodeName(n.index), n.nsPath]));
  }

  /** Runs the bounded load generator inside a pod; returns its JSON summary. */
  async load(from: MeshPod, urls: readonly string[], count: number, rate: number): Promise<LoadSummary> {
    const argv = [process.execPath, LOADGEN, ...urls.flatMap((u) => ['--url', u]), '--count', String(count), '--rate', String(rate), '--concurrency', '16'];
    const r = await this.topo.execIn(from.netns, argv, { timeoutMs: Math.ceil((count / rate) * 1000) + 30_000 });
    if (r.code !== 0) throw new Error(`load generator in ${from.name} failed (${r.code ?? r.signal}): ${r.stderr.slice(-1000)}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as LoadSummary;
  }

  /** Every agent's /metrics, concatenated (each node's series are distinct by their workload labels). */
  async agentMetrics(): Promise<string> {
    const texts = await Promise.all(this.workerNodes().map(async (n) => (await httpGetInNetns(n.nsPath, '127.0.0.1', PORTS.metrics, '/metrics')).body));
    return texts.join('\n');
  }

  async waypointMetrics(): Promise<string> {
    const pod = this.waypointPod;
    if (!pod) throw new Error('no waypoint is running');
    return (await httpGetInNetns(pod.netns.nsPath, pod.netns.ip, PORTS.metrics, '/metrics')).body;
  }

  /** Service FQDN (`reviews.bookinfo.svc.cluster.local`). */
  fqdn(namespace: string, name: string): string {
    return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;
  }

  /** Stops everything and removes the namespaces (also runs on exit and signals, through the topology). */
  async close(): Promise<void> {
    for (const r of this.relays.splice(0)) await r.close().catch(() => undefined);
    await this.topo.destroy();
  }
}

/**
 * /etc/hosts for a pod of `namespace`: each Service by the names CoreDNS answers for it (the short name only for the
 * pod's own namespace, as the search path makes it), so apps find each other by name as in a cluster.
 */
export function hostsFile(services: readonly KubeObject[], namespace: string): string {
  const lines = ['127.0.0.1 localhost', '::1 localhost'];
  for (const s of services) {
    const ip = s.spec?.clusterIP as string | undefined;
    if (!ip) continue;
    const ns = s.metadata.namespace ?? 'default';
    const name = s.metadata.name;
    lines.push([ip, `${name}.${ns}.svc.${CLUSTER_DOMAIN}`, `${name}.${ns}.svc`, `${name}.${ns}`, ...(ns === namespace ? [name] : [])].join(' '));
  }
  return lines.join('\n') + '\n';
}

export interface LoadSummary {
  count: number;
  seconds: number;
  byUrl: Record<string, {
    count: number;
    statuses: Record<string, number>;
    versions: Record<string, number>;
    ratingsErrors: number;
    errors: Record<string, number>;
    p50Ms: number;
    p99Ms: number;
  }>;
}
