/**
 * Typed models of what the node agent knows: Workloads, Services and Authorizations.
 *
 * Field names follow ztunnel's internal camelCase model, the one its local config YAML and `/config_dump` use
 * (spec §3.3–3.6), so a config dump of ours reads like theirs. Where the brief asked for proto-shaped fields
 * (Service `vips`/`ports` as lists of objects) we keep those and the local-config loader converts ztunnel's
 * compact forms (`"net/ip"`, `{80: 8080}`).
 *
 * Two flavours of each model:
 * - `*Input`: what discovery hands to the updater (most fields optional, unvalidated);
 * - the plain name (`Workload`, ...): validated, defaults filled in, frozen. Only these are visible through the
 *   read API.
 */

export type Protocol = 'HBONE' | 'TCP';
export type HealthStatus = 'Healthy' | 'Unhealthy';
export type NetworkMode = 'Standard' | 'HostNetwork';
export type ApplicationTunnelProtocol = 'NONE' | 'PROXY';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** `<namespace>/<hostname>` in text form. */
export interface NamespacedHostname {
  readonly namespace: string;
  readonly hostname: string;
}

/** `<network>/<ip>` in text form; the empty network is the default network. */
export interface NetworkAddress {
  readonly network: string;
  readonly address: string;
}

/** Where a waypoint or network gateway lives: a hostname (usually a Service) or a network address. */
export type GatewayDestination = NamespacedHostname | NetworkAddress;

export interface GatewayAddress {
  readonly destination: GatewayDestination;
  /** Normally 15008. */
  readonly hboneMtlsPort: number;
}

export interface ApplicationTunnel {
  readonly protocol: ApplicationTunnelProtocol;
  readonly port?: number;
}

/** servicePort -> targetPort. A targetPort of 0 means "not set here". */
export type PortMap = { readonly [servicePort: number]: number };

export interface Workload {
  /** Primary key (xDS resource name), e.g. `Kubernetes//Pod/default/sleep-5f8b`. */
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  /** Empty in xDS means `cluster.local`; always filled here. */
  readonly trustDomain: string;
  /** Empty in xDS means `default`; always filled here. */
  readonly serviceAccount: string;
  /** Canonical text form (IPv6 compressed, IPv4-mapped IPv6 unwrapped). */
  readonly workloadIps: readonly string[];
  /** For DNS-backed ServiceEntry workloads. */
  readonly hostname: string;
  readonly network: string;
  readonly node: string;
  readonly clusterId: string;
  readonly locality: Locality;
  /** How to reach the workload: HBONE to ip:15008, or plain TCP. */
  readonly protocol: Protocol;
  readonly networkMode: NetworkMode;
  readonly waypoint?: GatewayAddress;
  readonly networkGateway?: GatewayAddress;
  readonly nativeTunnel: boolean;
  readonly applicationTunnel?: ApplicationTunnel;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly workloadName: string;
  /** `deployment`, `cronjob`, `pod` or `job` (lower case, as ztunnel keeps it). */
  readonly workloadType: string;
  readonly status: HealthStatus;
  /** Load-balancing weight; default 1; 0 means never picked. */
  readonly capacity: number;
  /** `"<ns>/<hostname>"` -> servicePort -> targetPort for this endpoint. */
  readonly services: { readonly [namespacedHostname: string]: PortMap };
  /** `"<ns>/<name>"` of the WORKLOAD_SELECTOR-scoped policies that select this workload. */
  readonly authorizationPolicies: readonly string[];
}

export interface ServicePort {
  readonly servicePort: number;
  /** 0: not set on the service (named port); resolved per endpoint, else the service port itself. */
  readonly targetPort: number;
}

export type LoadBalancingScope = 'Network' | 'Region' | 'Zone' | 'Subzone' | 'Node' | 'Cluster';
/** `Standard` = no locality preference (proto UNSPECIFIED_MODE). */
export type LoadBalancingMode = 'Standard' | 'Strict' | 'Failover' | 'Passthrough';
export type LoadBalancingHealthPolicy = 'OnlyHealthy' | 'AllowAll';

export interface LoadBalancing {
  readonly routingPreferences: readonly LoadBalancingScope[];
  readonly mode: LoadBalancingMode;
  readonly healthPolicy: LoadBalancingHealthPolicy;
}

export type IpFamilies = 'Automatic' | 'IPv4Only' | 'IPv6Only' | 'Dual';

export interface Service {
  readonly name: string;
  readonly namespace: string;
  /** FQDN, e.g. `echo.default.svc.cluster.local`. */
  readonly hostname: string;
  /** Empty for headless services. */
  readonly vips: readonly NetworkAddress[];
  readonly ports: readonly ServicePort[];
  readonly subjectAltNames: readonly string[];
  readonly waypoint?: GatewayAddress;
  readonly loadBalancing?: LoadBalancing;
  readonly ipFamilies: IpFamilies;
  /** Wins hostname lookups outside the client's namespace. */
  readonly canonical: boolean;
}

export type AuthorizationScope = 'Global' | 'Namespace' | 'WorkloadSelector';
export type AuthorizationAction = 'Allow' | 'Deny';

/** One of exact / prefix / suffix / presence (non-empty). */
export type StringMatch =
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly suffix: string }
  | { readonly presence: true };

export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/**
 * One match: the fields set are ANDed, values within a field are ORed, `not*` fields must not match.
 * A match with no field set never matches.
 */
export interface AuthorizationMatch {
  readonly namespaces?: readonly StringMatch[];
  readonly notNamespaces?: readonly StringMatch[];
  readonly principals?: readonly StringMatch[];
  readonly notPrincipals?: readonly StringMatch[];
  readonly serviceAccounts?: readonly ServiceAccountMatch[];
  readonly notServiceAccounts?: readonly ServiceAccountMatch[];
  /** CIDRs (`10.0.0.0/8`, `fd00::/64`); a bare IP means a single host. */
  readonly sourceIps?: readonly string[];
  readonly notSourceIps?: readonly string[];
  readonly destinationIps?: readonly string[];
  readonly notDestinationIps?: readonly string[];
  readonly destinationPorts?: readonly number[];
  readonly notDestinationPorts?: readonly number[];
}

/** Clause = list of matches (ORed); one clause per from/to/when of the AuthorizationPolicy rule. */
export type AuthorizationClause = readonly AuthorizationMatch[];
/** Rule ("group" in istiod's proto) = list of clauses (ANDed). */
export type AuthorizationRule = readonly AuthorizationClause[];

export interface Authorization {
  readonly name: string;
  readonly namespace: string;
  readonly scope: AuthorizationScope;
  readonly action: AuthorizationAction;
  /** Rules are ORed. No rules: the policy matches nothing. */
  readonly rules: readonly AuthorizationRule[];
  readonly dryRun: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs: what discovery hands to the updater. Anything may be wrong here; the updater validates.

type Mutable<T> = { -readonly [K in keyof T]?: T[K] extends readonly (infer U)[] ? U[] : T[K] };

export type WorkloadInput = Mutable<Omit<Workload, 'locality' | 'services'>> & {
  locality?: Partial<Locality>;
  services?: { [namespacedHostname: string]: { [servicePort: string]: number } };
};

export type ServiceInput = Mutable<Omit<Service, 'loadBalancing'>> & {
  loadBalancing?: Partial<LoadBalancing>;
};

export type AuthorizationInput = Mutable<Authorization>;

/** Kinds of entries, as named in rejections and change events. */
export type ResourceKind = 'workload' | 'service' | 'policy';

/** Key of each kind (the xDS resource name): workload uid, service `ns/hostname`, policy `ns/name`. */
export function keyOfService(s: { namespace: string; hostname: string }): string {
  return `${s.namespace}/${s.hostname}`;
}
export function keyOfPolicy(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}
export function isNetworkAddress(d: GatewayDestination): d is NetworkAddress {
  return 'address' in d;
}
