// What the demo's story needs from a mesh, so one story runs on both: the embedded mesh (embedded-demo-mesh.ts: no
// Kubernetes, the demo plays scheduler, kubelet and kube-proxy) and the cluster-in-a-box (cluster-mesh.ts: a real
// apiserver, helm install, kubectl and ambitctl). The steps that work differently on each (deploying, enrolling,
// restarting apps, adding the waypoint) are the mesh's, and each says how it does them; the measurements and checks
// are the story's.
import type { KubeObject } from '@ambit/api';
import { PORTS } from '@ambit/api';
import type { CaptureResult } from '../capture.js';
import { waitFor } from '../wait.js';
import type { DemoConsole } from './console.js';
import type { LoadSummary } from './embedded-mesh.js';
import type { Sample } from './metrics.js';
import { httpGetInNetns } from './netns-io.js';

/** The part of a waypoint's /config_dump the story reads. */
export interface WaypointConfigDump {
  staticConfig?: { configObjects?: string[]; configVersion?: unknown; rejectedConfigObjects?: unknown[] };
}

export interface DemoMesh {
  /** Where the logs of every process are (for "look at" hints and failures). */
  readonly workDir: string;
  /** Directories holding the processes' logs while the mesh runs (scanned for warnings when a step fails). */
  readonly logDirs: readonly string[];
  /** Prefix of every network namespace the mesh created (`amb-...`). */
  readonly prefix: string;
  /** Deploys the user's workload YAML (Namespace, ServiceAccounts, Services, Deployments) and waits until it runs. */
  deployApps(ui: DemoConsole, files: readonly string[]): Promise<void>;
  /** `pod`, `node`, `ip` rows of a namespace's pods. */
  podRows(namespace: string): Promise<string[][]>;
  /** The URL a client pod of `namespace` uses for a Service. */
  serviceUrl(namespace: string, name: string, path: string): string;
  /** Runs the bounded load generator in the namespace's curl pod. */
  load(urls: readonly string[], count: number, rate: number): Promise<LoadSummary>;
  /** Captures TCP on node-1's link to the other nodes while `work` runs. */
  captureNodeLink<T>(work: () => Promise<T>): Promise<{ result: T; capture: CaptureResult }>;
  /** `kubectl label namespace NS istio.io/dataplane-mode=ambient`, until every pod of it is captured. */
  enroll(ui: DemoConsole, namespace: string): Promise<void>;
  /** Makes the apps of the namespace (not curl) reopen their connections, so they take the mesh's current path. */
  reconnectApps(ui: DemoConsole, namespace: string): Promise<void>;
  /** Every node agent's metrics (port 15020). */
  agentMetrics(): Promise<Sample[]>;
  /** Adds the namespace's waypoint and waits until every agent sends `services` through it. */
  addWaypoint(ui: DemoConsole, namespace: string, gatewayFile: string, services: readonly string[]): Promise<void>;
  /** `kubectl apply -f` of Istio / Gateway API configuration; returns the objects of the file. */
  applyConfig(file: string): Promise<KubeObject[]>;
  /** `kubectl delete -f` of a file applied with applyConfig. */
  deleteConfig(file: string): Promise<void>;
  waypointConfigDump(): Promise<WaypointConfigDump>;
  /** The waypoint's metrics (port 15020). */
  waypointMetrics(): Promise<Sample[]>;
  /** What close() does, in a few words (the clean-up step's progress line). */
  readonly closeDescription: string;
  /** Stops everything; safe to call more than once. */
  close(): Promise<void>;
}

/** The parts of a node agent's /config_dump the demo reads. */
export interface AgentConfigDump {
  workloads: { name?: string; namespace?: string; workloadIps?: string[]; protocol?: string }[];
  services: { name?: string; namespace?: string; waypoint?: unknown }[];
}

/** A node agent's /config_dump, read on its admin port (127.0.0.1:15000) inside the network namespace it runs in. */
export async function agentConfigDump(netns: string): Promise<AgentConfigDump> {
  const r = await httpGetInNetns(netns, '127.0.0.1', PORTS.admin, '/config_dump');
  if (r.status !== 200) throw new Error(`GET /config_dump of the agent in ${netns}: HTTP ${r.status}`);
  return JSON.parse(r.body) as AgentConfigDump;
}

/** Until the agent in each of `agents` (name -> netns) routes every `namespace/service` through a waypoint. */
export async function waitAgentsUseWaypoint(agents: ReadonlyMap<string, string>, namespace: string, services: readonly string[], timeoutMs = 15_000): Promise<void> {
  for (const [name, netns] of agents) {
    await waitFor(async () => {
      const dump = await agentConfigDump(netns);
      return services.every((s) => dump.services.some((x) => x.namespace === namespace && x.name === s && x.waypoint));
    }, { timeoutMs, intervalMs: 100, message: `the agent of ${name} to send ${services.join(', ')} through the waypoint` });
  }
}

/** Until the agent in each of `agents` knows every IP of `ips` as an HBONE workload. */
export async function waitAgentsKnowHbone(agents: ReadonlyMap<string, string>, ips: Iterable<string>, timeoutMs = 15_000): Promise<void> {
  return waitAgentsKnow(agents, ips, 'HBONE', timeoutMs);
}

/** Waits until every agent's config_dump lists the workloads with these IPs (as HBONE, or with any protocol). */
export async function waitAgentsKnow(agents: ReadonlyMap<string, string>, ips: Iterable<string>, protocol: 'HBONE' | 'any', timeoutMs = 15_000): Promise<void> {
  const want = [...ips];
  for (const [name, netns] of agents) {
    await waitFor(async () => {
      const dump = await agentConfigDump(netns);
      const known = new Set(dump.workloads.filter((w) => protocol === 'any' || w.protocol === protocol).flatMap((w) => w.workloadIps ?? []));
      return want.every((ip) => known.has(ip));
    }, { timeoutMs, intervalMs: 100, message: `the agent of ${name} to know ${want.join(', ')}${protocol === 'HBONE' ? ' as HBONE workloads' : ''}` });
  }
}
