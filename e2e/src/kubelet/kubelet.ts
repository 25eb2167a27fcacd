// Our kubelet for the cluster-in-a-box: one per node of the netns topology. It registers the Node, heartbeats,
// watches the Pods bound to it (an informer with a spec.nodeName field selector, used only as a cache) and
// reconciles each pod by uid in a de-duplicating work queue: sandbox + CNI chain + processes (pod-worker.ts), then
// the status written back through the status subresource. Deletion: SIGTERM, the grace period, SIGKILL, CNI DEL,
// netns deleted, then the Pod object deleted with grace 0 (what the real kubelet does to finish a deletion).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CoreV1Event, V1ConfigMap, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import type { Topology, TopologyNode } from '../topology.js';
import { registerForCleanup, unregisterFromCleanup } from '../cleanup.js';
import { createCniRuntime } from './cni-runtime.js';
import type { EnvSource } from './env.js';
import { createImageRegistry, type ImageRegistry } from './image-registry.js';
import { connectionFromKubeconfig, createInformer, createKubeApi, isApiStatus, MERGE_PATCH, type KubeconfigSource } from './kube-api.js';
import { registerNode, renewLease, updateNodeStatus, type NodeFacts } from './node-status.js';
import { graceMs, PodWorker } from './pod-worker.js';
import { createSandboxManager } from './sandbox.js';
import { buildPodStatus, statusKey } from './status.js';
import { DEFAULT_NODE_LOCAL_PATHS, hostPathOnNode, prepareVolumes, refreshTokens, type HostPathMapping, type VolumeApi, type WrittenToken } from './volumes.js';
import { createWorkQueue } from './work-queue.js';

export interface KubeletOptions {
  /**
   * Credentials the kubelet acts with (node credentials or admin): kubeconfig YAML, or a client-node KubeConfig
   * (anything with exportConfig()). Only the current context's server, CA and client cert/token are used.
   */
  kubeConfig: KubeconfigSource;
  nodeName: string;
  /** Index N of the topology node this kubelet runs: podCIDR 10.0.N.0/24, netns `<prefix>-n<N>`. */
  nodeIndex: number;
  topology: Topology;
  /**
   * Directory holding the CNI network configuration (the lexically first *.conflist/*.conf wins). Default, with
   * `nodeRoot`: `<nodeRoot>/etc/cni/net.d`, the directory a DaemonSet's hostPath /etc/cni/net.d is on this node.
   */
  cniConfDir?: string;
  /**
   * Directories searched for plugin executables (CNI_PATH). With `nodeRoot`, `<nodeRoot>/opt/cni/bin` comes first
   * (where a DaemonSet installs plugins through hostPath /opt/cni/bin), then these.
   */
  cniBinDir: string | readonly string[];
  /**
   * The node's own root directory. hostPath volumes under `nodeLocalPaths` are `<nodeRoot><path>` on this node, so
   * DaemonSet pods on different nodes of the box see different directories, as on real nodes. Absent: every
   * hostPath is the host's path, shared by all nodes.
   */
  nodeRoot?: string;
  /** Paths that are the node's own (default DEFAULT_NODE_LOCAL_PATHS: CNI conf/bin dirs, /var/run/ambit, /var/lib/ambit). */
  nodeLocalPaths?: readonly string[];
  /**
   * Cluster DNS (the kubelet's --cluster-dns / --cluster-domain). With it, containers of pods whose dnsPolicy says
   * so (ClusterFirst for ordinary pods, ClusterFirstWithHostNet for hostNetwork pods) run in a private mount
   * namespace whose /etc/resolv.conf points at it, as in a real pod. Absent: the host's resolv.conf.
   */
  clusterDns?: { server: string; clusterDomain: string };
  /** Images -> local programs; default `createImageRegistry()`. */
  imageRegistry?: ImageRegistry;
  /** Per-pod logs and volumes go under `<logDir>/pods`; the kubelet's own log lines to `log`. */
  logDir: string;
  capacity?: { cpu: string; memory: string; pods: string };
  labels?: Record<string, string>;
  /** Lease renewal period; default 10 s (lease duration 40 s, as the kubelet). */
  leaseRenewMs?: number;
  /** Node status update period; default 30 s. */
  nodeStatusMs?: number;
  /** Restart/retry backoff; default 1 s doubling to 30 s (Kubernetes: 10 s to 5 min; tests need it shorter). */
  restartBackoff?: { baseMs: number; maxMs: number };
  log?: (line: string) => void;
}

export interface Kubelet {
  readonly nodeName: string;
  readonly node: TopologyNode;
  /** Where host path `path` is on this node (under the node root when node-local). */
  hostPath(path: string): string;
  /** The CNI conf dir this kubelet reads. */
  readonly cniConfDir: string;
  /** Worker of a pod by uid (tests inspect PIDs and the sandbox). */
  worker(uid: string): PodWorker | undefined;
  /** Stops watching and heartbeating, and tears down every pod (processes, CNI DEL, netns). The Node object stays. */
  stop(): Promise<void>;
}

export async function startKubelet(options: KubeletOptions): Promise<Kubelet> {
  const api = createKubeApi(connectionFromKubeconfig(options.kubeConfig));
  const node = options.topology.node(options.nodeIndex);
  const log = options.log ?? (() => undefined);
  const klog = (line: string) => log(`kubelet ${options.nodeName}: ${line}`);
  const images = options.imageRegistry ?? createImageRegistry();
  const podsDir = join(options.logDir, 'pods');
  mkdirSync(podsDir, { recursive: true });
  const facts: NodeFacts = {
    name: options.nodeName,
    index: options.nodeIndex,
    internalIP: node.uplinkIp,
    podCIDR: node.podCidr,
    capacity: options.capacity ?? { cpu: '8', memory: '16Gi', pods: '110' },
    ...(options.labels ? { labels: options.labels } : {}),
  };
  const hostPaths: HostPathMapping | undefined = options.nodeRoot
    ? { nodeRoot: options.nodeRoot, nodeLocalPaths: options.nodeLocalPaths ?? DEFAULT_NODE_LOCAL_PATHS }
    : undefined;
  const confDir = options.cniConfDir ?? (hostPaths ? hostPathOnNode('/etc/cni/net.d', hostPaths) : undefined);
  if (!confDir) throw new Error(`kubelet ${options.nodeName}: cniConfDir or nodeRoot is required`);
  const extraBinDirs = typeof options.cniBinDir === 'string' ? [options.cniBinDir] : options.cniBinDir;
  const nodeBinDir = hostPaths ? hostPathOnNode('/opt/cni/bin', hostPaths) : undefined;
  if (nodeBinDir) mkdirSync(nodeBinDir, { recursive: true });
  mkdirSync(confDir, { recursive: true });
  const cni = createCniRuntime({
    confDir,
    binDirs: nodeBinDir ? [nodeBinDir, ...extraBinDirs.filter((d) => d !== nodeBinDir)] : extraBinDirs,
    log: klog,
  });
  const sandboxes = createSandboxManager({ prefix: options.topology.prefix, nodeIndex: options.nodeIndex, cni });
  const restartBackoff = options.restartBackoff ?? { baseMs: 1000, maxMs: 30_000 };

  const registered = await registerNode(api, facts);
  await renewLease(api, options.nodeName, registered, 40);
  klog(`registered (InternalIP ${facts.internalIP}, podCIDR ${facts.podCIDR})`);

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, what: string, f: () => Promise<void>) => {
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      busy = true;
      f().catch((err: unknown) => klog(`${what} failed: ${(err as Error).message}`)).finally(() => (busy = false));
    }, ms);
    t.unref();
    timers.push(t);
  };
  every(options.leaseRenewMs ?? 10_000, 'lease renewal', () => renewLease(api, options.nodeName, registered, 40));
  every(options.nodeStatusMs ?? 30_000, 'node status update', async () => void (await updateNodeStatus(api, facts)));

  const volumeApi: VolumeApi = {
    async requestToken(r) {
      const tr = await api.request<{ status?: { token?: string; expirationTimestamp?: string } }>('POST', `/api/v1/namespaces/${r.namespace}/serviceaccounts/${r.serviceAccount}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: r.audiences, expirationSeconds: r.expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: r.podName, uid: r.podUid } },
      });
      const token = tr.status?.token;
      if (!token) throw new Error(`TokenRequest for serviceaccount ${r.namespace}/${r.serviceAccount} returned no token`);
      return { token, expiresAt: new Date(tr.status?.expirationTimestamp ?? Date.now() + r.expirationSeconds * 1000) };
    },
    async configMap(namespace, name) {
      try {
        return (await api.request<V1ConfigMap>('GET', `/api/v1/namespaces/${namespace}/configmaps/${name}`)).data ?? {};
      } catch (err) {
        if (isApiStatus(err, 404)) return undefined;
        throw err;
      }
    },
    async secret(namespace, name) {
      try {
        const s = await api.request<V1Secret>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
        return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      } catch (err) {
        if (isApiStatus(err, 404)) return undefined;
        throw err;
      }
    },
  };

  // KUBERNETES_SERVICE_HOST/PORT, which in-cluster clients need; looked up once a minute at most.
  let serviceEnv: { at: number; env: Record<string, string> } | undefined;
  const baseEnv = async (): Promise<Record<string, string>> => {
    if (serviceEnv && Date.now() - serviceEnv.at < 60_000) return serviceEnv.env;
    const env: Record<string, string> = {};
    try {
      const svc = await api.request<V1Service>('GET', '/api/v1/namespaces/default/services/kubernetes');
      const ip = svc.spec?.clusterIP;
      const port = svc.spec?.ports?.find((p) => p.name === 'https')?.port ?? svc.spec?.ports?.[0]?.port;
      if (ip && port) Object.assign(env, { KUBERNETES_SERVICE_HOST: ip, KUBERNETES_SERVICE_PORT: String(port), KUBERNETES_SERVICE_PORT_HTTPS: String(port) });
    } catch {
      // no kubernetes service yet: the containers start without it, like pods before the service exists
    }
    serviceEnv = { at: Date.now(), env };
    return env;
  };

  const fetchSources = async (namespace: string, sources: readonly EnvSource[]) => {
    const out = new Map<string, Record<string, string>>();
    for (const s of sources) {
      const data = s.kind === 'ConfigMap' ? await volumeApi.configMap(namespace, s.name) : await volumeApi.secret(namespace, s.name);
      if (data) out.set(`${s.kind}/${s.name}`, data);
    }
    return out;
  };

  const refs = new Map<string, { namespace: string; name: string }>();
  const workers = new Map<string, PodWorker>();
  const tokens = new Map<string, WrittenToken[]>();
  const recorded = new Map<string, number>();

  const postEvent = (pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string) => {
    // The same event at most once per 10 s per pod (the real kubelet aggregates; we only need them visible).
    const key = `${pod.metadata?.uid}/${reason}/${message}`;
    if (Date.now() - (recorded.get(key) ?? 0) < 10_000) return;
    recorded.set(key, Date.now());
    const now = new Date();
    const body: CoreV1Event = {
      metadata: { generateName: `${pod.metadata?.name}.`, namespace: pod.metadata?.namespace ?? 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, namespace: pod.metadata?.namespace, uid: pod.metadata?.uid, ...(fieldPath ? { fieldPath } : {}) },
      reason,
      message: message.slice(0, 1000),
      type,
      source: { component: 'kubelet', host: options.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: options.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    (type === 'Warning' ? klog : () => undefined)(`event ${reason} on ${pod.metadata?.namespace}/${pod.metadata?.name}: ${message}`);
    api.request('POST', `/api/v1/namespaces/${body.metadata.namespace}/events`, { apiVersion: 'v1', kind: 'Event', ...body }).catch((err: unknown) => klog(`could not record event ${reason}: ${(err as Error).message}`));
  };

  const fieldSelector = `spec.nodeName=${options.nodeName}`;
  const informer = createInformer<V1Pod>(
    api,
    '/api/v1/pods',
    { fieldSelector },
    (pod) => enqueue(pod),
    (err) => klog(`pod watch error: ${(err as Error).message}; re-watching`),
  );

  const newWorker = (pod: V1Pod, uid: string): PodWorker => {
    const current = () => {
      const ref = refs.get(uid);
      return (ref && informer.get(ref.name, ref.namespace)) ?? pod;
    };
    return new PodWorker(pod, {
      topology: options.topology,
      nodeNetns: node.netns,
      nodeName: options.nodeName,
      hostIP: node.uplinkIp,
      nodeAllocatable: facts.capacity,
      sandboxes,
      images,
      podsDir,
      notify: (delayMs) => (delayMs ? queue.addAfter(uid, delayMs) : queue.add(uid)),
      event: (type, reason, message, fieldPath) => postEvent(current(), type, reason, message, fieldPath),
      fetchSources,
      prepareVolumes: async (p, dir) => {
        const r = await prepareVolumes(p, dir, volumeApi, hostPaths);
        tokens.set(uid, r.tokens);
        return r.envFor;
      },
      baseEnv,
      ...(options.clusterDns ? { resolvConf: (p: V1Pod) => podResolvConf(p, options.clusterDns!) } : {}),
      restartBackoff,
      log: klog,
    });
  };

  const writeStatus = async (pod: V1Pod, worker: PodWorker) => {
    const status = buildPodStatus(pod, worker.snapshot(pod), new Date());
    if (statusKey(status) === statusKey(pod.status)) return;
    await api.request('PATCH', `/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}/status`, { status }, MERGE_PATCH);
  };

  const reconcile = async (uid: string): Promise<{ requeueAfterMs?: number } | void> => {
    const ref = refs.get(uid);
    let pod = ref ? informer.get(ref.name, ref.namespace) : undefined;
    if (pod && pod.metadata?.uid !== uid) pod = undefined; // same name, new pod: ours is gone
    let worker = workers.get(uid);
    if (!pod) {
      // Deleted from the API without us (force deletion): stop what runs, quickly.
      if (worker) {
        await worker.terminate(2000);
        klog(`pod uid ${uid} vanished from the API; torn down`);
      }
      workers.delete(uid);
      refs.delete(uid);
      tokens.delete(uid);
      return;
    }
    const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (pod.metadata?.deletionTimestamp) {
      if (worker) {
        klog(`pod ${name}: terminating (grace ${graceMs(pod)} ms)`);
        postEvent(pod, 'Normal', 'Killing', `Stopping pod ${pod.metadata?.name}`);
        await worker.terminate(graceMs(pod));
      }
      try {
        await api.request('DELETE', `/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}`, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } });
      } catch (err) {
        if (!isApiStatus(err, 404) && !isApiStatus(err, 409)) throw err;
      }
      klog(`pod ${name}: deleted`);
      workers.delete(uid);
      tokens.delete(uid);
      return;
    }
    const phase = pod.status?.phase;
    if (!worker && (phase === 'Succeeded' || phase === 'Failed')) return; // finished before we (re)started
    if (!worker) {
      worker = newWorker(pod, uid);
      workers.set(uid, worker);
    }
    const r = await worker.sync(pod);
    const toks = tokens.get(uid);
    if (toks) await refreshTokens(toks, volumeApi).catch((err: unknown) => klog(`token refresh for ${name}: ${(err as Error).message}`));
    if (worker.finished(pod)) await worker.teardownSandbox(); // terminal: release the IP and netns, keep the status
    await writeStatus(pod, worker);
    // Token refresh and status drift (a conflicting writer) are covered by a slow periodic resync.
    return { requeueAfterMs: Math.min(r.requeueAfterMs ?? 60_000, 60_000) };
  };

  const queue = createWorkQueue<string>({
    process: reconcile,
    concurrency: 8,
    baseBackoffMs: 200,
    maxBackoffMs: 10_000,
    onError: (uid, err, attempt) => klog(`sync of pod uid ${uid} failed (attempt ${attempt}): ${(err as Error).message}`),
  });

  const enqueue = (pod: V1Pod) => {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    refs.set(uid, { namespace: pod.metadata?.namespace ?? 'default', name: pod.metadata?.name ?? '' });
    queue.add(uid);
  };
  await informer.start();
  klog('watching pods');

  // Safety net at process exit: kill pod processes, delete pod namespaces (no API calls are possible there).
  const safety = {
    prefix: `${options.topology.prefix}/kubelet-${options.nodeName}`,
    destroySync: () => {
      for (const w of workers.values()) w.destroySync();
    },
  };
  registerForCleanup(safety);

  let stopped = false;
  return {
    nodeName: options.nodeName,
    node,
    hostPath: (path) => hostPathOnNode(path, hostPaths),
    cniConfDir: confDir,
    worker: (uid) => workers.get(uid),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      informer.stop();
      await queue.stop();
      await Promise.all([...workers.values()].map((w) => w.terminate(2000)));
      workers.clear();
      unregisterFromCleanup(safety);
      api.close();
      klog('stopped');
    },
  };
}

/**
 * The resolv.conf the kubelet gives a pod (Kubernetes' rules): cluster DNS for dnsPolicy ClusterFirst (the
 * default) unless the pod uses the host network, where only ClusterFirstWithHostNet gets it; `Default` and `None`
 * (with dnsConfig) as Kubernetes defines them. Undefined means the host's resolv.conf.
 */
export function podResolvConf(pod: V1Pod, dns: { server: string; clusterDomain: string }): string | undefined {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst';
  const ns = pod.metadata?.namespace ?? 'default';
  const cfg = pod.spec?.dnsConfig;
  let servers: string[];
  let searches: string[];
  let options: string[];
  if (policy === 'None') {
    servers = cfg?.nameservers ?? [];
    searches = cfg?.searches ?? [];
    options = [];
  } else if (policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && pod.spec?.hostNetwork !== true)) {
    servers = [dns.server, ...(cfg?.nameservers ?? [])];
    searches = [`${ns}.svc.${dns.clusterDomain}`, `svc.${dns.clusterDomain}`, dns.clusterDomain, ...(cfg?.searches ?? [])];
    options = ['ndots:5'];
  } else {
    return undefined;
  }
  for (const o of cfg?.options ?? []) {
    if (!o.name) continue;
    options = options.filter((x) => x.split(':')[0] !== o.name);
    options.push(o.value !== undefined ? `${o.name}:${o.value}` : o.name);
  }
  const lines = [...servers.map((x) => `nameserver ${x}`)];
  if (searches.length > 0) lines.push(`search ${searches.join(' ')}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
