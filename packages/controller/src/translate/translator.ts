// The incremental translator: the only writer of the ResourceStore's Address and Authorization resources.
// Each translatable object is one unit whose output (resources, status, and the keys of the objects it read) is a
// pure function of the ObjectIndex. `changed(kind, ns, name)` recomputes that object's unit, every unit that read
// the object, and the units a new version could newly affect (what a Service selects now, the namespace's objects
// for a Namespace, ...). Unchanged bytes are not re-announced: the store compares versions.
import type { Logger } from 'pino';
import type { Authorization, KubeObject, Service, Workload } from '@ambit/api';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '@ambit/api';
import type { ResourceStore } from '../xds/resource-store.js';
import { createContext, TranslationError, type TranslateContext } from './context.js';
import { invalidPolicyCondition, translateAuthorizationPolicy, type StatusCondition } from './authorization.js';
import { CONDITION_TYPES, resolveMeshSettings, type MeshSettings, type ResolvedMeshSettings } from './mesh.js';
import {
  endpointPodRefs, keyOf, labelsMatch, objectKey, parseObjectKey, selectorOf, workloadLabels, type ObjectIndex,
} from './object-index.js';
import { oldest, selectorlessOf, staticStrictAuthorization, translatePeerAuthentication } from './peer-authentication.js';
import { serviceKey, translateService, translateServiceEntry, type ServiceTranslation } from './services.js';
import {
  translateEndpointSlice, translatePod, translateServiceEntryWorkloads, translateWorkloadEntry,
} from './workloads.js';

export interface StatusRef {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
}

export interface ObjectStatus {
  ref: StatusRef;
  conditions: StatusCondition[];
}

export interface TranslatorOptions {
  index: ObjectIndex;
  store: ResourceStore;
  mesh: MeshSettings;
  logger: Logger;
  /**
   * Called when the conditions istiod would write on an object change: ZtunnelAccepted / WaypointAccepted on
   * AuthorizationPolicy, istio.io/WaypointBound on Service and ServiceEntry. An empty list means: remove the
   * conditions written before (the object no longer calls for any). Not called for deleted objects.
   */
  onStatus?: (ref: StatusRef, conditions: StatusCondition[]) => void;
}

export interface Translator {
  /** The object kind/namespace/name was set or deleted in the index: bring the store up to date. */
  changed(kind: string, namespace: string, name: string): void;
  /** Recomputes every unit (startup, or after a bulk load); removes what no object produces any more. */
  resyncAll(): void;
  /** Current status conditions per object. */
  statuses(): ObjectStatus[];
  readonly mesh: ResolvedMeshSettings;
}

/** Kinds translated into resources (one unit per object). */
export const UNIT_KINDS: ReadonlySet<string> = new Set([
  'Pod', 'Service', 'ServiceEntry', 'WorkloadEntry', 'EndpointSlice', 'AuthorizationPolicy', 'PeerAuthentication',
]);
/** The static STRICT policy: sent while any PeerAuthentication exists. */
const STATIC_STRICT_UNIT = objectKey('PeerAuthentication', '', '*static-strict*');
const WORKLOAD_KINDS = ['Pod', 'WorkloadEntry', 'ServiceEntry'] as const;

type AddressOut = { workload: Workload } | { service: Service };

interface UnitOutput {
  addresses: Map<string, AddressOut>;
  authorizations: Map<string, Authorization>;
  status?: ObjectStatus;
}

interface UnitState {
  addresses: Set<string>;
  authorizations: Set<string>;
  deps: Set<string>;
}

/** istio.io/WaypointBound for a Service/ServiceEntry that names a waypoint (own or namespace label). */
function waypointBoundCondition(t: ServiceTranslation): StatusCondition | undefined {
  if (t.waypoint) return { type: CONDITION_TYPES.waypointBound, status: 'True', reason: 'WaypointAccepted', message: `bound to ${t.waypoint}` };
  if (t.waypointProblem) return { type: CONDITION_TYPES.waypointBound, status: 'False', reason: t.waypointProblem.reason, message: t.waypointProblem.message };
  return undefined;
}

function statusRef(obj: KubeObject): StatusRef {
  const ref: StatusRef = { kind: obj.kind ?? '', namespace: obj.metadata.namespace ?? '', name: obj.metadata.name };
  if (obj.metadata.generation !== undefined) ref.generation = obj.metadata.generation;
  return ref;
}

export function createTranslator(options: TranslatorOptions): Translator {
  const { index, store } = options;
  const mesh = resolveMeshSettings(options.mesh);
  const log = options.logger.child({ component: 'translate' });
  const units = new Map<string, UnitState>();
  const rdeps = new Map<string, Set<string>>();
  // typeUrl|name -> units producing it (two ServiceEntries may declare the same host in one namespace).
  const owners = new Map<string, Set<string>>();
  const statuses = new Map<string, ObjectStatus>();

  const compute = (unit: string, ctx: TranslateContext): UnitOutput => {
    const out: UnitOutput = { addresses: new Map(), authorizations: new Map() };
    const addWorkloads = (ws: Workload[]): void => { for (const w of ws) out.addresses.set(w.uid!, { workload: w }); };
    const addServices = (ss: Service[]): void => { for (const s of ss) out.addresses.set(serviceKey(s.namespace!, s.hostname!), { service: s }); };
    if (unit === STATIC_STRICT_UNIT) {
      if (index.size('PeerAuthentication') > 0) {
        const a = staticStrictAuthorization(mesh.rootNamespace);
        out.authorizations.set(`${a.namespace}/${a.name}`, a);
      }
      return out;
    }
    const { kind, namespace, name } = parseObjectKey(unit);
    const obj = ctx.get(kind, namespace, name);
    if (!obj) return out;
    switch (kind) {
      case 'Pod': addWorkloads(translatePod(obj, ctx).workloads); break;
      case 'WorkloadEntry': addWorkloads(translateWorkloadEntry(obj, ctx).workloads); break;
      case 'EndpointSlice': addWorkloads(translateEndpointSlice(obj, ctx).workloads); break;
      case 'Service':
      case 'ServiceEntry': {
        const t = kind === 'Service' ? translateService(obj, ctx) : translateServiceEntry(obj, ctx);
        addServices(t.services);
        if (kind === 'ServiceEntry') addWorkloads(translateServiceEntryWorkloads(obj, ctx).workloads);
        const bound = waypointBoundCondition(t);
        if (bound) out.status = { ref: statusRef(obj), conditions: [bound] };
        break;
      }
      case 'AuthorizationPolicy': {
        const t = translateAuthorizationPolicy(obj, ctx);
        if (t.authorization) out.authorizations.set(`${namespace}/${name}`, t.authorization);
        if (t.conditions.length > 0) out.status = { ref: statusRef(obj), conditions: t.conditions };
        break;
      }
      case 'PeerAuthentication': {
        const nsCfg = oldest(selectorlessOf(index.list('PeerAuthentication', namespace)));
        const rootCfg = oldest(selectorlessOf(index.list('PeerAuthentication', mesh.rootNamespace)));
        if (nsCfg) ctx.use(nsCfg);
        if (rootCfg) ctx.use(rootCfg);
        const a = translatePeerAuthentication(obj, mesh.rootNamespace, nsCfg, rootCfg);
        if (a) out.authorizations.set(`${a.namespace}/${a.name}`, a);
        break;
      }
      default: break;
    }
    return out;
  };

  const setDeps = (unit: string, state: UnitState, deps: Set<string>): void => {
    for (const d of state.deps) if (!deps.has(d)) {
      const s = rdeps.get(d);
      s?.delete(unit);
      if (s && s.size === 0) rdeps.delete(d);
    }
    for (const d of deps) if (!state.deps.has(d)) {
      let s = rdeps.get(d);
      if (!s) rdeps.set(d, (s = new Set()));
      s.add(unit);
    }
    state.deps = deps;
  };

  const setStatus = (unit: string, status: ObjectStatus | undefined): void => {
    const old = statuses.get(unit);
    if (!status) {
      statuses.delete(unit);
      // Still there but nothing to say any more (e.g. the use-waypoint label was removed): clear our conditions.
      const { kind, namespace, name } = parseObjectKey(unit);
      if (old && index.get(kind, namespace, name)) options.onStatus?.(old.ref, []);
      return;
    }
    statuses.set(unit, status);
    if (old && JSON.stringify(old) === JSON.stringify(status)) return;
    options.onStatus?.(status.ref, status.conditions);
  };

  /** Replaces a unit's outputs; returns units that must be recomputed because they shared a dropped name. */
  const apply = (unit: string, state: UnitState, out: UnitOutput, followUps: Set<string>): void => {
    const write = (typeUrl: string, names: Set<string>, next: Map<string, unknown>, upsert: (name: string, value: unknown) => void): Set<string> => {
      for (const [n, v] of next) {
        upsert(n, v);
        const k = `${typeUrl}|${n}`;
        let o = owners.get(k);
        if (!o) owners.set(k, (o = new Set()));
        o.add(unit);
      }
      for (const n of names) {
        if (next.has(n)) continue;
        const k = `${typeUrl}|${n}`;
        const o = owners.get(k);
        o?.delete(unit);
        if (!o || o.size === 0) {
          owners.delete(k);
          store.remove(typeUrl, n);
        } else {
          // Another object declares the same resource: let it write its version back.
          for (const other of o) followUps.add(other);
        }
      }
      return new Set(next.keys());
    };
    state.addresses = write(ADDRESS_TYPE_URL, state.addresses, out.addresses, (_n, v) => {
      const a = v as AddressOut;
      if ('workload' in a) store.upsertWorkload(a.workload);
      else store.upsertService(a.service);
    });
    state.authorizations = write(AUTHORIZATION_TYPE_URL, state.authorizations, out.authorizations, (_n, v) => store.upsertAuthorization(v as Authorization));
  };

  const recompute = (unit: string, followUps: Set<string>): void => {
    let state = units.get(unit);
    const deps = new Set<string>([unit]);
    const ctx = createContext(index, mesh, deps);
    let out: UnitOutput;
    try {
      out = compute(unit, ctx);
    } catch (err) {
      if (!(err instanceof TranslationError)) throw err;
      // Keep the last good output; still watch what was read so a fix (or a dependency change) retries.
      log.warn({ object: unit, err: err.message }, 'cannot translate object; keeping its last good version');
      state ??= { addresses: new Set(), authorizations: new Set(), deps: new Set() };
      units.set(unit, state);
      setDeps(unit, state, new Set([...state.deps, ...deps]));
      if (err.object.kind === 'AuthorizationPolicy') {
        setStatus(unit, { ref: statusRef(err.object), conditions: [invalidPolicyCondition(err.message)] });
      }
      return;
    }
    const { kind, namespace, name } = parseObjectKey(unit);
    const exists = unit === STATIC_STRICT_UNIT || index.get(kind, namespace, name) !== undefined;
    if (!state) {
      if (!exists) {
        // A deleted object that was never tracked: nothing to undo.
        setStatus(unit, undefined);
        return;
      }
      state = { addresses: new Set(), authorizations: new Set(), deps: new Set() };
      units.set(unit, state);
    }
    apply(unit, state, out, followUps);
    setStatus(unit, out.status);
    if (!exists) {
      // The object is gone: forget the unit entirely.
      setDeps(unit, state, new Set());
      units.delete(unit);
    } else {
      setDeps(unit, state, deps);
    }
  };

  const run = (todo: Set<string>): void => {
    // Follow-ups come only from shared resource names; bound the rounds so a pathological loop cannot spin.
    for (let round = 0; todo.size > 0 && round < 3; round++) {
      const followUps = new Set<string>();
      for (const u of todo) recompute(u, followUps);
      for (const u of todo) followUps.delete(u);
      todo = followUps;
    }
  };

  const addWorkloadUnits = (out: Set<string>, namespace: string, matches: (labels: Readonly<Record<string, string>>) => boolean): void => {
    for (const kind of WORKLOAD_KINDS) {
      for (const o of index.list(kind, namespace)) {
        const labels = kind === 'ServiceEntry' ? (o.metadata.labels ?? {}) : workloadLabels(o);
        if (matches(labels)) out.add(keyOf(o));
      }
    }
  };

  /** Units a change of this object may affect beyond those that already read it. */
  const affected = (kind: string, namespace: string, name: string): Set<string> => {
    const key = objectKey(kind, namespace, name);
    const out = new Set<string>(rdeps.get(key) ?? []);
    if (UNIT_KINDS.has(kind)) out.add(key);
    const obj = index.get(kind, namespace, name);
    switch (kind) {
      case 'Namespace':
        // Labels decide waypoints (use-waypoint) and ingress-use-waypoint for everything inside.
        for (const k of ['Pod', 'Service', 'ServiceEntry', 'WorkloadEntry']) for (const o of index.list(k, name)) out.add(keyOf(o));
        break;
      case 'Service':
      case 'ServiceEntry': {
        if (!obj) break;
        const sel = selectorOf(obj);
        for (const o of index.selectByLabels('Pod', namespace, sel)) out.add(keyOf(o));
        for (const o of index.selectByLabels('WorkloadEntry', namespace, sel)) out.add(keyOf(o));
        if (kind === 'Service') {
          for (const slice of index.endpointSlicesForService(namespace, name)) {
            out.add(keyOf(slice));
            for (const ref of endpointPodRefs(slice)) out.add(objectKey('Pod', ref.namespace, ref.name));
          }
        }
        break;
      }
      case 'EndpointSlice':
        if (obj) for (const ref of endpointPodRefs(obj)) out.add(objectKey('Pod', ref.namespace, ref.name));
        break;
      case 'AuthorizationPolicy': {
        const sel = obj?.spec?.selector;
        if (!sel) break;
        const ml = (sel.matchLabels ?? {}) as Record<string, string>;
        const namespaces = namespace === mesh.rootNamespace ? allWorkloadNamespaces() : [namespace];
        for (const ns of namespaces) addWorkloadUnits(out, ns, (labels) => labelsMatch(ml, labels));
        break;
      }
      case 'PeerAuthentication': {
        out.add(STATIC_STRICT_UNIT);
        const ml = obj?.spec?.selector?.matchLabels as Record<string, string> | undefined;
        const selectorless = !ml || Object.keys(ml).length === 0;
        const namespaces = selectorless && namespace === mesh.rootNamespace ? allWorkloadNamespaces() : [namespace];
        for (const ns of namespaces) {
          addWorkloadUnits(out, ns, (labels) => selectorless || labelsMatch(ml!, labels));
          // Converted port-level policies merge the namespace/mesh mode in.
          if (selectorless) for (const pa of index.list('PeerAuthentication', ns)) out.add(keyOf(pa));
        }
        if (selectorless && namespace === mesh.rootNamespace) for (const pa of index.list('PeerAuthentication')) out.add(keyOf(pa));
        break;
      }
      default: break;
    }
    return out;
  };

  const allWorkloadNamespaces = (): string[] => [...new Set(WORKLOAD_KINDS.flatMap((k) => index.namespacesOf(k)))];

  return {
    mesh,
    changed(kind, namespace, name) {
      run(affected(kind, namespace, name));
    },
    resyncAll() {
      const todo = new Set<string>([STATIC_STRICT_UNIT, ...units.keys()]);
      for (const kind of UNIT_KINDS) for (const o of index.list(kind)) todo.add(keyOf(o));
      run(todo);
    },
    statuses() {
      return [...statuses.values()];
    },
  };
}
