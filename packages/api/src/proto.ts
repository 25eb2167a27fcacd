/**
 * Istio's wire protocols as seen from TypeScript: where our .proto files live, how both sides load them,
 * the type URLs, plain-object types for the resources, and encode/decode of `google.protobuf.Any`-wrapped
 * resources. The controller (server) and the node agent (client) both go through here so they agree on
 * field casing, enum and bytes representation.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * The proto directory of @ambit/api. Resolved from this module's location (dist/src/proto.js -> ../../proto)
 * so it works from any working directory and from any package that depends on @ambit/api.
 */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

export const PROTO_FILES = {
  workload: 'istio/workload/workload.proto',
  authorization: 'istio/security/authorization.proto',
  ca: 'istio/v1/auth/ca.proto',
  ads: 'envoy/service/discovery/v3/ads.proto',
} as const;

export const TYPE_URL_PREFIX = 'type.googleapis.com/';
export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';
/** Legacy: istiod still serves it, current ztunnel does not subscribe to it. */
export const WORKLOAD_TYPE_URL = 'type.googleapis.com/istio.workload.Workload';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_DELTA_METHOD = `/${ADS_SERVICE}/DeltaAggregatedResources`;
export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CA_CREATE_CERTIFICATE_METHOD = `/${CA_SERVICE}/CreateCertificate`;

/** gRPC metadata keys Istio's clients send to xDS and the CA. */
export const GRPC_METADATA = {
  authorization: 'authorization',
  clusterId: 'clusterid',
} as const;
/** Key in IstioCertificateRequest.metadata naming the SPIFFE identity a node agent asks for. */
export const IMPERSONATED_IDENTITY_KEY = 'ImpersonatedIdentity';

/**
 * One set of conversion options for proto-loader (gRPC messages) and protobufjs (Any payloads): field names
 * as in the .proto (snake_case, so they can be checked against Istio by eye), enums as their names, int64 as
 * JS numbers (only validity_duration, far below 2^53), bytes as Buffers, scalar defaults filled in.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const CONVERSION: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

// ---------------------------------------------------------------------------------------------------------
// Plain-object shapes of the messages (as produced by decode and by proto-loader with the options above).
// Encoders accept the same shapes with anything left out; enum fields also accept their numbers.

type Enum<T extends string> = T | number;

export type TunnelProtocol = 'NONE' | 'HBONE' | 'LEGACY_ISTIO_MTLS';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type WorkloadType = 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
export type NetworkMode = 'STANDARD' | 'HOST_NETWORK';
export type IpFamilies = 'AUTOMATIC' | 'IPV4_ONLY' | 'IPV6_ONLY' | 'DUAL';
export type AppProtocol = 'UNKNOWN' | 'HTTP11' | 'HTTP2' | 'GRPC';
export type ServiceVisibility = 'PUBLIC' | 'NAMESPACE';
export type LoadBalancingScope = 'UNSPECIFIED_SCOPE' | 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER' | 'NETWORK';
export type LoadBalancingMode = 'UNSPECIFIED_MODE' | 'STRICT' | 'FAILOVER' | 'PASSTHROUGH';
export type HealthPolicy = 'ONLY_HEALTHY' | 'ALLOW_ALL';
export type AuthorizationScope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type AuthorizationAction = 'ALLOW' | 'DENY';

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export interface NetworkAddress {
  network?: string;
  address?: Uint8Array;
  /** CIDR prefix length; absent for a single IP. */
  length?: number | null;
}
export interface NamespacedHostname {
  namespace?: string;
  hostname?: string;
}
export interface GatewayAddress {
  hostname?: NamespacedHostname | null;
  address?: NetworkAddress | null;
  hbone_mtls_port?: number;
  /** Which of hostname/address is set (decode only). */
  destination?: 'hostname' | 'address';
}
export interface Port {
  service_port?: number;
  target_port?: number;
  app_protocol?: Enum<AppProtocol>;
}
export interface PortList {
  ports?: Port[];
}
export interface Locality {
  region?: string;
  zone?: string;
  subzone?: string;
}
export interface ApplicationTunnel {
  protocol?: Enum<'NONE' | 'PROXY'>;
  port?: number;
}
export interface Extension {
  name?: string;
  config?: AnyMessage | null;
}
export interface LoadBalancing {
  routing_preference?: Enum<LoadBalancingScope>[];
  mode?: Enum<LoadBalancingMode>;
  health_policy?: Enum<HealthPolicy>;
}

export interface Workload {
  uid?: string;
  name?: string;
  namespace?: string;
  addresses?: Uint8Array[];
  hostname?: string;
  network?: string;
  tunnel_protocol?: Enum<TunnelProtocol>;
  trust_domain?: string;
  service_account?: string;
  waypoint?: GatewayAddress | null;
  network_gateway?: GatewayAddress | null;
  node?: string;
  canonical_name?: string;
  canonical_revision?: string;
  workload_type?: Enum<WorkloadType>;
  workload_name?: string;
  native_tunnel?: boolean;
  application_tunnel?: ApplicationTunnel | null;
  services?: Record<string, PortList>;
  authorization_policies?: string[];
  status?: Enum<WorkloadStatus>;
  cluster_id?: string;
  locality?: Locality | null;
  network_mode?: Enum<NetworkMode>;
  extensions?: Extension[];
  /** google.protobuf.UInt32Value; unset means 1. */
  capacity?: { value?: number } | null;
}

export interface Service {
  name?: string;
  namespace?: string;
  hostname?: string;
  addresses?: NetworkAddress[];
  ports?: Port[];
  subject_alt_names?: string[];
  waypoint?: GatewayAddress | null;
  load_balancing?: LoadBalancing | null;
  ip_families?: Enum<IpFamilies>;
  extensions?: Extension[];
  canonical?: boolean;
  ingress_use_waypoint?: boolean;
  visibility?: Enum<ServiceVisibility>;
}

/** The xDS resource behind ADDRESS_TYPE_URL: exactly one of workload/service. */
export interface Address {
  workload?: Workload | null;
  service?: Service | null;
  /** Which one is set (decode only). */
  type?: 'workload' | 'service';
}

export interface StringMatch {
  exact?: string;
  prefix?: string;
  suffix?: string;
  presence?: Record<string, never>;
  match_type?: 'exact' | 'prefix' | 'suffix' | 'presence';
}
export interface IpPrefix {
  address?: Uint8Array;
  length?: number;
}
export interface ServiceAccountMatch {
  namespace?: string;
  serviceAccount?: string;
}
export interface AuthorizationMatch {
  namespaces?: StringMatch[];
  not_namespaces?: StringMatch[];
  principals?: StringMatch[];
  not_principals?: StringMatch[];
  source_ips?: IpPrefix[];
  not_source_ips?: IpPrefix[];
  destination_ips?: IpPrefix[];
  not_destination_ips?: IpPrefix[];
  destination_ports?: number[];
  not_destination_ports?: number[];
  service_accounts?: ServiceAccountMatch[];
  not_service_accounts?: ServiceAccountMatch[];
}
export interface AuthorizationRules {
  matches?: AuthorizationMatch[];
}
export interface AuthorizationGroup {
  rules?: AuthorizationRules[];
}
/** The xDS resource behind AUTHORIZATION_TYPE_URL. */
export interface Authorization {
  name?: string;
  namespace?: string;
  scope?: Enum<AuthorizationScope>;
  action?: Enum<AuthorizationAction>;
  groups?: AuthorizationGroup[];
  dry_run?: boolean;
  extensions?: Extension[];
}

// Delta xDS messages as grpc-js hands them over with PROTO_LOADER_OPTIONS.
export interface RpcStatus {
  code?: number;
  message?: string;
  details?: AnyMessage[];
}
export interface XdsNode {
  id?: string;
  cluster?: string;
  /** google.protobuf.Struct ({fields: {KEY: {stringValue: ...}}}). */
  metadata?: StructMessage | null;
  user_agent_name?: string;
  user_agent_version?: string;
  client_features?: string[];
}
export interface DeltaDiscoveryRequest {
  node?: XdsNode | null;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: RpcStatus | null;
}
export interface XdsResource {
  version?: string;
  resource?: AnyMessage | null;
  name?: string;
  aliases?: string[];
}
export interface DeltaDiscoveryResponse {
  system_version_info?: string;
  resources?: XdsResource[];
  type_url?: string;
  nonce?: string;
  removed_resources?: string[];
}

/**
 * google.protobuf.Struct as proto-loader represents it. Its field names are camelCase even with keepCase,
 * because protobufjs supplies the well-known types from its own bundled (camelCase) descriptors.
 */
export interface StructMessage {
  fields?: Record<string, StructValue>;
}
export interface StructValue {
  nullValue?: 'NULL_VALUE' | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage | null;
  listValue?: { values?: StructValue[] } | null;
  /** Which of the above is set (decode only). */
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
}
export interface IstioCertificateRequest {
  csr?: string;
  validity_duration?: number;
  metadata?: StructMessage | null;
}
export interface IstioCertificateResponse {
  cert_chain?: string[];
}

/** Converts a plain JSON-like object to a Struct message (for the CA's metadata). */
export function toStruct(value: Record<string, unknown>): StructMessage {
  const toValue = (v: unknown): StructValue => {
    if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toValue(v)])) };
}

/** Reads one string field of a Struct; undefined when absent or not a string. */
export function structString(struct: StructMessage | null | undefined, key: string): string | undefined {
  const v = struct?.fields?.[key];
  // With defaults on, every member of the oneof is filled in; `kind` says which one was actually sent.
  return typeof v?.stringValue === 'string' && (v.kind === undefined || v.kind === 'stringValue') ? v.stringValue : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Loading.

let packageDefinition: protoLoader.PackageDefinition | undefined;
let root: protobuf.Root | undefined;

/** proto-loader's definition of every Ambit proto (cached; loading parses the files once per process). */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(Object.values(PROTO_FILES), PROTO_LOADER_OPTIONS);
  return packageDefinition;
}

export interface GrpcServices {
  /** Delta ADS service definition, for `server.addService`. */
  ads: grpc.ServiceDefinition;
  /** CA service definition, for `server.addService`. */
  ca: grpc.ServiceDefinition;
  /** Client constructors for `new AdsClient(address, credentials)` / `new CaClient(...)`. */
  AdsClient: grpc.ServiceClientConstructor;
  CaClient: grpc.ServiceClientConstructor;
}

export function loadGrpcServices(): GrpcServices {
  const def = loadPackageDefinition();
  const loaded = grpc.loadPackageDefinition(def);
  const lookup = (name: string): grpc.ServiceClientConstructor => {
    let node: unknown = loaded;
    for (const part of name.split('.')) node = (node as Record<string, unknown>)[part];
    if (typeof node !== 'function') throw new Error(`gRPC service ${name} not found in ${PROTO_DIR}`);
    return node as grpc.ServiceClientConstructor;
  };
  const AdsClient = lookup(ADS_SERVICE);
  const CaClient = lookup(CA_SERVICE);
  return { ads: AdsClient.service, ca: CaClient.service, AdsClient, CaClient };
}

/** A protobufjs Root with the resource protos, for encoding what travels inside `Any`. */
export function loadProtoRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  // Our imports are relative to PROTO_DIR; google/protobuf/* come from protobufjs's bundled copies.
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
  r.loadSync([PROTO_FILES.workload, PROTO_FILES.authorization], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

function typeFor(typeUrl: string): protobuf.Type {
  if (!typeUrl.startsWith(TYPE_URL_PREFIX)) throw new Error(`type URL ${typeUrl} does not start with ${TYPE_URL_PREFIX}`);
  return loadProtoRoot().lookupType(typeUrl.slice(TYPE_URL_PREFIX.length));
}

/** Encodes a plain object as the message type named by `typeUrl` (enums by name or number). */
export function encodeMessage(typeUrl: string, message: object): Buffer {
  const type = typeFor(typeUrl);
  return Buffer.from(type.encode(type.fromObject(message as Record<string, unknown>)).finish());
}

export function decodeMessage<T>(typeUrl: string, bytes: Uint8Array): T {
  const type = typeFor(typeUrl);
  return type.toObject(type.decode(bytes), CONVERSION) as T;
}

export function encodeAny(typeUrl: string, message: object): AnyMessage {
  return { type_url: typeUrl, value: encodeMessage(typeUrl, message) };
}

export function decodeAny<T>(any: AnyMessage): T {
  return decodeMessage<T>(any.type_url, any.value);
}

export const encodeAddress = (address: Address): Buffer => encodeMessage(ADDRESS_TYPE_URL, address);
export const decodeAddress = (bytes: Uint8Array): Address => decodeMessage<Address>(ADDRESS_TYPE_URL, bytes);
export const encodeAuthorization = (authz: Authorization): Buffer => encodeMessage(AUTHORIZATION_TYPE_URL, authz);
export const decodeAuthorization = (bytes: Uint8Array): Authorization => decodeMessage<Authorization>(AUTHORIZATION_TYPE_URL, bytes);
