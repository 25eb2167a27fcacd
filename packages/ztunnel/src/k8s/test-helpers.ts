// An in-memory API server for the k8s tests: Pods and Namespaces with resourceVersions, list, a watch that the
// tests feed, and merge patches of annotations. Not exported from the package.
import type { V1Namespace, V1NamespaceList, V1Pod, V1PodList, Watch } from '@kubernetes/client-node';
import type { NodeAgentApi } from './kube-client.js';

type WatchCallback = (phase: string, obj: unknown) => void;

export class FakeApiServer implements NodeAgentApi {
  readonly pods = new Map<string, V1Pod>();
  readonly namespaces = new Map<string, V1Namespace>();
  readonly patches: Array<{ pod: string; annotations: Record<string, string | null> }> = [];
  /** Calls to getPod (the API fallback of the CNI path and of the deleted-pod check). */
  getPodCalls = 0;
  failPatches = 0;
  private rv = 1;
  private readonly watchers = new Map<string, WatchCallback>();

  readonly watch = {
    watch: async (path: string, _query: Record<string, unknown>, cb: WatchCallback, _done: (err: unknown) => void): Promise<AbortController> => {
      this.watchers.set(path, cb);
      const ac = new AbortController();
      ac.signal.addEventListener('abort', () => { if (this.watchers.get(path) === cb) this.watchers.delete(path); });
      return ac;
    },
  } as unknown as Watch;

  private bump<T extends { metadata?: { resourceVersion?: string } }>(o: T): T {
    o.metadata = { ...o.metadata, resourceVersion: String(++this.rv) };
    return o;
  }

  private emit(path: string, phase: string, obj: unknown): void {
    this.watchers.get(path)?.(phase, structuredClone(obj));
  }

  namespace(name: string, labels: Record<string, string> = {}): void {
    const existed = this.namespaces.has(name);
    const ns = this.bump({ metadata: { name, labels } } as V1Namespace);
    this.namespaces.set(name, ns);
    this.emit('/api/v1/namespaces', existed ? 'MODIFIED' : 'ADDED', ns);
  }

  /** Creates or replaces a pod (a running pod on node-1 with one IP unless told otherwise). */
  pod(p: { uid: string; name: string; namespace: string; ip?: string; labels?: Record<string, string>; hostNetwork?: boolean; phase?: string; serviceAccount?: string; nodeName?: string }): V1Pod {
    const previous = this.pods.get(p.uid);
    const pod = this.bump({
      metadata: { uid: p.uid, name: p.name, namespace: p.namespace, labels: p.labels ?? {}, annotations: { ...previous?.metadata?.annotations } },
      spec: { nodeName: p.nodeName ?? 'node-1', containers: [{ name: 'app' }], serviceAccountName: p.serviceAccount ?? 'default', ...(p.hostNetwork ? { hostNetwork: true } : {}) },
      status: { phase: p.phase ?? 'Running', ...(p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {}) },
    } as V1Pod);
    this.pods.set(p.uid, pod);
    this.emit('/api/v1/pods', previous ? 'MODIFIED' : 'ADDED', pod);
    return pod;
  }

  deletePod(uid: string): void {
    const pod = this.pods.get(uid);
    if (!pod) return;
    this.pods.delete(uid);
    this.emit('/api/v1/pods', 'DELETED', this.bump(pod));
  }

  annotationsOf(uid: string): Record<string, string> {
    return { ...this.pods.get(uid)?.metadata?.annotations };
  }

  async listPods(fieldSelector: string): Promise<V1PodList> {
    const node = /^spec\.nodeName=(.+)$/.exec(fieldSelector)?.[1];
    return { items: [...this.pods.values()].filter((p) => p.spec?.nodeName === node).map((p) => structuredClone(p)), metadata: { resourceVersion: String(this.rv) } };
  }

  async listNamespaces(): Promise<V1NamespaceList> {
    return { items: [...this.namespaces.values()].map((n) => structuredClone(n)), metadata: { resourceVersion: String(this.rv) } };
  }

  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    this.getPodCalls++;
    const p = [...this.pods.values()].find((x) => x.metadata?.namespace === namespace && x.metadata?.name === name);
    return p ? structuredClone(p) : undefined;
  }

  async getNamespace(name: string): Promise<V1Namespace | undefined> {
    const n = this.namespaces.get(name);
    return n ? structuredClone(n) : undefined;
  }

  async patchPodAnnotations(namespace: string, name: string, annotations: Record<string, string | null>): Promise<void> {
    if (this.failPatches > 0) {
      this.failPatches--;
      throw Object.assign(new Error('HTTP 500: etcdserver: request timed out'), { code: 500 });
    }
    const pod = [...this.pods.values()].find((x) => x.metadata?.namespace === namespace && x.metadata?.name === name);
    if (!pod) throw Object.assign(new Error('not found'), { code: 404 });
    this.patches.push({ pod: `${namespace}/${name}`, annotations });
    const merged: Record<string, string> = { ...pod.metadata?.annotations };
    for (const [k, v] of Object.entries(annotations)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    pod.metadata = { ...pod.metadata, annotations: merged };
    this.emit('/api/v1/pods', 'MODIFIED', this.bump(pod));
  }
}
