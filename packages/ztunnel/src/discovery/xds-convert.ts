import type {
  Address as PbAddress,
  Authorization as PbAuthorization,
  AuthorizationMatch as PbMatch,
  GatewayAddress as PbGatewayAddress,
  IpPrefix as PbIpPrefix,
  NetworkAddress as PbNetworkAddress,
  Service as PbService,
  StringMatch as PbStringMatch,
  Workload as PbWorkload,
} from '@ambit/api';
import { PORTS } from '@ambit/api';
import { canonicalizeIp } from '../state/ip.js';
import type {
  AuthorizationAction,
  AuthorizationInput,
  AuthorizationMatch,
  AuthorizationRule,
  AuthorizationScope,
  GatewayAddress,
  HealthStatus,
  IpFamilies,
  LoadBalancing,
  LoadBalancingHealthPolicy,
  LoadBalancingMode,
  LoadBalancingScope,
  NetworkAddress,
  NetworkMode,
  Protocol,
  ResourceKind,
  ServiceInput,
  ServicePort,
  StringMatch,
  WorkloadInput,
} from '../state/types.js';
import { keyOfPolicy, keyOfService } from '../state/types.js';
import type { DeltaBatch, Rejection } from '../state/updater.js';

/**
 * Proto (istio.workload / istio.security, as @ambit/api decodes them: snake_case fields, enum names, Buffers)
 * to the state model (ztunnel's camelCase config_dump names). Only the shape is converted here; value checks
 * (IP syntax aside, which needs the bytes) stay in the updater's validation so the file and xDS sources agree.
 *
 * A resource that cannot be converted throws ConversionError naming the field in proto terms
 * (`workload.addresses[1]: 5 bytes ...`); buildDeltaBatch turns that into a rejection so the client NACKs it
 * while the rest of the response applies.
 */
export class ConversionError extends Error {
  constructor(readonly field: string, problem: string) {
    super(`${field}: ${problem}`);
  }
}

type EnumValue = string | number | undefined | null;

/** Maps a proto enum (name or number; numbers index `names`) onto the model's spelling. */
function enumOf<T extends string>(v: EnumValue, names: readonly string[], map: Readonly<Record<string, T>>, field: string): T {
  const name = typeof v === 'number' ? names[v] : (v ?? names[0]);
  const out = name !== undefined ? map[name] : undefined;
  if (out === undefined) throw new ConversionError(field, `unknown or unsupported value ${JSON.stringify(v)}`);
  return out;
}

/** 4 or 16 raw bytes -> canonical IP text (IPv4-mapped IPv6 unwrapped, as the state model keeps it). */
export function ipFromBytes(b: Uint8Array | null | undefined, field: string): string {
  if (!b || (b.length !== 4 && b.length !== 16)) throw new ConversionError(field, `${b?.length ?? 0} bytes; an IP address is 4 or 16 bytes`);
  let text: string;
  if (b.length === 4) text = Array.from(b).join('.');
  else {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    text = groups.join(':');
  }
  const ip = canonicalizeIp(text);
  if (!ip) throw new ConversionError(field, `${text} is not an IP address`);
  return ip;
}

const TUNNEL_PROTOCOLS = ['NONE', 'HBONE', 'LEGACY_ISTIO_MTLS'] as const;
// ztunnel never originates LEGACY_ISTIO_MTLS (sidecar mTLS); it reaches such workloads with plain TCP, which a
// sidecar in PERMISSIVE mode accepts.
const PROTOCOL: Record<string, Protocol> = { NONE: 'TCP', HBONE: 'HBONE', LEGACY_ISTIO_MTLS: 'TCP' };
const STATUS: Record<string, HealthStatus> = { HEALTHY: 'Healthy', UNHEALTHY: 'Unhealthy' };
const WORKLOAD_TYPES = ['DEPLOYMENT', 'CRONJOB', 'POD', 'JOB'] as const;
const WORKLOAD_TYPE: Record<string, string> = { DEPLOYMENT: 'deployment', CRONJOB: 'cronjob', POD: 'pod', JOB: 'job' };
const NETWORK_MODE: Record<string, NetworkMode> = { STANDARD: 'Standard', HOST_NETWORK: 'HostNetwork' };
const APP_TUNNEL: Record<string, 'NONE' | 'PROXY'> = { NONE: 'NONE', PROXY: 'PROXY' };
const IP_FAMILIES_NAMES = ['AUTOMATIC', 'IPV4_ONLY', 'IPV6_ONLY', 'DUAL'] as const;
const IP_FAMILIES: Record<string, IpFamilies> = { AUTOMATIC: 'Automatic', IPV4_ONLY: 'IPv4Only', IPV6_ONLY: 'IPv6Only', DUAL: 'Dual' };
const LB_SCOPE_NAMES = ['UNSPECIFIED_SCOPE', 'REGION', 'ZONE', 'SUBZONE', 'NODE', 'CLUSTER', 'NETWORK'] as const;
const LB_SCOPE: Record<string, LoadBalancingScope> = {
  REGION: 'Region', ZONE: 'Zone', SUBZONE: 'Subzone', NODE: 'Node', CLUSTER: 'Cluster', NETWORK: 'Network',
};
const LB_MODE_NAMES = ['UNSPECIFIED_MODE', 'STRICT', 'FAILOVER', 'PASSTHROUGH'] as const;
const LB_MODE: Record<string, LoadBalancingMode> = { UNSPECIFIED_MODE: 'Standard', STRICT: 'Strict', FAILOVER: 'Failover', PASSTHROUGH: 'Passthrough' };
const HEALTH_POLICY_NAMES = ['ONLY_HEALTHY', 'ALLOW_ALL'] as const;
const HEALTH_POLICY: Record<string, LoadBalancingHealthPolicy> = { ONLY_HEALTHY: 'OnlyHealthy', ALLOW_ALL: 'AllowAll' };
const SCOPE_NAMES = ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'] as const;
const SCOPE: Record<string, AuthorizationScope> = { GLOBAL: 'Global', NAMESPACE: 'Namespace', WORKLOAD_SELECTOR: 'WorkloadSelector' };
const ACTION_NAMES = ['ALLOW', 'DENY'] as const;
const ACTION: Record<string, AuthorizationAction> = { ALLOW: 'Allow', DENY: 'Deny' };

const nonEmpty = (s: string | undefined | null): string | undefined => (s ? s : undefined);

function networkAddress(a: PbNetworkAddress, field: string): NetworkAddress {
  const address = ipFromBytes(a.address, `${field}.address`);
  const full = address.includes(':') ? 128 : 32;
  if (a.length !== undefined && a.length !== null && a.length !== full) {
    throw new ConversionError(`${field}.length`, `CIDR ranges (/${a.length}) are not supported; only single addresses`);
  }
  return { network: a.network ?? '', address };
}

function gatewayAddress(g: PbGatewayAddress, field: string): GatewayAddress {
  // 0 is proto3's "unset"; istiod always sends 15008.
  const hboneMtlsPort = g.hbone_mtls_port || PORTS.hbone;
  if (g.hostname) return { destination: { namespace: g.hostname.namespace ?? '', hostname: g.hostname.hostname ?? '' }, hboneMtlsPort };
  if (g.address) return { destination: networkAddress(g.address, `${field}.address`), hboneMtlsPort };
  throw new ConversionError(field, 'neither hostname nor address is set');
}

export function convertWorkload(w: PbWorkload): WorkloadInput {
  const f = 'workload';
  const services: Record<string, Record<string, number>> = {};
  for (const [key, list] of Object.entries(w.services ?? {})) {
    const ports: Record<string, number> = {};
    for (const p of list.ports ?? []) ports[String(p.service_port ?? 0)] = p.target_port ?? 0;
    services[key] = ports;
  }
  const out: WorkloadInput = {
    uid: w.uid ?? '',
    name: w.name ?? '',
    namespace: w.namespace ?? '',
    workloadIps: (w.addresses ?? []).map((b, i) => ipFromBytes(b, `${f}.addresses[${i}]`)),
    hostname: w.hostname ?? '',
    network: w.network ?? '',
    node: w.node ?? '',
    clusterId: w.cluster_id ?? '',
    protocol: enumOf(w.tunnel_protocol, TUNNEL_PROTOCOLS, PROTOCOL, `${f}.tunnel_protocol`),
    networkMode: enumOf(w.network_mode, ['STANDARD', 'HOST_NETWORK'], NETWORK_MODE, `${f}.network_mode`),
    nativeTunnel: w.native_tunnel ?? false,
    canonicalName: w.canonical_name ?? '',
    canonicalRevision: w.canonical_revision ?? '',
    workloadName: w.workload_name ?? '',
    workloadType: enumOf(w.workload_type, WORKLOAD_TYPES, WORKLOAD_TYPE, `${f}.workload_type`),
    status: enumOf(w.status, ['HEALTHY', 'UNHEALTHY'], STATUS, `${f}.status`),
    services,
    authorizationPolicies: [...(w.authorization_policies ?? [])],
  };
  // Empty trust domain / service account mean the defaults; leaving them out lets validation fill them in.
  const td = nonEmpty(w.trust_domain);
  if (td) out.trustDomain = td;
  const sa = nonEmpty(w.service_account);
  if (sa) out.serviceAccount = sa;
  if (w.locality) out.locality = { region: w.locality.region ?? '', zone: w.locality.zone ?? '', subzone: w.locality.subzone ?? '' };
  if (w.waypoint) out.waypoint = gatewayAddress(w.waypoint, `${f}.waypoint`);
  if (w.network_gateway) out.networkGateway = gatewayAddress(w.network_gateway, `${f}.network_gateway`);
  if (w.application_tunnel) {
    const at = w.application_tunnel;
    out.applicationTunnel = {
      protocol: enumOf(at.protocol, ['NONE', 'PROXY'], APP_TUNNEL, `${f}.application_tunnel.protocol`),
      ...(at.port ? { port: at.port } : {}),
    };
  }
  // UInt32Value: absent means 1; present with no value is an explicit 0 (never picked).
  if (w.capacity) out.capacity = w.capacity.value ?? 0;
  return out;
}

export function convertService(s: PbService): ServiceInput {
  const f = 'service';
  const out: ServiceInput = {
    name: s.name ?? '',
    namespace: s.namespace ?? '',
    hostname: s.hostname ?? '',
    vips: (s.addresses ?? []).map((a, i) => networkAddress(a, `${f}.addresses[${i}]`)),
    // app_protocol is not modelled: ztunnel is L4 and does not use it either.
    ports: (s.ports ?? []).map((p): ServicePort => ({ servicePort: p.service_port ?? 0, targetPort: p.target_port ?? 0 })),
    subjectAltNames: [...(s.subject_alt_names ?? [])],
    ipFamilies: enumOf(s.ip_families, IP_FAMILIES_NAMES, IP_FAMILIES, `${f}.ip_families`),
    canonical: s.canonical ?? false,
  };
  if (s.waypoint) out.waypoint = gatewayAddress(s.waypoint, `${f}.waypoint`);
  if (s.load_balancing) {
    const lb = s.load_balancing;
    const loadBalancing: Partial<LoadBalancing> = {
      routingPreferences: (lb.routing_preference ?? []).map((p, i) => enumOf(p, LB_SCOPE_NAMES, LB_SCOPE, `${f}.load_balancing.routing_preference[${i}]`)),
      mode: enumOf(lb.mode, LB_MODE_NAMES, LB_MODE, `${f}.load_balancing.mode`),
      healthPolicy: enumOf(lb.health_policy, HEALTH_POLICY_NAMES, HEALTH_POLICY, `${f}.load_balancing.health_policy`),
    };
    out.loadBalancing = loadBalancing;
  }
  return out;
}

function stringMatch(m: PbStringMatch, field: string): StringMatch {
  if (typeof m.exact === 'string' && (m.match_type === undefined || m.match_type === 'exact')) return { exact: m.exact };
  if (typeof m.prefix === 'string' && (m.match_type === undefined || m.match_type === 'prefix')) return { prefix: m.prefix };
  if (typeof m.suffix === 'string' && (m.match_type === undefined || m.match_type === 'suffix')) return { suffix: m.suffix };
  if (m.presence) return { presence: true };
  throw new ConversionError(field, 'no match type (exact, prefix, suffix or presence) is set');
}

function ipPrefix(a: PbIpPrefix, field: string): string {
  const ip = ipFromBytes(a.address, `${field}.address`);
  const max = ip.includes(':') ? 128 : 32;
  const len = a.length ?? 0;
  if (len > max) throw new ConversionError(`${field}.length`, `${len} is longer than ${max}`);
  // Sent as-is: istiod always sets the length (32/128 for a single host), and 0 means "any address".
  return `${ip}/${len}`;
}

function authorizationMatch(m: PbMatch, field: string): AuthorizationMatch {
  const out: { -readonly [K in keyof AuthorizationMatch]: AuthorizationMatch[K] } = {};
  const strings = (v: PbStringMatch[] | undefined, name: string) => (v ?? []).map((x, i) => stringMatch(x, `${field}.${name}[${i}]`));
  const ips = (v: PbIpPrefix[] | undefined, name: string) => (v ?? []).map((x, i) => ipPrefix(x, `${field}.${name}[${i}]`));
  const sas = (v: PbMatch['service_accounts']) => (v ?? []).map((x) => ({ namespace: x.namespace ?? '', serviceAccount: x.serviceAccount ?? '' }));
  const set = <K extends keyof AuthorizationMatch>(k: K, v: NonNullable<AuthorizationMatch[K]>): void => {
    if ((v as readonly unknown[]).length > 0) out[k] = v;
  };
  set('namespaces', strings(m.namespaces, 'namespaces'));
  set('notNamespaces', strings(m.not_namespaces, 'not_namespaces'));
  set('principals', strings(m.principals, 'principals'));
  set('notPrincipals', strings(m.not_principals, 'not_principals'));
  set('sourceIps', ips(m.source_ips, 'source_ips'));
  set('notSourceIps', ips(m.not_source_ips, 'not_source_ips'));
  set('destinationIps', ips(m.destination_ips, 'destination_ips'));
  set('notDestinationIps', ips(m.not_destination_ips, 'not_destination_ips'));
  set('destinationPorts', [...(m.destination_ports ?? [])]);
  set('notDestinationPorts', [...(m.not_destination_ports ?? [])]);
  set('serviceAccounts', sas(m.service_accounts));
  set('notServiceAccounts', sas(m.not_service_accounts));
  return out;
}

export function convertAuthorization(a: PbAuthorization): AuthorizationInput {
  const f = 'authorization';
  // istiod's groups -> rules -> matches is the model's rules -> clauses -> matches.
  const rules: AuthorizationRule[] = (a.groups ?? []).map((g, gi) =>
    (g.rules ?? []).map((r, ri) => (r.matches ?? []).map((m, mi) => authorizationMatch(m, `${f}.groups[${gi}].rules[${ri}].matches[${mi}]`))),
  );
  return {
    name: a.name ?? '',
    namespace: a.namespace ?? '',
    scope: enumOf(a.scope, SCOPE_NAMES, SCOPE, `${f}.scope`),
    action: enumOf(a.action, ACTION_NAMES, ACTION, `${f}.action`),
    rules,
    dryRun: a.dry_run ?? false,
  };
}

export type ConvertedAddress = { kind: 'workload'; value: WorkloadInput } | { kind: 'service'; value: ServiceInput };

/** An Address is a Workload (named by uid) or a Service (named `<ns>/<hostname>`). */
export function convertAddress(a: PbAddress): ConvertedAddress {
  if (a.workload && a.type !== 'service') return { kind: 'workload', value: convertWorkload(a.workload) };
  if (a.service) return { kind: 'service', value: convertService(a.service) };
  throw new ConversionError('address', 'neither workload nor service is set');
}

/** One resource of a DeltaDiscoveryResponse after decoding its Any (or the reason it could not be decoded). */
export interface DecodedResource<T> {
  readonly name: string;
  readonly message?: T;
  readonly decodeError?: string;
}

/** The batch for the updater plus the names that made it into it (their versions become "held" once applied). */
export interface ConvertedResponse {
  readonly batch: DeltaBatch;
  /** Resource names converted without error (the updater may still reject some). */
  readonly converted: readonly string[];
}

function reject(kind: ResourceKind, name: string, what: string, message: string): Rejection {
  return { kind, name, message: `${what} "${name}": ${message}` };
}

/** Address resources (and removals) -> one updater batch; unconvertible resources come back as rejections. */
export function convertAddressResponse(resources: readonly DecodedResource<PbAddress>[], removed: readonly string[]): ConvertedResponse {
  const workloads: WorkloadInput[] = [];
  const services: ServiceInput[] = [];
  const rejected: Rejection[] = [];
  const converted: string[] = [];
  for (const r of resources) {
    const kind: ResourceKind = r.message?.service && r.message.type !== 'workload' ? 'service' : 'workload';
    if (!r.message) {
      rejected.push(reject(kind, r.name, 'Address', `cannot decode: ${r.decodeError ?? 'no resource'}`));
      continue;
    }
    try {
      const c = convertAddress(r.message);
      // Removals arrive by resource name, so the name must be the key the state uses (istiod's contract).
      const key = c.kind === 'workload' ? c.value.uid : keyOfService({ namespace: c.value.namespace ?? '', hostname: c.value.hostname ?? '' });
      if (key !== r.name) {
        const field = c.kind === 'workload' ? 'workload.uid' : 'service.namespace/hostname';
        throw new ConversionError(field, `${JSON.stringify(key)} does not match the resource name`);
      }
      if (c.kind === 'workload') workloads.push(c.value);
      else services.push(c.value);
      converted.push(r.name);
    } catch (err) {
      if (!(err instanceof ConversionError)) throw err;
      rejected.push(reject(kind, r.name, 'Address', err.message));
    }
  }
  return { batch: { workloads, services, removedAddresses: [...removed], rejected }, converted };
}

/** Authorization resources (and removals) -> one updater batch. */
export function convertAuthorizationResponse(resources: readonly DecodedResource<PbAuthorization>[], removed: readonly string[]): ConvertedResponse {
  const policies: AuthorizationInput[] = [];
  const rejected: Rejection[] = [];
  const converted: string[] = [];
  for (const r of resources) {
    if (!r.message) {
      rejected.push(reject('policy', r.name, 'Authorization', `cannot decode: ${r.decodeError ?? 'no resource'}`));
      continue;
    }
    try {
      const p = convertAuthorization(r.message);
      const key = keyOfPolicy({ namespace: p.namespace ?? '', name: p.name ?? '' });
      if (key !== r.name) throw new ConversionError('authorization.namespace/name', `${JSON.stringify(key)} does not match the resource name`);
      policies.push(p);
      converted.push(r.name);
    } catch (err) {
      if (!(err instanceof ConversionError)) throw err;
      rejected.push(reject('policy', r.name, 'Authorization', err.message));
    }
  }
  return { batch: { policies, removedPolicies: [...removed], rejected }, converted };
}
