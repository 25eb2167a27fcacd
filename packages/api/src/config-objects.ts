// The contract for Kubernetes/Istio configuration objects as they travel through Ambit: the controller's informers
// and the embedded YAML source hold them in this shape, the controller validates them, and the L7 kinds reach the
// waypoint over the same delta xDS stream as `istio.workload.Address`, under Ambit's own type URL, one resource per
// object, the value being the object's JSON (apiVersion, kind, metadata, spec). The waypoint compiles them itself.

/** A Kubernetes object as JSON (what the API server returns, or a YAML document a user wrote). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObjectMeta;
  spec?: any;
  status?: any;
  [key: string]: unknown;
}

export interface KubeObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  [key: string]: unknown;
}

/** Every kind the controller watches, with its API group/version and plural (for watches and RBAC). */
export const WATCHED_KINDS = {
  Namespace: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  Pod: { group: '', version: 'v1', plural: 'pods', namespaced: true },
  Service: { group: '', version: 'v1', plural: 'services', namespaced: true },
  EndpointSlice: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true },
  ServiceEntry: { group: 'networking.istio.io', version: 'v1', plural: 'serviceentries', namespaced: true },
  WorkloadEntry: { group: 'networking.istio.io', version: 'v1', plural: 'workloadentries', namespaced: true },
  VirtualService: { group: 'networking.istio.io', version: 'v1', plural: 'virtualservices', namespaced: true },
  DestinationRule: { group: 'networking.istio.io', version: 'v1', plural: 'destinationrules', namespaced: true },
  AuthorizationPolicy: { group: 'security.istio.io', version: 'v1', plural: 'authorizationpolicies', namespaced: true },
  PeerAuthentication: { group: 'security.istio.io', version: 'v1', plural: 'peerauthentications', namespaced: true },
  RequestAuthentication: { group: 'security.istio.io', version: 'v1', plural: 'requestauthentications', namespaced: true },
  Telemetry: { group: 'telemetry.istio.io', version: 'v1', plural: 'telemetries', namespaced: true },
  GatewayClass: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gatewayclasses', namespaced: false },
  Gateway: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', namespaced: true },
  HTTPRoute: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', namespaced: true },
  GRPCRoute: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'grpcroutes', namespaced: true },
} as const;
export type WatchedKind = keyof typeof WATCHED_KINDS;

export function isWatchedKind(kind: string | undefined): kind is WatchedKind {
  return kind !== undefined && Object.prototype.hasOwnProperty.call(WATCHED_KINDS, kind);
}

/** apiVersion string of a watched kind ("v1", "networking.istio.io/v1"). */
export function apiVersionOf(kind: WatchedKind): string {
  const k = WATCHED_KINDS[kind];
  return k.group ? `${k.group}/${k.version}` : k.version;
}

/**
 * Type URL of the configuration objects the waypoint receives. Not a protobuf message: `Any.value` holds the
 * object's UTF-8 JSON (status dropped). Kinds sent: WAYPOINT_CONFIG_KINDS.
 */
export const CONFIG_OBJECT_TYPE_URL = 'type.ambit.io/ambit.config.v1.KubernetesObject';

/** Kinds the waypoint compiles (routing, destination policy, L7 authorization, authentication, telemetry). */
export const L7_CONFIG_KINDS = [
  'VirtualService', 'DestinationRule', 'ServiceEntry', 'HTTPRoute', 'GRPCRoute', 'Gateway',
  'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry',
] as const satisfies readonly WatchedKind[];
export type L7ConfigKind = (typeof L7_CONFIG_KINDS)[number];

/**
 * Kinds a waypoint receives: the L7 kinds, plus the view of each Service that declares an opaque port protocol
 * (protocols.ts waypointServiceView: name and ports only, so that the waypoint skips detection on those ports).
 */
export const WAYPOINT_CONFIG_KINDS = [...L7_CONFIG_KINDS, 'Service'] as const satisfies readonly WatchedKind[];
export type WaypointConfigKind = (typeof WAYPOINT_CONFIG_KINDS)[number];

/** xDS resource name of a configuration object: `<Kind>/<namespace>/<name>` (cluster-scoped: `<Kind>//<name>`). */
export function configObjectName(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  return `${obj.kind ?? ''}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

/** Inverse of configObjectName; undefined when the name has the wrong shape. */
export function parseConfigObjectName(name: string): { kind: string; namespace: string; name: string } | undefined {
  const m = /^([A-Za-z]+)\/([^/]*)\/([^/]+)$/.exec(name);
  return m ? { kind: m[1]!, namespace: m[2]!, name: m[3]! } : undefined;
}

/** `kind namespace/name`, the way our logs and errors name an object. */
export function describeObject(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  const ns = obj.metadata.namespace;
  return `${obj.kind ?? 'object'} ${ns ? `${ns}/` : ''}${obj.metadata.name}`;
}

export function encodeConfigObject(obj: KubeObject): Uint8Array {
  const { status: _status, ...rest } = obj;
  return new TextEncoder().encode(JSON.stringify(rest));
}

export function decodeConfigObject(value: Uint8Array): KubeObject {
  const parsed = JSON.parse(new TextDecoder().decode(value)) as unknown;
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as KubeObject).metadata?.name !== 'string') {
    throw new Error('configuration object without metadata.name');
  }
  return parsed as KubeObject;
}
