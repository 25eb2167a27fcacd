// analyze: validateObject on every object plus the cross-object analyzers Istio users know from `istioctl analyze`
// (missing destination hosts and subsets, subsets selecting no pods, policies selecting no workloads, references to
// waypoints that do not exist). Pure: the caller supplies every object (from a cluster, from files, or both).
import type { KubeObject } from '../config-objects.js';
import { LABELS, WAYPOINT_GATEWAY_CLASS } from '../labels.js';
import { createDiagnostic, MESSAGES, sortDiagnostics, type Diagnostic, type MessageType } from './diagnostic.js';
import { hostSubsetOf } from './networking.js';
import { validateObject } from './validate.js';

export interface AnalyzeOptions {
  /** Kubernetes cluster domain for short host names. Default `cluster.local`. */
  clusterDomain?: string;
  /** Istio root namespace: selector-less policies there are mesh-wide. Default `istio-system`. */
  rootNamespace?: string;
  /**
   * Whether `objects` holds every object of each kind (a live cluster's view, Istio's behaviour). When false, a
   * cross-object check that needs a kind is skipped if no object of that kind was given, so analysing a few local
   * files does not report every Service as missing. Default true.
   */
  assumeComplete?: boolean;
  /** Skip the per-object validation (when the caller already has it). Default false. */
  skipValidation?: boolean;
}

type Labels = Record<string, string>;

interface HostEntry {
  host: string;
  obj: KubeObject;
  /** Workload selector behind the host: Service spec.selector, ServiceEntry workloadSelector.labels. */
  selector?: Labels;
  /** Namespaces the host is visible from; undefined = everywhere. */
  visibleIn?: Set<string>;
}

export function analyze(objects: readonly KubeObject[], options: AnalyzeOptions = {}): Diagnostic[] {
  const domain = options.clusterDomain ?? 'cluster.local';
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  const complete = options.assumeComplete ?? true;
  const out: Diagnostic[] = [];
  if (!options.skipValidation) for (const o of objects) out.push(...validateObject(o));

  const byKind = new Map<string, KubeObject[]>();
  for (const o of objects) {
    const list = byKind.get(o.kind ?? '') ?? [];
    list.push(o);
    byKind.set(o.kind ?? '', list);
  }
  const all = (kind: string): KubeObject[] => byKind.get(kind) ?? [];
  /** Whether a check may rely on the set of objects of these kinds being whole. */
  const known = (...kinds: string[]): boolean => complete || kinds.some((k) => all(k).length > 0);
  const ns = (o: KubeObject): string => o.metadata.namespace ?? 'default';
  const report = (type: MessageType, obj: KubeObject, detail: string, field?: string): void => {
    out.push(createDiagnostic(type, obj, detail, field));
  };
  const toFqdn = (host: string, namespace: string): string => (host.includes('.') || host.includes('*') ? host : `${host}.${namespace}.svc.${domain}`);

  // ---- indexes -------------------------------------------------------------------------------------------------
  const hosts = new Map<string, HostEntry[]>();
  const wildcardHosts: HostEntry[] = [];
  const addHost = (e: HostEntry): void => {
    if (e.host.startsWith('*')) wildcardHosts.push(e);
    const list = hosts.get(e.host) ?? [];
    list.push(e);
    hosts.set(e.host, list);
  };
  for (const s of all('Service')) {
    const selector = isLabels(s.spec?.selector) && Object.keys(s.spec.selector).length > 0 ? (s.spec.selector as Labels) : undefined;
    addHost({ host: `${s.metadata.name}.${ns(s)}.svc.${domain}`, obj: s, ...(selector ? { selector } : {}) });
  }
  for (const se of all('ServiceEntry')) {
    const exportTo: unknown[] = Array.isArray(se.spec?.exportTo) ? se.spec.exportTo : [];
    const visibleIn = exportTo.length === 0 || exportTo.includes('*') ? undefined
      : new Set(exportTo.map((e) => (e === '.' ? ns(se) : String(e))).filter((e) => e !== '~'));
    const selector = isLabels(se.spec?.workloadSelector?.labels) ? (se.spec.workloadSelector.labels as Labels) : undefined;
    for (const h of Array.isArray(se.spec?.hosts) ? se.spec.hosts : []) {
      if (typeof h === 'string') addHost({ host: h, obj: se, ...(selector ? { selector } : {}), ...(visibleIn ? { visibleIn } : {}) });
    }
  }
  const lookupHost = (host: string, fromNamespace: string): HostEntry | undefined => {
    const visible = (e: HostEntry): boolean => !e.visibleIn || e.visibleIn.has(fromNamespace);
    const exact = (hosts.get(host) ?? []).find(visible);
    if (exact) return exact;
    return wildcardHosts.find((e) => visible(e) && hostSubsetOf(host, e.host));
  };
  const podsByNamespace = new Map<string, Labels[]>();
  for (const p of all('Pod')) {
    const list = podsByNamespace.get(ns(p)) ?? [];
    list.push(p.metadata.labels ?? {});
    podsByNamespace.set(ns(p), list);
  }
  const anyPodMatches = (selector: Labels, namespace: string | undefined): boolean => {
    const pools = namespace === undefined ? [...podsByNamespace.values()] : [podsByNamespace.get(namespace) ?? []];
    return pools.some((pods) => pods.some((labels) => matchesLabels(selector, labels)));
  };
  const subsets = new Set<string>();
  const drHosts: { host: string; subsetNames: Set<string> }[] = [];
  for (const dr of all('DestinationRule')) {
    if (typeof dr.spec?.host !== 'string') continue;
    const host = toFqdn(dr.spec.host, ns(dr));
    const names = new Set<string>();
    for (const s of Array.isArray(dr.spec.subsets) ? dr.spec.subsets : []) if (typeof s?.name === 'string') names.add(s.name);
    for (const n of names) subsets.add(`${host}|${n}`);
    if (host.startsWith('*')) drHosts.push({ host, subsetNames: names });
  }
  const subsetDefined = (host: string, subset: string): boolean =>
    subsets.has(`${host}|${subset}`) || drHosts.some((d) => d.subsetNames.has(subset) && hostSubsetOf(host, d.host));
  const gateways = new Map<string, KubeObject>();
  for (const g of all('Gateway')) gateways.set(`${ns(g)}/${g.metadata.name}`, g);
  const namespaces = new Set(all('Namespace').map((n) => n.metadata.name));

  // ---- VirtualService: destination hosts and subsets -------------------------------------------------------------
  for (const vs of all('VirtualService')) {
    const vsNs = ns(vs);
    for (const d of virtualServiceDestinations(vs)) {
      const fqdn = toFqdn(d.host, vsNs);
      if (known('Service', 'ServiceEntry') && !lookupHost(fqdn, vsNs)) {
        report(MESSAGES.ReferencedResourceNotFound, vs, `Referenced ${d.mirror ? 'mirror host' : 'host'} not found: ${JSON.stringify(d.host)}`, `${d.path}.host`);
      }
      if (d.subset && known('DestinationRule') && !subsetDefined(fqdn, d.subset)) {
        report(MESSAGES.ReferencedResourceNotFound, vs,
          `Referenced ${d.mirror ? 'mirror+subset' : 'host+subset'} in destinationrule not found: ${JSON.stringify(`${d.host}+${d.subset}`)}`, `${d.path}.subset`);
      }
    }
  }

  // ---- HTTPRoute / GRPCRoute: parents and backends ---------------------------------------------------------------
  for (const route of [...all('HTTPRoute'), ...all('GRPCRoute')]) {
    const rNs = ns(route);
    const parents: unknown[] = Array.isArray(route.spec?.parentRefs) ? route.spec.parentRefs : [];
    parents.forEach((p, i) => {
      if (!isObject(p) || typeof p.name !== 'string') return;
      const group = typeof p.group === 'string' ? p.group : 'gateway.networking.k8s.io';
      const kind = typeof p.kind === 'string' ? p.kind : 'Gateway';
      const pNs = typeof p.namespace === 'string' ? p.namespace : rNs;
      const path = `spec.parentRefs[${i}]`;
      if (group === '' && kind === 'Service' && known('Service') && !hosts.has(`${p.name}.${pNs}.svc.${domain}`)) {
        report(MESSAGES.ReferencedResourceNotFound, route, `Referenced parent service not found: ${JSON.stringify(`${pNs}/${p.name}`)}`, path);
      }
      if (group === 'gateway.networking.k8s.io' && kind === 'Gateway' && known('Gateway') && !gateways.has(`${pNs}/${p.name}`)) {
        report(MESSAGES.ReferencedResourceNotFound, route, `Referenced gateway not found: ${JSON.stringify(`${pNs}/${p.name}`)}`, path);
      }
    });
    const rules: unknown[] = Array.isArray(route.spec?.rules) ? route.spec.rules : [];
    rules.forEach((rule, i) => {
      if (!isObject(rule)) return;
      const refs: unknown[] = Array.isArray(rule.backendRefs) ? rule.backendRefs : [];
      refs.forEach((b, j) => {
        if (!isObject(b) || typeof b.name !== 'string') return;
        const group = typeof b.group === 'string' ? b.group : '';
        const kind = typeof b.kind === 'string' ? b.kind : 'Service';
        const bNs = typeof b.namespace === 'string' ? b.namespace : rNs;
        const path = `spec.rules[${i}].backendRefs[${j}]`;
        if (group === '' && kind === 'Service' && known('Service') && !hosts.has(`${b.name}.${bNs}.svc.${domain}`)) {
          report(MESSAGES.ReferencedResourceNotFound, route, `Referenced backend service not found: ${JSON.stringify(`${bNs}/${b.name}`)}`, path);
        }
        if (group === 'networking.istio.io' && kind === 'Hostname' && known('Service', 'ServiceEntry') && !lookupHost(b.name, rNs)) {
          report(MESSAGES.ReferencedResourceNotFound, route, `Referenced backend host not found: ${JSON.stringify(b.name)}`, path);
        }
        if (group === 'networking.istio.io' && kind === 'ServiceEntry' && known('ServiceEntry') && !all('ServiceEntry').some((se) => se.metadata.name === b.name && ns(se) === bNs)) {
          report(MESSAGES.ReferencedResourceNotFound, route, `Referenced backend serviceentry not found: ${JSON.stringify(`${bNs}/${b.name}`)}`, path);
        }
      });
    });
  }

  // ---- DestinationRule: host exists, subsets select pods -------------------------------------------------------
  for (const dr of all('DestinationRule')) {
    if (typeof dr.spec?.host !== 'string' || dr.spec.host.startsWith('*')) continue;
    const drNs = ns(dr);
    const fqdn = toFqdn(dr.spec.host, drNs);
    const entry = lookupHost(fqdn, drNs);
    if (!entry) {
      if (known('Service', 'ServiceEntry')) {
        report(MESSAGES.UnknownDestinationRuleHost, dr, `The host ${dr.spec.host} defined in the DestinationRule does not match any services in the mesh.`, 'spec.host');
      }
      continue;
    }
    if (!entry.selector || !known('Pod')) continue;
    const subsetList: unknown[] = Array.isArray(dr.spec.subsets) ? dr.spec.subsets : [];
    subsetList.forEach((s, i) => {
      if (!isObject(s) || typeof s.name !== 'string') return;
      const selector: Labels = { ...entry.selector, ...(isLabels(s.labels) ? s.labels : {}) };
      if (!anyPodMatches(selector, ns(entry.obj))) {
        report(MESSAGES.DestinationRuleSubsetNotSelectPods, dr,
          `The Subset ${s.name} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`, `spec.subsets[${i}]`);
      }
    });
  }

  // ---- AuthorizationPolicy: workloads, targets, source namespaces ------------------------------------------------
  for (const ap of all('AuthorizationPolicy')) {
    const apNs = ns(ap);
    const spec = isObject(ap.spec) ? ap.spec : {};
    const targetRefs = [
      ...(isObject(spec.targetRef) ? [{ ref: spec.targetRef, path: 'spec.targetRef' }] : []),
      ...(Array.isArray(spec.targetRefs) ? spec.targetRefs.map((ref: unknown, i: number) => ({ ref, path: `spec.targetRefs[${i}]` })) : []),
    ].filter((t): t is { ref: Record<string, unknown>; path: string } => isObject(t.ref));
    const selector = isObject(spec.selector) && isLabels(spec.selector.matchLabels) ? (spec.selector.matchLabels as Labels) : undefined;
    if (targetRefs.length > 0) {
      for (const { ref, path } of targetRefs) {
        const name = typeof ref.name === 'string' ? ref.name : '';
        const kind = typeof ref.kind === 'string' ? ref.kind : '';
        const missing =
          kind === 'Gateway' ? known('Gateway') && !gateways.has(`${apNs}/${name}`)
          : kind === 'Service' ? known('Service') && !hosts.has(`${name}.${apNs}.svc.${domain}`)
          : kind === 'ServiceEntry' ? known('ServiceEntry') && !all('ServiceEntry').some((se) => se.metadata.name === name && ns(se) === apNs)
          : false;
        if (missing) report(MESSAGES.ReferencedResourceNotFound, ap, `Referenced ${kind.toLowerCase()} not found: ${JSON.stringify(`${apNs}/${name}`)}`, path);
      }
    } else if (known('Pod')) {
      if (apNs === rootNamespace) {
        if (selector && !anyPodMatches(selector, undefined)) report(MESSAGES.NoMatchingWorkloadsFound, ap, `No matching workloads for this resource with the following labels: ${formatSelector(selector)}`, 'spec.selector');
      } else if (selector) {
        if (!anyPodMatches(selector, apNs)) report(MESSAGES.NoMatchingWorkloadsFound, ap, `No matching workloads for this resource with the following labels: ${formatSelector(selector)}`, 'spec.selector');
      } else if ((podsByNamespace.get(apNs) ?? []).length === 0) {
        report(MESSAGES.NoMatchingWorkloadsFound, ap, 'No matching workloads for this resource with the following labels: ', 'spec');
      }
    }
    if (known('Namespace')) {
      const rules: unknown[] = Array.isArray(spec.rules) ? spec.rules : [];
      rules.forEach((rule, i) => {
        if (!isObject(rule) || !Array.isArray(rule.from)) return;
        rule.from.forEach((from: unknown, j: number) => {
          const src = isObject(from) && isObject(from.source) ? from.source : undefined;
          if (!src) return;
          for (const field of ['namespaces', 'notNamespaces'] as const) {
            const list: unknown[] = Array.isArray(src[field]) ? (src[field] as unknown[]) : [];
            list.forEach((value, k) => {
              if (typeof value === 'string' && value !== '' && ![...namespaces].some((n) => namespaceMatches(n, value))) {
                report(MESSAGES.ReferencedResourceNotFound, ap, `Referenced namespace not found: ${JSON.stringify(value)}`, `spec.rules[${i}].from[${j}].source.${field}[${k}]`);
              }
            });
          }
        });
      });
    }
  }

  // ---- istio.io/use-waypoint naming a waypoint that does not exist -------------------------------------------------
  if (known('Gateway')) {
    for (const kind of ['Namespace', 'Service', 'ServiceEntry', 'Pod', 'WorkloadEntry']) {
      for (const o of all(kind)) {
        const labels = o.metadata.labels ?? {};
        const name = labels[LABELS.useWaypoint];
        if (!name || name === 'none') continue;
        const home = kind === 'Namespace' ? o.metadata.name : ns(o);
        const wNs = labels[LABELS.useWaypointNamespace] || home;
        const gw = gateways.get(`${wNs}/${name}`);
        const field = `metadata.labels[${JSON.stringify(LABELS.useWaypoint)}]`;
        if (!gw) report(MESSAGES.ReferencedResourceNotFound, o, `Referenced waypoint not found: ${JSON.stringify(`${wNs}/${name}`)}`, field);
        else if (gw.spec?.gatewayClassName !== WAYPOINT_GATEWAY_CLASS) {
          report(MESSAGES.ReferencedResourceNotFound, o, `Referenced waypoint not found: ${JSON.stringify(`${wNs}/${name}`)} (Gateway ${wNs}/${name} has gatewayClassName ${JSON.stringify(gw.spec?.gatewayClassName ?? '')}, not ${WAYPOINT_GATEWAY_CLASS})`, field);
        }
      }
    }
  }

  return sortDiagnostics(out);
}

interface RouteDestination {
  host: string;
  subset?: string;
  path: string;
  mirror: boolean;
}

/** Every destination of a VirtualService (http/tcp/tls routes, mirror, mirrors) with its path. */
function virtualServiceDestinations(vs: KubeObject): RouteDestination[] {
  const out: RouteDestination[] = [];
  const add = (d: unknown, path: string, mirror: boolean): void => {
    if (!isObject(d) || typeof d.host !== 'string' || d.host === '') return;
    const r: RouteDestination = { host: d.host, path, mirror };
    if (typeof d.subset === 'string' && d.subset !== '') r.subset = d.subset;
    out.push(r);
  };
  for (const section of ['http', 'tcp', 'tls'] as const) {
    const routes: unknown[] = Array.isArray(vs.spec?.[section]) ? vs.spec[section] : [];
    routes.forEach((r, i) => {
      if (!isObject(r)) return;
      const dests: unknown[] = Array.isArray(r.route) ? r.route : [];
      dests.forEach((d, j) => add(isObject(d) ? d.destination : undefined, `spec.${section}[${i}].route[${j}].destination`, false));
      if (section === 'http') {
        add(r.mirror, `spec.http[${i}].mirror`, true);
        const mirrors: unknown[] = Array.isArray(r.mirrors) ? r.mirrors : [];
        mirrors.forEach((m, j) => add(isObject(m) ? m.destination : undefined, `spec.http[${i}].mirrors[${j}].destination`, true));
      }
    });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isLabels(v: unknown): v is Labels {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** Equality-based label selector: every key of `selector` is on `labels` with the same value. */
export function matchesLabels(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function formatSelector(selector: Labels): string {
  return Object.entries(selector).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
}

/** AuthorizationPolicy namespace patterns: `*`, `prefix*`, `*suffix`, or exact. */
function namespaceMatches(ns: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return ns.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return ns.startsWith(pattern.slice(0, -1));
  return ns === pattern;
}
