import { canonicalizeIp, keyOfNetworkAddress } from './ip.js';
import { pickEndpoint, type Endpoint, type EndpointChoice, type PickEndpointOptions } from './endpoint-picker.js';
import type { Authorization, Service, Workload } from './types.js';
import { keyOfPolicy, keyOfService } from './types.js';

/** What changed in one applied batch; names are xDS resource names (uid, `ns/hostname`, `ns/name`). */
export interface StateChange {
  readonly version: number;
  /** Workloads upserted or removed. */
  readonly workloads: readonly string[];
  readonly services: readonly string[];
  /** Policies upserted or removed: when non-empty, live connections must be re-checked. */
  readonly policies: readonly string[];
}

export type StateListener = (change: StateChange) => void;

/**
 * The read API of the proxy state: all the data path may use. Values returned are frozen and never mutated later;
 * an update replaces them, so a connection may keep the Workload it looked up.
 */
export interface ProxyState {
  /** Increases by one with every batch that changed something. */
  readonly version: number;
  /** The workload reachable at `network/ip` (host-network workloads are not indexed by IP). */
  workloadByAddress(network: string, ip: string): Workload | undefined;
  workloadByUid(uid: string): Workload | undefined;
  serviceByVip(network: string, ip: string): Service | undefined;
  /** Best service for a hostname: the one in `preferNamespace`, else a `canonical` one, else the first known. */
  serviceByHostname(hostname: string, preferNamespace?: string): Service | undefined;
  /** By xDS name `<namespace>/<hostname>`. */
  serviceByKey(key: string): Service | undefined;
  /** Services the workload is an endpoint of (only those known). */
  servicesOf(workload: Workload): Service[];
  /** Workloads whose `services` reference the service, whatever their health, with their port mapping. */
  endpointsOf(service: Service | string): Endpoint[];
  policyByKey(key: string): Authorization | undefined;
  /**
   * Policies that apply to a destination workload (spec §6.1): every Global-scope policy, every Namespace-scope
   * policy of the workload's namespace, and the ones listed in `workload.authorizationPolicies`. Names not (yet)
   * known are skipped, as ztunnel does.
   */
  policiesFor(workload: Workload): Authorization[];
  /** Names listed on the workload that are not known (yet): for a debug line, not for enforcement. */
  missingPoliciesFor(workload: Workload): string[];
  /** Upstream choice for `service:servicePort`; see `pickEndpoint` in endpoint-picker.ts. */
  pickEndpoint(service: Service, servicePort: number, options?: PickEndpointOptions): EndpointChoice;
  listWorkloads(): Workload[];
  listServices(): Service[];
  listPolicies(): Authorization[];
  /** Called after every batch that changed something. Returns the unsubscribe function. */
  onChange(listener: StateListener): () => void;
}

export interface StateStoreOptions {
  /** Where a throwing listener is reported; listeners never break an update. */
  readonly logger?: { error(obj: object, msg: string): void };
}

/** Global-scope policies are indexed under this namespace key, as in ztunnel's PolicyStore. */
const GLOBAL = '';

/**
 * The store behind the read API. Its mutating methods (`put*`, `delete*`, `commit`) are for `updater.ts` only:
 * hand the rest of the agent the `ProxyState` interface, which has none of them.
 */
export class StateStore implements ProxyState {
  private currentVersion = 0;
  private readonly workloadsByUid = new Map<string, Workload>();
  private readonly workloadsByAddr = new Map<string, Workload[]>();
  private readonly servicesByKey = new Map<string, Service>();
  private readonly servicesByVip = new Map<string, Service>();
  private readonly servicesByHost = new Map<string, Service[]>();
  /** service key -> uids of workloads that list it (kept even before the service arrives). */
  private readonly endpointUids = new Map<string, Set<string>>();
  private readonly policiesByKey = new Map<string, Authorization>();
  /** namespace ("" for Global) -> policy keys of Global/Namespace scope. */
  private readonly policiesByNamespace = new Map<string, Set<string>>();
  private readonly listeners = new Set<StateListener>();

  constructor(private readonly options: StateStoreOptions = {}) {}

  get version(): number {
    return this.currentVersion;
  }

  workloadByAddress(network: string, ip: string): Workload | undefined {
    const c = canonicalizeIp(ip);
    if (!c) return undefined;
    const ws = this.workloadsByAddr.get(keyOfNetworkAddress(network, c));
    if (!ws || ws.length === 0) return undefined;
    if (ws.length === 1) return ws[0];
    // Several workloads claim the address: prefer Pods (not spoofable) and then HBONE ones, as ztunnel does.
    const rank = (w: Workload): number => (w.uid.includes('//Pod/') ? 2 : 0) + (w.protocol === 'HBONE' ? 1 : 0);
    return ws.reduce((best, w) => (rank(w) > rank(best) ? w : best));
  }

  workloadByUid(uid: string): Workload | undefined {
    return this.workloadsByUid.get(uid);
  }

  serviceByVip(network: string, ip: string): Service | undefined {
    const c = canonicalizeIp(ip);
    return c ? this.servicesByVip.get(keyOfNetworkAddress(network, c)) : undefined;
  }

  serviceByHostname(hostname: string, preferNamespace?: string): Service | undefined {
    const ss = this.servicesByHost.get(hostname);
    if (!ss || ss.length === 0) return undefined;
    return (
      (preferNamespace !== undefined ? ss.find((s) => s.namespace === preferNamespace) : undefined) ??
      ss.find((s) => s.canonical) ??
      ss[0]
    );
  }

  serviceByKey(key: string): Service | undefined {
    return this.servicesByKey.get(key);
  }

  servicesOf(workload: Workload): Service[] {
    return Object.keys(workload.services)
      .map((k) => this.servicesByKey.get(k))
      .filter((s): s is Service => s !== undefined);
  }

  endpointsOf(service: Service | string): Endpoint[] {
    const key = typeof service === 'string' ? service : keyOfService(service);
    const out: Endpoint[] = [];
    for (const uid of this.endpointUids.get(key) ?? []) {
      const w = this.workloadsByUid.get(uid);
      const ports = w?.services[key];
      if (w && ports) out.push({ workload: w, ports });
    }
    return out;
  }

  policyByKey(key: string): Authorization | undefined {
    return this.policiesByKey.get(key);
  }

  policiesFor(workload: Workload): Authorization[] {
    const keys = new Set<string>([
      ...(this.policiesByNamespace.get(workload.namespace) ?? []),
      ...(this.policiesByNamespace.get(GLOBAL) ?? []),
      ...workload.authorizationPolicies,
    ]);
    const out: Authorization[] = [];
    for (const k of keys) {
      const p = this.policiesByKey.get(k);
      if (p) out.push(p);
    }
    return out;
  }

  missingPoliciesFor(workload: Workload): string[] {
    return workload.authorizationPolicies.filter((k) => !this.policiesByKey.has(k));
  }

  pickEndpoint(service: Service, servicePort: number, options?: PickEndpointOptions): EndpointChoice {
    return pickEndpoint(service, servicePort, this.endpointsOf(service), options);
  }

  listWorkloads(): Workload[] {
    return [...this.workloadsByUid.values()];
  }
  listServices(): Service[] {
    return [...this.servicesByKey.values()];
  }
  listPolicies(): Authorization[] {
    return [...this.policiesByKey.values()];
  }

  onChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- mutation: updater.ts only ------------------------------------------------------------------------------

  /** @internal */
  putWorkload(w: Workload): void {
    this.deleteWorkload(w.uid);
    this.workloadsByUid.set(w.uid, w);
    if (w.networkMode !== 'HostNetwork') {
      for (const ip of w.workloadIps) push(this.workloadsByAddr, keyOfNetworkAddress(w.network, ip), w);
    }
    for (const svc of Object.keys(w.services)) addToSet(this.endpointUids, svc, w.uid);
  }

  /** @internal Returns whether it existed. */
  deleteWorkload(uid: string): boolean {
    const prev = this.workloadsByUid.get(uid);
    if (!prev) return false;
    this.workloadsByUid.delete(uid);
    if (prev.networkMode !== 'HostNetwork') {
      for (const ip of prev.workloadIps) pull(this.workloadsByAddr, keyOfNetworkAddress(prev.network, ip), (x) => x.uid === uid);
    }
    for (const svc of Object.keys(prev.services)) removeFromSet(this.endpointUids, svc, uid);
    return true;
  }

  /** @internal */
  putService(s: Service): void {
    const key = keyOfService(s);
    this.deleteService(key);
    this.servicesByKey.set(key, s);
    for (const v of s.vips) this.servicesByVip.set(keyOfNetworkAddress(v.network, v.address), s);
    push(this.servicesByHost, s.hostname, s);
  }

  /** @internal Returns whether it existed. */
  deleteService(key: string): boolean {
    const prev = this.servicesByKey.get(key);
    if (!prev) return false;
    this.servicesByKey.delete(key);
    for (const v of prev.vips) {
      const k = keyOfNetworkAddress(v.network, v.address);
      if (this.servicesByVip.get(k) === prev) {
        this.servicesByVip.delete(k);
        // Another service may share the VIP (it lost the last-writer race); let it have the VIP back.
        for (const other of this.servicesByKey.values()) {
          if (other.vips.some((o) => keyOfNetworkAddress(o.network, o.address) === k)) this.servicesByVip.set(k, other);
        }
      }
    }
    pull(this.servicesByHost, prev.hostname, (x) => x === prev);
    return true;
  }

  /** @internal */
  putPolicy(p: Authorization): void {
    const key = keyOfPolicy(p);
    this.deletePolicy(key);
    this.policiesByKey.set(key, p);
    if (p.scope === 'Global') addToSet(this.policiesByNamespace, GLOBAL, key);
    else if (p.scope === 'Namespace') addToSet(this.policiesByNamespace, p.namespace, key);
  }

  /** @internal Returns whether it existed. */
  deletePolicy(key: string): boolean {
    const prev = this.policiesByKey.get(key);
    if (!prev) return false;
    this.policiesByKey.delete(key);
    if (prev.scope === 'Global') removeFromSet(this.policiesByNamespace, GLOBAL, key);
    else if (prev.scope === 'Namespace') removeFromSet(this.policiesByNamespace, prev.namespace, key);
    return true;
  }

  /** @internal Bumps the version and tells the listeners, once per batch. */
  commit(change: Omit<StateChange, 'version'>): StateChange {
    this.currentVersion++;
    const full: StateChange = Object.freeze({ version: this.currentVersion, ...change });
    for (const l of [...this.listeners]) {
      try {
        l(full);
      } catch (err) {
        this.options.logger?.error({ err }, 'state change listener threw');
      }
    }
    return full;
  }
}

export function createStateStore(options: StateStoreOptions = {}): StateStore {
  return new StateStore(options);
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
function pull<K, V>(m: Map<K, V[]>, k: K, pred: (v: V) => boolean): void {
  const a = m.get(k);
  if (!a) return;
  const rest = a.filter((v) => !pred(v));
  if (rest.length) m.set(k, rest);
  else m.delete(k);
}
function addToSet<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s) s.add(v);
  else m.set(k, new Set([v]));
}
function removeFromSet<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
