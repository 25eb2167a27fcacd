// The controller's one cache of watched objects. Informers and the embedded YAML source write into it; translation
// reads it. Besides kind/namespace/name it keeps the secondary indexes translation needs to stay proportional to
// what changed: label postings for workloads (Pod, WorkloadEntry), selector postings for what selects them
// (Service, ServiceEntry), pods by IP, and EndpointSlices by Service and by the pods they reference.
import type { KubeObject } from '@ambit/api';
import { TRANSLATE_NAMES } from './mesh.js';

export type LabelMap = Readonly<Record<string, string>>;

export interface ObjectIndex {
  /** Stores (or replaces) an object; `kind` and `metadata.name` are required. */
  set(obj: KubeObject): { previous?: KubeObject };
  delete(kind: string, namespace: string, name: string): KubeObject | undefined;
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  /** All objects of a kind, or those of one namespace. */
  list(kind: string, namespace?: string): KubeObject[];
  /** Namespaces holding at least one object of `kind`. */
  namespacesOf(kind: string): string[];
  size(kind: string): number;
  /**
   * Pods or WorkloadEntries of `namespace` whose labels contain every pair of `selector`. An empty selector
   * selects nothing (Kubernetes: a Service without selector has no automatic endpoints).
   */
  selectByLabels(kind: SelectableKind, namespace: string, selector: LabelMap): KubeObject[];
  /** Services or ServiceEntries of `namespace` whose (non-empty) selector is satisfied by `labels`. */
  selectorsMatching(kind: SelectorKind, namespace: string, labels: LabelMap): KubeObject[];
  /** Pods with this IP in status.podIP(s) (host-network pods included). */
  podsByIp(ip: string): KubeObject[];
  /** EndpointSlices labelled `kubernetes.io/service-name: <service>` in the Service's namespace. */
  endpointSlicesForService(namespace: string, service: string): KubeObject[];
  /** EndpointSlices with an endpoint whose targetRef is this Pod. */
  endpointSlicesForPod(namespace: string, pod: string): KubeObject[];
}

export type SelectableKind = 'Pod' | 'WorkloadEntry';
export type SelectorKind = 'Service' | 'ServiceEntry';

/** `<kind>/<namespace>/<name>`; cluster-scoped objects have an empty namespace. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function keyOf(obj: KubeObject): string {
  return objectKey(obj.kind ?? '', obj.metadata.namespace ?? '', obj.metadata.name);
}

export function parseObjectKey(key: string): { kind: string; namespace: string; name: string } {
  const a = key.indexOf('/');
  const b = key.indexOf('/', a + 1);
  return { kind: key.slice(0, a), namespace: key.slice(a + 1, b), name: key.slice(b + 1) };
}

/** The labels a workload is selected by; a WorkloadEntry may also carry them in spec.labels (Istio merges both). */
export function workloadLabels(obj: KubeObject): LabelMap {
  const meta = obj.metadata.labels ?? {};
  if (obj.kind === 'WorkloadEntry' && obj.spec?.labels && typeof obj.spec.labels === 'object') {
    return { ...meta, ...(obj.spec.labels as Record<string, string>) };
  }
  return meta;
}

/** The selector of a Service (spec.selector) or ServiceEntry (spec.workloadSelector.labels); {} when none. */
export function selectorOf(obj: KubeObject): LabelMap {
  const sel = obj.kind === 'ServiceEntry' ? obj.spec?.workloadSelector?.labels : obj.spec?.selector;
  return sel && typeof sel === 'object' ? (sel as Record<string, string>) : {};
}

export function labelsMatch(selector: LabelMap, labels: LabelMap): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function podIps(pod: KubeObject): string[] {
  const ips = new Set<string>();
  for (const p of (pod.status?.podIPs ?? []) as { ip?: string }[]) if (p?.ip) ips.add(p.ip);
  if (typeof pod.status?.podIP === 'string' && pod.status.podIP) ips.add(pod.status.podIP);
  return [...ips];
}

/** Pods named by an EndpointSlice's endpoints (targetRef kind Pod). */
export function endpointPodRefs(slice: KubeObject): { namespace: string; name: string }[] {
  const out: { namespace: string; name: string }[] = [];
  for (const ep of (slice.endpoints ?? []) as { targetRef?: { kind?: string; name?: string; namespace?: string } }[]) {
    const ref = ep?.targetRef;
    if (ref?.kind === 'Pod' && ref.name) out.push({ namespace: ref.namespace || slice.metadata.namespace || '', name: ref.name });
  }
  return out;
}

/** name sets keyed by one string, with add/remove that drop empty sets. */
class Postings {
  readonly map = new Map<string, Set<string>>();
  add(key: string, value: string): void {
    let s = this.map.get(key);
    if (!s) this.map.set(key, (s = new Set()));
    s.add(value);
  }
  remove(key: string, value: string): void {
    const s = this.map.get(key);
    if (!s) return;
    s.delete(value);
    if (s.size === 0) this.map.delete(key);
  }
  get(key: string): ReadonlySet<string> | undefined {
    return this.map.get(key);
  }
}

const pairKey = (namespace: string, k: string, v: string): string => `${namespace}\u0000${k}\u0000${v}`;

export function createMemoryIndex(): ObjectIndex {
  // kind -> namespace -> name -> object
  const objects = new Map<string, Map<string, Map<string, KubeObject>>>();
  // kind -> "ns\0k\0v" -> names (labels of Pod/WorkloadEntry, selectors of Service/ServiceEntry)
  const labelPostings = new Map<string, Postings>();
  const selectorPostings = new Map<string, Postings>();
  const ipPostings = new Postings(); // ip -> "ns/name" of pods
  const slicesByService = new Postings(); // "ns/service" -> slice names
  const slicesByPod = new Postings(); // "ns/pod" -> "ns/slice"

  const byNs = (kind: string, namespace: string, create: boolean): Map<string, KubeObject> | undefined => {
    let k = objects.get(kind);
    if (!k) {
      if (!create) return undefined;
      objects.set(kind, (k = new Map()));
    }
    let n = k.get(namespace);
    if (!n && create) k.set(namespace, (n = new Map()));
    return n;
  };
  const postingsOf = (m: Map<string, Postings>, kind: string): Postings => {
    let p = m.get(kind);
    if (!p) m.set(kind, (p = new Postings()));
    return p;
  };

  const updateSecondary = (obj: KubeObject, add: boolean): void => {
    const kind = obj.kind ?? '';
    const ns = obj.metadata.namespace ?? '';
    const name = obj.metadata.name;
    const op = (p: Postings, key: string, value: string): void => (add ? p.add(key, value) : p.remove(key, value));
    if (kind === 'Pod' || kind === 'WorkloadEntry') {
      const p = postingsOf(labelPostings, kind);
      for (const [k, v] of Object.entries(workloadLabels(obj))) op(p, pairKey(ns, k, v), name);
    }
    if (kind === 'Service' || kind === 'ServiceEntry') {
      const p = postingsOf(selectorPostings, kind);
      for (const [k, v] of Object.entries(selectorOf(obj))) op(p, pairKey(ns, k, v), name);
    }
    if (kind === 'Pod') for (const ip of podIps(obj)) op(ipPostings, ip, `${ns}/${name}`);
    if (kind === 'EndpointSlice') {
      const svc = obj.metadata.labels?.[TRANSLATE_NAMES.endpointSliceServiceName];
      if (svc) op(slicesByService, `${ns}/${svc}`, name);
      for (const ref of endpointPodRefs(obj)) op(slicesByPod, `${ref.namespace}/${ref.name}`, `${ns}/${name}`);
    }
  };

  const get = (kind: string, namespace: string, name: string): KubeObject | undefined =>
    objects.get(kind)?.get(namespace)?.get(name);

  const resolve = (kind: string, refs: Iterable<string>): KubeObject[] => {
    const out: KubeObject[] = [];
    for (const ref of refs) {
      const slash = ref.indexOf('/');
      const o = get(kind, ref.slice(0, slash), ref.slice(slash + 1));
      if (o) out.push(o);
    }
    return out;
  };

  return {
    set(obj) {
      if (!obj.kind) throw new Error(`object ${obj.metadata?.name ?? '(unnamed)'} has no kind`);
      if (!obj.metadata?.name) throw new Error(`${obj.kind} object has no metadata.name`);
      const ns = obj.metadata.namespace ?? '';
      const m = byNs(obj.kind, ns, true)!;
      const previous = m.get(obj.metadata.name);
      if (previous) updateSecondary(previous, false);
      m.set(obj.metadata.name, obj);
      updateSecondary(obj, true);
      return previous ? { previous } : {};
    },
    delete(kind, namespace, name) {
      const m = byNs(kind, namespace, false);
      const previous = m?.get(name);
      if (!m || !previous) return undefined;
      updateSecondary(previous, false);
      m.delete(name);
      if (m.size === 0) objects.get(kind)!.delete(namespace);
      return previous;
    },
    get,
    list(kind, namespace) {
      const k = objects.get(kind);
      if (!k) return [];
      if (namespace !== undefined) return [...(k.get(namespace)?.values() ?? [])];
      const out: KubeObject[] = [];
      for (const m of k.values()) for (const o of m.values()) out.push(o);
      return out;
    },
    namespacesOf(kind) {
      return [...(objects.get(kind)?.keys() ?? [])];
    },
    size(kind) {
      let n = 0;
      for (const m of objects.get(kind)?.values() ?? []) n += m.size;
      return n;
    },
    selectByLabels(kind, namespace, selector) {
      const entries = Object.entries(selector);
      if (entries.length === 0) return [];
      const p = labelPostings.get(kind);
      if (!p) return [];
      // Walk the rarest pair's postings and check the others on each candidate.
      let smallest: ReadonlySet<string> | undefined;
      for (const [k, v] of entries) {
        const s = p.get(pairKey(namespace, k, v));
        if (!s) return [];
        if (!smallest || s.size < smallest.size) smallest = s;
      }
      const out: KubeObject[] = [];
      for (const name of smallest!) {
        const o = get(kind, namespace, name);
        if (o && labelsMatch(selector, workloadLabels(o))) out.push(o);
      }
      return out;
    },
    selectorsMatching(kind, namespace, labels) {
      const p = selectorPostings.get(kind);
      if (!p) return [];
      const candidates = new Set<string>();
      for (const [k, v] of Object.entries(labels)) for (const n of p.get(pairKey(namespace, k, v)) ?? []) candidates.add(n);
      const out: KubeObject[] = [];
      for (const name of candidates) {
        const o = get(kind, namespace, name);
        if (o && labelsMatch(selectorOf(o), labels)) out.push(o);
      }
      return out;
    },
    podsByIp(ip) {
      return resolve('Pod', ipPostings.get(ip) ?? []);
    },
    endpointSlicesForService(namespace, service) {
      return [...(slicesByService.get(`${namespace}/${service}`) ?? [])]
        .map((n) => get('EndpointSlice', namespace, n))
        .filter((o): o is KubeObject => o !== undefined);
    },
    endpointSlicesForPod(namespace, pod) {
      return resolve('EndpointSlice', slicesByPod.get(`${namespace}/${pod}`) ?? []);
    },
  };
}
