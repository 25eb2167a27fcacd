// The test API of cluster-in-a-box: start a cluster, apply YAML, wait for conditions, run kubectl, collect
// logs, tear down. Tests talk to it instead of to the control plane's processes.
//
// With `nodes: N > 0` the cluster also has N netns nodes, each run by our kubelet (node-pool.ts), the real
// kube-proxy in every node and CoreDNS behind kube-dns 10.96.0.10 (services.ts). `exec()` needs nodes; without
// them it throws ClusterFeatureUnavailableError.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ExecOptions, ExecResult } from '../process.js';
import { WaitTimeoutError } from '../wait.js';
import { KubeApiError, KubeClient, startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
import type { ImageRegistry } from '../kubelet/image-registry.js';
import { k8sBinaries } from './binaries.js';
import { startNodePool, type NodePool } from './node-pool.js';
import { CLUSTER_DNS_IP, CLUSTER_DOMAIN, startClusterServices, type ClusterServices } from './services.js';

/** Any Kubernetes object, as the API returns it. */
export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** One entry of an API group version's discovery document. */
export interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

export interface StartClusterOptions extends ControlPlaneOptions {
  /** Node agents to start (our kubelet, one per netns node). Default 0: control plane only. */
  nodes?: number;
  /** Images for the kubelets (default: the kubelet's default registry). */
  imageRegistry?: ImageRegistry;
  /** Host paths that are each node's own directory under its node root (default: the kubelet's DEFAULT_NODE_LOCAL_PATHS). */
  nodeLocalPaths?: readonly string[];
  /** kube-proxy in every node and CoreDNS behind kube-dns 10.96.0.10; default true when nodes > 0. */
  services?: boolean;
  /** Node agents' and cluster services' log lines. */
  log?: (line: string) => void;
}

/** Identifies one object; namespace is required for namespaced kinds. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface ApplyOptions {
  /** Namespace for namespaced objects that name none (default: `default`). */
  namespace?: string;
  /** Server-side apply field manager; default `ambit-e2e`. */
  fieldManager?: string;
}

export interface WaitForOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  intervalMs?: number;
}

/** Something the cluster cannot do yet (a part of cluster-in-a-box that has not landed). */
export class ClusterFeatureUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterFeatureUnavailableError';
  }
}

/** A manifest could not be parsed or applied; names the document. */
export class ManifestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ManifestError';
  }
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** A running cluster. Create with startCluster(); always stop() it (also done on process exit). */
export class Cluster {
  /** Discovery documents by apiVersion; refetched when a kind is missing (a CRD created since). */
  private readonly discovery = new Map<string, ApiResource[]>();

  /** @internal use startCluster() */
  constructor(
    readonly controlPlane: ControlPlane,
    readonly nodeCount: number,
    readonly nodePool?: NodePool,
    readonly services?: ClusterServices,
  ) {}

  /** REST client with the admin credentials (system:masters). */
  get client(): KubeClient {
    return this.controlPlane.client;
  }

  /** Admin kubeconfig file, for kubectl or a component under test. */
  get kubeconfigPath(): string {
    return this.controlPlane.kubeconfigPath;
  }

  get server(): string {
    return this.controlPlane.server;
  }

  /**
   * Server-side applies every document of a (multi-document) YAML manifest, or objects, in order, forcing
   * ownership of conflicting fields (the test is the only writer that matters). Returns the objects as stored.
   * A kind that discovery does not know yet (a CRD applied just before) is retried for a few seconds.
   */
  async apply(manifest: string | KubernetesObject | readonly KubernetesObject[], options: ApplyOptions = {}): Promise<KubernetesObject[]> {
    const docs = typeof manifest === 'string' ? parseManifest(manifest) : Array.isArray(manifest) ? [...manifest] : [manifest as KubernetesObject];
    const out: KubernetesObject[] = [];
    for (const [i, doc] of docs.entries()) {
      const applied = await this.applyOne(applyableCopy(doc), i, options);
      out.push(applied);
    }
    return out;
  }

  /** Deletes the objects of a manifest (missing ones are fine); with `wait`, until they are gone. */
  async delete(manifest: string | KubernetesObject | readonly KubernetesObject[], options: ApplyOptions & WaitForOptions & { wait?: boolean } = {}): Promise<void> {
    const docs = typeof manifest === 'string' ? parseManifest(manifest) : Array.isArray(manifest) ? [...manifest] : [manifest as KubernetesObject];
    for (const doc of [...docs].reverse()) {
      const ref = await this.refOf(doc, options.namespace);
      try {
        await this.client.delete(await this.pathOf(ref));
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw new ManifestError(`delete ${describeObject(doc, 0)}: ${apiErrorMessage(err)}`, { cause: err });
      }
      if (options.wait) {
        await this.controlPlane.waitUntil(`${ref.kind} ${ref.namespace ? ref.namespace + '/' : ''}${ref.name} to be gone`, async () => (await this.get(ref)) === undefined, {
          timeoutMs: options.timeoutMs ?? 30_000,
          intervalMs: options.intervalMs ?? 200,
        });
      }
    }
  }

  /** Reads an object; undefined if it does not exist. */
  async get<T extends KubernetesObject = KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    return this.client.find<T>(await this.pathOf(ref));
  }

  /** The discovery entry for a kind; undefined if the server does not serve it (yet). */
  async resourceFor(apiVersion: string, kind: string): Promise<ApiResource | undefined> {
    const find = (): ApiResource | undefined => this.discovery.get(apiVersion)?.find((r) => r.kind === kind && !r.name.includes('/'));
    const cached = find();
    if (cached) return cached;
    const list = await this.client.find<{ resources?: ApiResource[] }>(apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`);
    if (!list) return undefined;
    this.discovery.set(apiVersion, list.resources ?? []);
    return find();
  }

  /** The REST path of an object (`/api/v1/namespaces/default/configmaps/x`). */
  async pathOf(ref: ObjectRef): Promise<string> {
    const resource = await this.resourceFor(ref.apiVersion, ref.kind);
    if (!resource) throw new ManifestError(`the server has no ${ref.apiVersion} ${ref.kind}`);
    const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
    const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace ?? 'default')}` : '';
    return `${base}${ns}/${resource.name}/${encodeURIComponent(ref.name)}`;
  }

  /**
   * Polls an object until `predicate` holds; returns it. Fails at once if a control-plane component dies, and on
   * timeout with the object's last state.
   */
  async waitFor<T extends KubernetesObject = KubernetesObject>(
    ref: ObjectRef,
    predicate: (obj: T) => boolean,
    options: WaitForOptions & { description?: string } = {},
  ): Promise<T> {
    let last: T | undefined;
    const what = `${ref.kind} ${ref.namespace ? ref.namespace + '/' : ''}${ref.name}: ${options.description ?? 'condition'}`;
    try {
      return await this.controlPlane.waitUntil(
        what,
        async () => {
          last = await this.get<T>(ref);
          return last !== undefined && predicate(last) ? last : undefined;
        },
        { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: options.intervalMs ?? 200 },
      );
    } catch (err) {
      if (err instanceof WaitTimeoutError) {
        const state = last === undefined ? 'it does not exist' : `its status: ${JSON.stringify((last as { status?: unknown }).status ?? null)}`;
        throw new Error(`${err.message}; ${state}`, { cause: err });
      }
      throw err;
    }
  }

  /** Waits until `status.conditions` has `type` with `status` (default "True"), e.g. Available, Ready, Established. */
  waitForCondition<T extends KubernetesObject = KubernetesObject>(
    ref: ObjectRef,
    type: string,
    options: WaitForOptions & { status?: 'True' | 'False' | 'Unknown' } = {},
  ): Promise<T> {
    const want = options.status ?? 'True';
    return this.waitFor<T>(ref, (obj) => conditionsOf(obj).some((c) => c.type === type && c.status === want), {
      ...options,
      description: `condition ${type}=${want}`,
    });
  }

  /** Runs the built kubectl with the admin kubeconfig. */
  kubectl(args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.controlPlane.kubectl(args, options);
  }

  /**
   * Runs a command in a pod's network namespace (found through the kubelet that runs it). With cluster DNS, the
   * command runs in a private mount namespace whose /etc/resolv.conf is the pod's (nameserver 10.96.0.10, search
   * <ns>.svc.cluster.local ...), so ordinary name lookups resolve Services as in a pod.
   */
  async exec(pod: { namespace: string; name: string }, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (!this.nodePool) {
      throw new ClusterFeatureUnavailableError(`exec in pod ${pod.namespace}/${pod.name}: the cluster has no nodes (started with nodes: 0)`);
    }
    const obj = await this.client.find<{ metadata?: { uid?: string }; spec?: { nodeName?: string } }>(`/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`);
    if (!obj) throw new Error(`exec in pod ${pod.namespace}/${pod.name}: no such pod`);
    const kubelet = obj.spec?.nodeName ? this.nodePool.kubeletFor(obj.spec.nodeName) : undefined;
    const netns = kubelet?.worker(obj.metadata?.uid ?? '')?.sandbox?.netns;
    if (!netns) throw new Error(`exec in pod ${pod.namespace}/${pod.name}: the pod has no running sandbox (node ${obj.spec?.nodeName ?? 'none'})`);
    if (!this.services) return this.nodePool.topology.execIn(netns, argv, options);
    const resolv = join(this.nodePool.dir, `resolv-${pod.namespace}.conf`);
    writeFileSync(resolv, this.services.resolvConf(pod.namespace));
    return this.nodePool.topology.execIn(
      netns,
      ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv, ...argv],
      options,
    );
  }

  /**
   * Where host path `path` is on node `nodeName` in this box's filesystem: `<node root><path>` for node-local paths
   * (/etc/cni/net.d, /opt/cni/bin, /var/run/ambit, /var/lib/ambit by default), the path itself for host-global ones.
   * Tests read what a DaemonSet wrote on one node through it.
   */
  nodeHostPath(nodeName: string, path: string): string {
    const kubelet = this.nodePool?.kubeletFor(nodeName);
    if (!kubelet) throw new ClusterFeatureUnavailableError(`host path ${path} on node ${nodeName}: the cluster has no such node (${this.nodeCount} node(s))`);
    return kubelet.hostPath(path);
  }

  /**
   * Writes every control-plane component's log into `dir` (a failing test's artifacts), plus each node's pod
   * logs (`node-N-pods/`); returns the files and directories.
   */
  collectLogs(dir: string): string[] {
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    for (const p of this.controlPlane.processes) {
      const file = join(dir, `${p.name}.log`);
      writeFileSync(file, this.controlPlane.readLog(p.name));
      files.push(file);
    }
    if (this.nodePool) files.push(...this.nodePool.copyLogsTo(dir));
    return files;
  }

  /**
   * Stops every process and removes every temp directory: cluster services, then the kubelets (their pods torn
   * down), the topology, and the control plane last. Safe to call twice.
   */
  async stop(): Promise<void> {
    const errors: unknown[] = [];
    await this.services?.stop().catch((e: unknown) => errors.push(e));
    await this.nodePool?.stop().catch((e: unknown) => errors.push(e));
    await this.controlPlane.stop().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }

  private async applyOne(spec: KubernetesObject, index: number, options: ApplyOptions): Promise<KubernetesObject> {
    let label = describeObject(spec, index);
    // Discovery lags a CRD by a moment after it is created: an unknown kind is retried briefly, anything the
    // server says about the object itself fails at once with its words.
    const deadline = Date.now() + 5000;
    for (;;) {
      this.controlPlane.assertHealthy();
      const resource = await this.resourceFor(spec.apiVersion!, spec.kind!).catch((err: unknown) => {
        throw new ManifestError(`apply ${label}: discovery failed: ${apiErrorMessage(err)}`, { cause: err });
      });
      if (!resource) {
        if (Date.now() > deadline) throw new ManifestError(`apply ${label}: the server has no ${spec.apiVersion} ${spec.kind}`);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (resource.namespaced && !spec.metadata?.namespace) spec.metadata = { ...spec.metadata, namespace: options.namespace ?? 'default' };
      label = describeObject(spec, index);
      // As kubectl does: a namespace on a cluster-scoped object means nothing (the server would refuse it).
      if (!resource.namespaced && spec.metadata?.namespace) delete spec.metadata.namespace;
      const path = await this.pathOf({ apiVersion: spec.apiVersion!, kind: spec.kind!, name: spec.metadata!.name!, namespace: spec.metadata?.namespace });
      try {
        return await this.client.apply<KubernetesObject>(path, spec, { fieldManager: options.fieldManager ?? 'ambit-e2e', force: true });
      } catch (err) {
        throw new ManifestError(`apply ${label}: ${apiErrorMessage(err)}`, { cause: err });
      }
    }
  }

  private async refOf(doc: KubernetesObject, namespace: string | undefined): Promise<ObjectRef> {
    const resource = await this.resourceFor(doc.apiVersion!, doc.kind!);
    return {
      apiVersion: doc.apiVersion!,
      kind: doc.kind!,
      name: doc.metadata!.name!,
      namespace: resource?.namespaced ? (doc.metadata?.namespace ?? namespace ?? 'default') : undefined,
    };
  }
}

/**
 * Starts a cluster: the control plane, then (nodes > 0) the netns nodes with one kubelet each, waits until they
 * are Ready, then kube-proxy and cluster DNS. A failure at any step stops what was started.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const nodes = options.nodes ?? 0;
  if (!Number.isInteger(nodes) || nodes < 0) throw new RangeError(`startCluster: nodes must be a whole number >= 0, got ${nodes}`);
  const binaries = nodes > 0 && options.services !== false ? k8sBinaries() : undefined; // fail before starting anything
  const controlPlane = await startControlPlane(options);
  if (nodes === 0) return new Cluster(controlPlane, 0);
  let pool: NodePool | undefined;
  let services: ClusterServices | undefined;
  try {
    pool = await startNodePool(controlPlane, nodes, {
      ...(options.imageRegistry ? { imageRegistry: options.imageRegistry } : {}),
      ...(options.nodeLocalPaths ? { nodeLocalPaths: options.nodeLocalPaths } : {}),
      // Pods resolve Service names through CoreDNS (started below) like in a real cluster.
      ...(binaries ? { clusterDns: { server: CLUSTER_DNS_IP, clusterDomain: CLUSTER_DOMAIN } } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    await controlPlane.waitUntil(`${nodes} node(s) Ready`, async () => {
      const list = await controlPlane.client.find<{ items: { status?: { conditions?: Condition[] } }[] }>('/api/v1/nodes');
      const ready = (list?.items ?? []).filter((n) => (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
      return ready.length >= nodes ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    if (binaries) services = await startClusterServices(controlPlane, pool, binaries, options.log);
  } catch (err) {
    await services?.stop().catch(() => undefined);
    await pool?.stop().catch(() => undefined);
    await controlPlane.stop().catch(() => undefined);
    throw err;
  }
  return new Cluster(controlPlane, nodes, pool, services);
}

/** Parses a multi-document YAML manifest; empty documents are skipped, `kind: List` is flattened. */
export function parseManifest(text: string): KubernetesObject[] {
  const out: KubernetesObject[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) throw new ManifestError(`document ${i + 1}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError(`document ${i + 1} is not an object`);
    const obj = value as KubernetesObject & { items?: KubernetesObject[] };
    const items = obj.kind === 'List' || obj.kind?.endsWith('List') ? (obj.items ?? []) : [obj];
    for (const item of items) {
      if (!item.apiVersion || !item.kind) throw new ManifestError(`document ${i + 1}: apiVersion and kind are required`);
      if (!item.metadata?.name) throw new ManifestError(`document ${i + 1} (${item.kind}): metadata.name is required`);
      out.push(item);
    }
  }
  return out;
}

/**
 * The object without what the server fills in, so that objects read back (or returned by apply) can be applied
 * again: server-side apply refuses managedFields, and a stale resourceVersion would turn into a conflict.
 */
function applyableCopy(obj: KubernetesObject): KubernetesObject {
  const copy = structuredClone(obj);
  if (copy.metadata) {
    for (const k of ['managedFields', 'resourceVersion', 'uid', 'creationTimestamp', 'generation', 'selfLink']) delete copy.metadata[k];
  }
  delete copy.status;
  return copy;
}

function conditionsOf(obj: KubernetesObject): Condition[] {
  const conditions = (obj as { status?: { conditions?: unknown } }).status?.conditions;
  return Array.isArray(conditions) ? (conditions as Condition[]) : [];
}

function describeObject(obj: KubernetesObject, index: number): string {
  const ns = obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj.kind ?? '?'} ${ns}${obj.metadata?.name ?? '?'} (document ${index + 1})`;
}

/** The apiserver's own words when it said something, else the error's message. */
export function apiErrorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
