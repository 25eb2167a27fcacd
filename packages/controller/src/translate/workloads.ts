// Pod, WorkloadEntry, ServiceEntry endpoints and non-pod EndpointSlice endpoints -> istio.workload.Workload
// (spec §3.3, §3.7), as istiod builds them: uid formats, identity, telemetry names from labels, health, tunnel
// protocol, the Services each workload backs with per-endpoint target ports, waypoint and selector policies.
import {
  ANNOTATIONS, LABELS, REDIRECTION, DEFAULT_TRUST_DOMAIN,
  type ApplicationTunnel, type KubeObject, type Port, type PortList, type Workload,
} from '@ambit/api';
import { TranslationError, type TranslateContext } from './context.js';
import { parseIp, requireIp } from './addresses.js';
import { TRANSLATE_NAMES } from './mesh.js';
import { workloadLabels, labelsMatch, type LabelMap } from './object-index.js';
import { peerAuthenticationKeys } from './peer-authentication.js';
import { serviceEntryHosts, serviceEntryPorts, serviceHostname, serviceKey, type ServicePortSpec, type ServiceEntryPortSpec } from './services.js';
import { waypointFor, waypointOfInstance, type WaypointProblem } from './waypoints.js';

export interface WorkloadTranslation {
  readonly workloads: Workload[];
  readonly waypointProblem?: WaypointProblem;
}

/** `ns/name` of every selector AuthorizationPolicy (root or own namespace) that selects these labels, sorted. */
export function selectorPolicyKeys(ctx: TranslateContext, namespace: string, labels: LabelMap): string[] {
  const keys: string[] = [];
  const namespaces = namespace === ctx.mesh.rootNamespace ? [namespace] : [ctx.mesh.rootNamespace, namespace];
  for (const ns of namespaces) {
    for (const p of ctx.index.list('AuthorizationPolicy', ns)) {
      const sel = p.spec?.selector;
      if (!sel || p.spec?.targetRef || (p.spec?.targetRefs?.length ?? 0) > 0) continue;
      const action = p.spec?.action ?? 'ALLOW';
      if (action !== 'ALLOW' && action !== 'DENY') continue;
      if (p.metadata.annotations?.[LABELS.dryRun]?.toLowerCase() === 'true' && !ctx.mesh.enableDryRunAuthorizationPolicy) continue;
      if (!labelsMatch((sel.matchLabels ?? {}) as LabelMap, labels)) continue;
      ctx.use(p);
      keys.push(`${ns}/${p.metadata.name}`);
    }
  }
  return keys.sort();
}

/** Selector AuthorizationPolicies, then the PeerAuthentication-derived keys (istiod's order). */
export function workloadPolicies(ctx: TranslateContext, namespace: string, labels: LabelMap): string[] {
  const root = ctx.index.list('PeerAuthentication', ctx.mesh.rootNamespace);
  const own = namespace === ctx.mesh.rootNamespace ? root : ctx.index.list('PeerAuthentication', namespace);
  for (const p of root) ctx.use(p);
  for (const p of own) ctx.use(p);
  return [...selectorPolicyKeys(ctx, namespace, labels), ...peerAuthenticationKeys(ctx.mesh.rootNamespace, root, own, labels)];
}

function trustDomainField(ctx: TranslateContext): string {
  return ctx.mesh.trustDomain === DEFAULT_TRUST_DOMAIN ? '' : ctx.mesh.trustDomain;
}

/** HBONE when the CNI marked the pod captured, or natively when it says it speaks HBONE itself. */
function applyTunnel(w: Workload, labels: LabelMap, annotations: LabelMap | undefined): void {
  if (annotations?.[ANNOTATIONS.redirection] === REDIRECTION.enabled) w.tunnel_protocol = 'HBONE';
  if (labels[TRANSLATE_NAMES.tunnel] === 'http') {
    w.tunnel_protocol = 'HBONE';
    w.native_tunnel = true;
  }
}

/** Istio's canonical service: label, else app.kubernetes.io/name, else app, else the workload name. */
export function canonicalService(labels: LabelMap, workloadName: string): { name: string; revision: string } {
  return {
    name: labels[LABELS.canonicalName] || labels[LABELS.appKubernetesName] || labels[LABELS.app] || workloadName,
    revision: labels[LABELS.canonicalRevision] || labels[LABELS.appKubernetesVersion] || labels[LABELS.version] || 'latest',
  };
}

const CRONJOB_JOB_NAME = /^(.+)-\d{8,11}$/;

/** The name of what runs the pod: Deployment (from its ReplicaSet), CronJob (from its Job), other controller, or the pod. */
export function podWorkloadName(pod: KubeObject): string {
  const ref = pod.metadata.ownerReferences?.find((r) => r.controller) ?? undefined;
  if (!ref) return pod.metadata.name;
  if (ref.kind === 'ReplicaSet') {
    const hash = pod.metadata.labels?.[TRANSLATE_NAMES.podTemplateHash];
    if (hash && ref.name.endsWith(`-${hash}`)) return ref.name.slice(0, -(hash.length + 1));
  }
  if (ref.kind === 'Job') {
    const m = CRONJOB_JOB_NAME.exec(ref.name);
    if (m) return m[1]!;
  }
  return ref.name;
}

function podReady(pod: KubeObject): boolean {
  const conds = (pod.status?.conditions ?? []) as { type?: string; status?: string }[];
  return conds.some((c) => c?.type === 'Ready' && c.status === 'True');
}

function containerPort(pod: KubeObject, name: string): number | undefined {
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])] as { ports?: { name?: string; containerPort?: number }[] }[]) {
    for (const p of c?.ports ?? []) if (p?.name === name && Number.isInteger(p.containerPort)) return p.containerPort;
  }
  return undefined;
}

/**
 * The entry of one Kubernetes Service in Workload.services, target ports resolved for this endpoint: a named
 * targetPort is looked up with `lookup`; a port whose name the endpoint does not define is left out (as istiod does).
 */
function kubernetesServicePorts(svc: KubeObject, lookup: (name: string) => number | undefined): PortList {
  const ports: Port[] = [];
  const seen = new Set<number>();
  for (const p of (svc.spec?.ports ?? []) as (ServicePortSpec & { protocol?: string })[]) {
    // TCP only, each service port once (see kubernetesPorts in services.ts).
    if (!Number.isInteger(p.port) || (p.protocol !== undefined && p.protocol !== 'TCP') || seen.has(p.port!)) continue;
    seen.add(p.port!);
    let target: number | undefined;
    if (p.targetPort === undefined) target = p.port;
    else if (typeof p.targetPort === 'number') target = p.targetPort;
    else if (/^\d+$/.test(p.targetPort)) target = Number(p.targetPort);
    else target = lookup(p.targetPort);
    if (target === undefined) continue;
    ports.push({ service_port: p.port!, target_port: target });
  }
  return { ports };
}

/** ServiceEntry hosts in Workload.services: the endpoint's named port (WorkloadEntry `ports`), else the target port. */
function serviceEntryServicePorts(se: KubeObject, endpointPorts: Readonly<Record<string, number>> | undefined): PortList {
  const specPorts = (se.spec?.ports ?? []) as ServiceEntryPortSpec[];
  return {
    ports: serviceEntryPorts(se).map((p, i) => {
      const named = specPorts[i]?.name ? endpointPorts?.[specPorts[i]!.name!] : undefined;
      return { service_port: p.service_port!, target_port: named ?? p.target_port! };
    }),
  };
}

function addServiceEntry(services: Record<string, PortList>, se: KubeObject, endpointPorts: Readonly<Record<string, number>> | undefined, hosts?: string[]): void {
  const ns = se.metadata.namespace ?? '';
  const ports = serviceEntryServicePorts(se, endpointPorts);
  for (const h of hosts ?? serviceEntryHosts(se)) services[serviceKey(ns, h)] = ports;
}

/** Services a pod backs: selecting Services and ServiceEntries, plus selectorless Services whose EndpointSlices name it. */
function podServices(pod: KubeObject, ctx: TranslateContext): Record<string, PortList> {
  const ns = pod.metadata.namespace ?? '';
  const labels = pod.metadata.labels ?? {};
  const out: Record<string, PortList> = {};
  const lookup = (name: string): number | undefined => containerPort(pod, name);
  for (const svc of ctx.index.selectorsMatching('Service', ns, labels)) {
    ctx.use(svc);
    if (svc.spec?.type === 'ExternalName') continue;
    out[serviceKey(ns, serviceHostname(svc.metadata.name, ns, ctx.mesh.clusterDomain))] = kubernetesServicePorts(svc, lookup);
  }
  for (const se of ctx.index.selectorsMatching('ServiceEntry', ns, labels)) {
    ctx.use(se);
    addServiceEntry(out, se, undefined);
  }
  for (const slice of ctx.index.endpointSlicesForPod(ns, pod.metadata.name)) {
    ctx.use(slice);
    const svcName = slice.metadata.labels?.[TRANSLATE_NAMES.endpointSliceServiceName];
    if (!svcName) continue;
    const key = serviceKey(ns, serviceHostname(svcName, ns, ctx.mesh.clusterDomain));
    if (out[key]) continue;
    const svc = ctx.get('Service', ns, svcName);
    if (!svc || svc.spec?.type === 'ExternalName') continue;
    out[key] = kubernetesServicePorts(svc, lookup);
  }
  return out;
}

/** Waypoint (or, for a waypoint's own pods, the sandwich application tunnel) of a workload. */
function bindWaypoint(w: Workload, ctx: TranslateContext, namespace: string, labels: LabelMap): WaypointProblem | undefined {
  if (labels[LABELS.gatewayName]) {
    // A waypoint instance never has a waypoint; it may take PROXY-protocol traffic (sandwich).
    const own = waypointOfInstance(ctx, { namespace, labels });
    if (own?.binding) w.application_tunnel = own.binding as ApplicationTunnel;
    return undefined;
  }
  const b = waypointFor(ctx, { namespace, labels }, 'workload');
  if (b.waypoint) w.waypoint = b.waypoint.address;
  return b.problem;
}

/** uid istiod gives a Pod's workload. */
export function podUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

/** A Pod's workload; none for finished pods and pods without an IP yet. */
export function translatePod(pod: KubeObject, ctx: TranslateContext): WorkloadTranslation {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { workloads: [] };
  const ipTexts: string[] = [];
  const podIPs = (pod.status?.podIPs ?? []) as { ip?: string }[];
  if (podIPs.length > 0) podIPs.forEach((p) => ipTexts.push(p?.ip ?? ''));
  else if (pod.status?.podIP) ipTexts.push(pod.status.podIP);
  if (ipTexts.length === 0) return { workloads: [] };
  const field = podIPs.length > 0 ? (i: number) => `status.podIPs[${i}].ip` : () => 'status.podIP';
  const addresses = ipTexts.map((ip, i) => requireIp(pod, field(i), ip));

  const ns = pod.metadata.namespace ?? '';
  const labels = pod.metadata.labels ?? {};
  const name = podWorkloadName(pod);
  const canonical = canonicalService(labels, name);
  const w: Workload = {
    uid: podUid(ctx.mesh.clusterId, ns, pod.metadata.name),
    name: pod.metadata.name,
    namespace: ns,
    addresses,
    network: ctx.mesh.network,
    trust_domain: trustDomainField(ctx),
    service_account: pod.spec?.serviceAccountName || pod.spec?.serviceAccount || 'default',
    node: pod.spec?.nodeName ?? '',
    cluster_id: ctx.mesh.clusterId,
    workload_type: 'POD',
    workload_name: name,
    canonical_name: canonical.name,
    canonical_revision: canonical.revision,
    status: podReady(pod) && !pod.metadata.deletionTimestamp ? 'HEALTHY' : 'UNHEALTHY',
    services: podServices(pod, ctx),
    authorization_policies: workloadPolicies(ctx, ns, labels),
  };
  if (pod.spec?.hostNetwork === true) w.network_mode = 'HOST_NETWORK';
  applyTunnel(w, labels, pod.metadata.annotations);
  const problem = bindWaypoint(w, ctx, ns, labels);
  return { workloads: [w], ...(problem ? { waypointProblem: problem } : {}) };
}

interface EndpointSpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

function locality(text: string | undefined): Workload['locality'] {
  if (!text) return undefined;
  const [region = '', zone = '', subzone = ''] = text.split('/');
  return region || zone || subzone ? { region, zone, subzone } : undefined;
}

/** Fields shared by WorkloadEntry and ServiceEntry endpoint workloads. */
function endpointWorkload(obj: KubeObject, field: string, ep: EndpointSpec, ctx: TranslateContext, uid: string, name: string): Workload {
  if (typeof ep.address !== 'string' || !ep.address) throw new TranslationError(obj, `${field}.address`, 'must be an IP address or a hostname');
  const w: Workload = {
    uid,
    name,
    namespace: obj.metadata.namespace ?? '',
    network: ep.network || ctx.mesh.network,
    trust_domain: trustDomainField(ctx),
    service_account: ep.serviceAccount || 'default',
    cluster_id: ctx.mesh.clusterId,
    status: 'HEALTHY',
    workload_type: 'POD',
  };
  const ip = parseIp(ep.address);
  if (ip) w.addresses = [ip];
  else w.hostname = ep.address;
  const loc = locality(ep.locality);
  if (loc) w.locality = loc;
  if (Number.isInteger(ep.weight) && ep.weight! > 0) w.capacity = { value: ep.weight! };
  return w;
}

/** A WorkloadEntry (a VM or other non-pod endpoint) with its identity, backing the Services that select it. */
export function translateWorkloadEntry(we: KubeObject, ctx: TranslateContext): WorkloadTranslation {
  const ns = we.metadata.namespace ?? '';
  const labels = workloadLabels(we);
  const spec = (we.spec ?? {}) as EndpointSpec;
  const w = endpointWorkload(we, 'spec', spec, ctx, `${ctx.mesh.clusterId}/networking.istio.io/WorkloadEntry/${ns}/${we.metadata.name}`, we.metadata.name);
  w.workload_name = we.metadata.name;
  const canonical = canonicalService(labels, we.metadata.name);
  w.canonical_name = canonical.name;
  w.canonical_revision = canonical.revision;
  const services: Record<string, PortList> = {};
  for (const se of ctx.index.selectorsMatching('ServiceEntry', ns, labels)) {
    ctx.use(se);
    addServiceEntry(services, se, spec.ports);
  }
  for (const svc of ctx.index.selectorsMatching('Service', ns, labels)) {
    ctx.use(svc);
    if (svc.spec?.type === 'ExternalName') continue;
    services[serviceKey(ns, serviceHostname(svc.metadata.name, ns, ctx.mesh.clusterDomain))] = kubernetesServicePorts(svc, (n) => spec.ports?.[n]);
  }
  w.services = services;
  if (w.addresses) w.authorization_policies = workloadPolicies(ctx, ns, labels);
  applyTunnel(w, labels, we.metadata.annotations);
  const problem = bindWaypoint(w, ctx, ns, { ...labels, ...(we.metadata.labels ?? {}) });
  return { workloads: [w], ...(problem ? { waypointProblem: problem } : {}) };
}

/**
 * Inline endpoints of a ServiceEntry, or for a DNS ServiceEntry without endpoints and selector one implicit
 * endpoint per host (the host itself, resolved by ztunnel).
 */
export function translateServiceEntryWorkloads(se: KubeObject, ctx: TranslateContext): WorkloadTranslation {
  const ns = se.metadata.namespace ?? '';
  const hosts = serviceEntryHosts(se);
  const resolution = se.spec?.resolution ?? 'NONE';
  const endpoints = (se.spec?.endpoints ?? []) as EndpointSpec[];
  const implicit = endpoints.length === 0 && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !se.spec?.workloadSelector;
  const list: { ep: EndpointSpec; field: string; hosts: string[] }[] = implicit
    ? hosts.map((h, i) => ({ ep: { address: h }, field: `spec.hosts[${i}]`, hosts: [h] }))
    : endpoints.map((ep, i) => ({ ep: ep ?? {}, field: `spec.endpoints[${i}]`, hosts }));
  const seLabels = se.metadata.labels ?? {};
  const canonical = canonicalService(seLabels, se.metadata.name);
  const policies = list.length > 0 ? workloadPolicies(ctx, ns, seLabels) : [];
  let problem: WaypointProblem | undefined;
  const workloads = list.map(({ ep, field, hosts: epHosts }) => {
    const uid = `${ctx.mesh.clusterId}/networking.istio.io/ServiceEntry/${ns}/${se.metadata.name}/${ep.address ?? ''}`;
    const w = endpointWorkload(se, field, ep, ctx, uid, se.metadata.name);
    w.workload_name = se.metadata.name;
    w.canonical_name = canonical.name;
    w.canonical_revision = canonical.revision;
    const services: Record<string, PortList> = {};
    addServiceEntry(services, se, ep.ports, epHosts);
    w.services = services;
    w.authorization_policies = policies;
    applyTunnel(w, seLabels, se.metadata.annotations);
    if (!implicit) problem ??= bindWaypoint(w, ctx, ns, ep.labels ?? {});
    return w;
  });
  return { workloads, ...(problem ? { waypointProblem: problem } : {}) };
}

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean };
  targetRef?: { kind?: string };
}

/**
 * Endpoints of a Service's EndpointSlice that are not pods (added by hand or by another controller): pods are
 * translated from the Pod, which knows much more. Such endpoints share addresses freely, so they are HOST_NETWORK.
 */
export function translateEndpointSlice(slice: KubeObject, ctx: TranslateContext): WorkloadTranslation {
  const ns = slice.metadata.namespace ?? '';
  const svcName = slice.metadata.labels?.[TRANSLATE_NAMES.endpointSliceServiceName];
  if (!svcName || slice.addressType === 'FQDN') return { workloads: [] };
  const svc = ctx.get('Service', ns, svcName);
  if (!svc || svc.spec?.type === 'ExternalName') return { workloads: [] };
  const key = serviceKey(ns, serviceHostname(svcName, ns, ctx.mesh.clusterDomain));
  const svcPorts = (svc.spec?.ports ?? []) as ServicePortSpec[];
  const ports: Port[] = [];
  for (const p of (slice.ports ?? []) as { name?: string; port?: number; protocol?: string }[]) {
    if (p?.port === undefined || (p.protocol ?? 'TCP') !== 'TCP') continue;
    const sp = svcPorts.find((s) => (s.name ?? '') === (p.name ?? ''));
    if (sp?.port) ports.push({ service_port: sp.port, target_port: p.port });
  }
  const seen = new Set<string>();
  const out: Workload[] = [];
  ((slice.endpoints ?? []) as SliceEndpoint[]).forEach((ep, i) => {
    if (ep?.targetRef?.kind === 'Pod' || !ep?.addresses?.length) return;
    const first = ep.addresses[0]!;
    if (seen.has(first)) return;
    seen.add(first);
    const addresses = ep.addresses.map((a, j) => requireIp(slice, `endpoints[${i}].addresses[${j}]`, a));
    out.push({
      uid: `${ctx.mesh.clusterId}/discovery.k8s.io/EndpointSlice/${ns}/${slice.metadata.name}/${first}`,
      name: slice.metadata.name,
      namespace: ns,
      addresses,
      network: ctx.mesh.network,
      trust_domain: trustDomainField(ctx),
      cluster_id: ctx.mesh.clusterId,
      status: ep.conditions?.ready === false ? 'UNHEALTHY' : 'HEALTHY',
      network_mode: 'HOST_NETWORK',
      services: { [key]: { ports } },
    });
  });
  return { workloads: out };
}
