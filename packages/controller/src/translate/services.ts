// Kubernetes Service and Istio ServiceEntry -> istio.workload.Service (spec §3.4, §3.7), the way istiod builds them.
import {
  ANNOTATIONS, LABELS,
  type AppProtocol, type KubeObject, type LoadBalancing, type NetworkAddress, type Port, type Service,
} from '@ambit/api';
import { TranslationError, type TranslateContext } from './context.js';
import { parseCidr, parseIp, requireIp } from './addresses.js';
import { waypointFor, type WaypointBinding, type WaypointProblem } from './waypoints.js';

export interface ServiceTranslation {
  /** Empty for kinds istiod does not send (ExternalName Services). */
  readonly services: Service[];
  /** `ns/name` of the waypoint the services are bound to. */
  readonly waypoint?: string;
  /** Set when the object asks for a waypoint that cannot be bound. */
  readonly waypointProblem?: WaypointProblem;
}

/** The binding outcome as reported on the object's status (nothing when it names no waypoint). */
function bindingFacts(b: WaypointBinding): Pick<ServiceTranslation, 'waypoint' | 'waypointProblem'> {
  if (b.waypoint) return { waypoint: `${b.waypoint.namespace}/${b.waypoint.name}` };
  return b.problem ? { waypointProblem: b.problem } : {};
}

export function serviceHostname(name: string, namespace: string, clusterDomain: string): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}

/** `<namespace>/<hostname>`: the key of a Service in Workload.services and its xDS resource name. */
export function serviceKey(namespace: string, hostname: string): string {
  return `${namespace}/${hostname}`;
}

const APP_PROTOCOLS: Readonly<Record<string, AppProtocol>> = {
  http: 'HTTP11', 'kubernetes.io/h2c': 'HTTP2', http2: 'HTTP2', h2c: 'HTTP2', grpc: 'GRPC',
};

// PreferClose: stay as close as possible, spilling over to further endpoints (spec §3.4).
const PREFER_CLOSE: Readonly<LoadBalancing> = Object.freeze({ routing_preference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'], mode: 'FAILOVER' } as LoadBalancing);

export interface ServicePortSpec {
  name?: string;
  port?: number;
  targetPort?: number | string;
  appProtocol?: string;
  protocol?: string;
}

/** Service.spec.ports -> Port[]; a named targetPort becomes 0 (resolved per endpoint in Workload.services). */
function kubernetesPorts(svc: KubeObject): Port[] {
  const specPorts = (svc.spec?.ports ?? []) as (ServicePortSpec & { protocol?: string })[];
  const out: Port[] = [];
  const seen = new Set<number>();
  specPorts.forEach((p, i) => {
    if (!Number.isInteger(p.port) || p.port! < 1 || p.port! > 65535) {
      throw new TranslationError(svc, `spec.ports[${i}].port`, `${JSON.stringify(p.port)} is not a port number (1..65535)`);
    }
    // The mesh carries TCP only: UDP and SCTP ports are not the workload API's business (kube-dns lists 53 twice,
    // TCP and UDP, and a service port may appear only once in a Service).
    if (p.protocol !== undefined && p.protocol !== 'TCP') return;
    if (seen.has(p.port!)) return;
    seen.add(p.port!);
    // The API server defaults an absent targetPort to the port; YAML written by hand may leave it out.
    const target = p.targetPort === undefined ? p.port! : typeof p.targetPort === 'number' ? p.targetPort : /^\d+$/.test(p.targetPort) ? Number(p.targetPort) : 0;
    const port: Port = { service_port: p.port!, target_port: target };
    const app = p.appProtocol ? APP_PROTOCOLS[p.appProtocol.toLowerCase()] : undefined;
    if (app) port.app_protocol = app;
    out.push(port);
  });
  return out;
}

function clusterVips(svc: KubeObject): string[] {
  const spec = svc.spec ?? {};
  const ips: string[] = Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0 ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  const out = ips.filter((ip) => ip && ip !== 'None');
  if (spec.type === 'LoadBalancer') {
    for (const ing of (svc.status?.loadBalancer?.ingress ?? []) as { ip?: string }[]) if (ing?.ip) out.push(ing.ip);
  }
  return out;
}

function ipFamiliesOf(svc: KubeObject): Service['ip_families'] {
  const fams = (svc.spec?.ipFamilies ?? []) as string[];
  if (fams.length === 2) return 'DUAL';
  if (fams.length === 1) return fams[0] === 'IPv6' ? 'IPV6_ONLY' : 'IPV4_ONLY';
  return 'AUTOMATIC';
}

function kubernetesLoadBalancing(svc: KubeObject): LoadBalancing | undefined {
  let preferClose = svc.metadata.annotations?.[ANNOTATIONS.trafficDistribution]?.toLowerCase() === 'preferclose';
  // The field wins over the older annotation when set.
  if (typeof svc.spec?.trafficDistribution === 'string') preferClose = svc.spec.trafficDistribution === 'PreferClose';
  let lb: LoadBalancing | undefined = preferClose ? { ...PREFER_CLOSE, routing_preference: [...PREFER_CLOSE.routing_preference!] } : undefined;
  if (svc.spec?.internalTrafficPolicy === 'Local') lb = { routing_preference: ['NODE'], mode: 'STRICT' };
  if (svc.spec?.publishNotReadyAddresses === true) lb = { ...(lb ?? {}), health_policy: 'ALLOW_ALL' };
  return lb;
}

function ingressUseWaypoint(ctx: TranslateContext, obj: KubeObject): boolean {
  const own = obj.metadata.labels?.[LABELS.ingressUseWaypoint];
  const value = own ?? ctx.get('Namespace', '', obj.metadata.namespace ?? '')?.metadata.labels?.[LABELS.ingressUseWaypoint];
  return value?.toLowerCase() === 'true';
}

/** A Kubernetes Service. ExternalName Services are not sent (ztunnel's DNS forwards them upstream). */
export function translateService(svc: KubeObject, ctx: TranslateContext): ServiceTranslation {
  if (svc.spec?.type === 'ExternalName') return { services: [] };
  const ns = svc.metadata.namespace ?? '';
  const addresses: NetworkAddress[] = clusterVips(svc).map((ip, i) => ({
    network: ctx.mesh.network,
    address: requireIp(svc, `spec.clusterIPs[${i}]`, ip),
  }));
  const binding = waypointFor(ctx, { namespace: ns, labels: svc.metadata.labels }, 'service');
  const out: Service = {
    name: svc.metadata.name,
    namespace: ns,
    hostname: serviceHostname(svc.metadata.name, ns, ctx.mesh.clusterDomain),
    addresses,
    ports: kubernetesPorts(svc),
    ip_families: ipFamiliesOf(svc),
  };
  if (binding.waypoint) {
    out.waypoint = binding.waypoint.address;
    if (ingressUseWaypoint(ctx, svc)) out.ingress_use_waypoint = true;
  }
  const lb = kubernetesLoadBalancing(svc);
  if (lb) out.load_balancing = lb;
  return { services: [out], ...bindingFacts(binding) };
}

export interface ServiceEntryPortSpec {
  number?: number;
  name?: string;
  protocol?: string;
  targetPort?: number;
}

/** ServiceEntry ports: target = targetPort, else the port itself. */
export function serviceEntryPorts(se: KubeObject): Port[] {
  return ((se.spec?.ports ?? []) as ServiceEntryPortSpec[]).map((p, i) => {
    if (!Number.isInteger(p.number) || p.number! < 1 || p.number! > 65535) {
      throw new TranslationError(se, `spec.ports[${i}].number`, `${JSON.stringify(p.number)} is not a port number (1..65535)`);
    }
    return { service_port: p.number!, target_port: p.targetPort || p.number! };
  });
}

export function serviceEntryHosts(se: KubeObject): string[] {
  const hosts = (se.spec?.hosts ?? []) as unknown[];
  return hosts.map((h, i) => {
    if (typeof h !== 'string' || !h) throw new TranslationError(se, `spec.hosts[${i}]`, 'must be a non-empty hostname');
    return h;
  });
}

/** One Service per host of a ServiceEntry, all sharing its addresses, ports and waypoint. */
export function translateServiceEntry(se: KubeObject, ctx: TranslateContext): ServiceTranslation {
  const ns = se.metadata.namespace ?? '';
  const addresses: NetworkAddress[] = [];
  ((se.spec?.addresses ?? []) as unknown[]).forEach((a, i) => {
    const cidr = typeof a === 'string' ? parseCidr(a) : undefined;
    if (!cidr) throw new TranslationError(se, `spec.addresses[${i}]`, `${JSON.stringify(a)} is not an IP address or CIDR`);
    // A range cannot be looked up per IP by the agents (our agent rejects CIDR VIPs): only host addresses are sent.
    if (cidr.length === cidr.address.length * 8) addresses.push({ network: ctx.mesh.network, address: cidr.address });
  });
  const ports = serviceEntryPorts(se);
  const binding = waypointFor(ctx, { namespace: ns, labels: se.metadata.labels }, 'service');
  const preferClose = se.metadata.annotations?.[ANNOTATIONS.trafficDistribution]?.toLowerCase() === 'preferclose';
  const sans = ((se.spec?.subjectAltNames ?? []) as unknown[]).filter((s): s is string => typeof s === 'string');
  const services = serviceEntryHosts(se).map((hostname): Service => {
    const s: Service = { name: se.metadata.name, namespace: ns, hostname, addresses, ports, subject_alt_names: sans };
    if (binding.waypoint) {
      s.waypoint = binding.waypoint.address;
      if (ingressUseWaypoint(ctx, se)) s.ingress_use_waypoint = true;
    }
    if (preferClose) s.load_balancing = { ...PREFER_CLOSE, routing_preference: [...PREFER_CLOSE.routing_preference!] };
    return s;
  });
  return { services, ...bindingFacts(binding) };
}

/** Whether `text` is an IP (ServiceEntry/WorkloadEntry endpoint addresses may be hostnames). */
export function isIpAddress(text: string): boolean {
  return parseIp(text) !== undefined;
}
