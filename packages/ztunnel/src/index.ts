// Public surface of @ambit/ztunnel: state, policy, discovery, telemetry, admin, enrollment, proxy and the app.
export type {
  Workload, WorkloadInput, Service, ServiceInput, ServicePort, Authorization, AuthorizationInput, AuthorizationMatch,
  AuthorizationRule, AuthorizationClause, AuthorizationScope, AuthorizationAction, StringMatch, ServiceAccountMatch,
  GatewayAddress, GatewayDestination, NetworkAddress, NamespacedHostname, ApplicationTunnel, Locality, PortMap,
  Protocol, HealthStatus, NetworkMode, LoadBalancing, LoadBalancingMode, LoadBalancingScope, LoadBalancingHealthPolicy,
  IpFamilies, ResourceKind,
} from './state/types.js';
export { keyOfService, keyOfPolicy, isNetworkAddress } from './state/types.js';
export { canonicalizeIp, parseCidr } from './state/ip.js';
export { createStateStore, type ProxyState, type StateStore, type StateChange, type StateListener, type StateStoreOptions } from './state/store.js';
export { pickEndpoint, type Endpoint, type EndpointChoice, type PickEndpointOptions } from './state/endpoint-picker.js';
export {
  createStateUpdater, type StateUpdater, type StateUpdaterOptions, type DeltaBatch, type Snapshot, type ApplyResult, type Rejection,
} from './state/updater.js';
export { authorize, matchesPolicy, type ConnectionFacts, type AuthorizationDecision } from './policy/authorize.js';
export {
  checkPeerAuthentication, createStaticStrictPolicy, peerAuthenticationModeOf, STATIC_STRICT_POLICY_NAME,
  PORT_LEVEL_PEER_AUTHENTICATION_PREFIX, type PeerAuthenticationMode, type PeerAuthenticationDecision,
} from './policy/peer-authentication.js';
export {
  parseLocalConfig, applyLocalConfigText, loadLocalConfig, watchLocalConfig, type LocalConfigLoadResult,
  type LocalConfigRejection, type LocalConfigWatcher, type LocalConfigWatcherOptions, type LocalConfigLogger,
} from './discovery/local-config.js';
export { createConnectionMetrics, deriveTrafficLabels, LOCALITY_LABELS, type ConnectionMetrics, type ConnectionMetricsOptions, type TrafficFacts, type TrafficLabels, type WorkloadFacts, type ServiceFacts, type Reporter, type ResponseFlag, type SecurityPolicy } from './telemetry/metrics.js';
export { createConnectionTelemetry, ConnectionResult, type ConnectionTelemetry, type ConnectionTelemetryOptions, type ConnectionOpenFacts, type SourceFacts, type DestinationFacts, type ConnectionOutcome, type Denial, type EarlyDenyFacts, type Direction } from './telemetry/connection-result.js';
export { createLogLevels, parseLogDirectives, LogLevelError, type LogLevels, type LogLevelsOptions, type LogLevelName } from './telemetry/log-levels.js';
export { createReadiness, type Readiness } from './admin/readiness.js';
export { buildConfigDump, describeCertificate, describeCertifiedKey, redactSecrets, type CertificateInfo, type CertificateDetail, type ConfigDumpSources } from './admin/config-dump.js';
export { createAdminServers, createAdminHandler, createMetricsHandler, createReadinessHandler, parseListenAddress, DEFAULT_ADMIN_ADDRESSES, AdminListenError, type AdminServers, type AdminServersOptions, type AdminAddresses, type BoundAddress } from './admin/servers.js';
export { createEnrollmentServer, type EnrollmentServer, type EnrollmentServerOptions } from './inpod/enrollment-api.js';
export { DEFAULT_CNI_SOCKET_PATH, DEFAULT_POD_SNAPSHOT_PATH, PODS_PATH, type PodSpec, type CaptureOutcome, type AddPodResponse, type DeletePodResponse, type PodStatus, type ListPodsResponse, type ErrorResponse } from './inpod/enrollment-contract.js';
export { EnrollmentError, validatePodSpec, type PodCapturer } from './inpod/pod-spec.js';
export { createPodEnrollment, type PodEnrollment, type PodEnrollmentOptions, type RestoreReport } from './inpod/pod-enrollment.js';
export { createPodRegistry, type PodRegistry, type PodRegistryOptions, type PodRecord } from './inpod/pod-registry.js';
export { createAgentClient, AgentCallError, type AgentClient } from './cni/agent-client.js';
export { loadConfig, type Config } from './config/load.js';
export { ENV } from './config/env.js';
export { SecretManager, createLocalCaClient, type CaClient, type CertificateInfo as SecretInfo } from './identity/secret-manager.js';
export { planOutbound, identityOf, type OutboundPlan, type PlanInput } from './proxy/outbound-plan.js';
export { PodManager, type PodManagerOptions } from './proxy/pod-manager.js';
export { createApp, type App, type Runtime } from './app.js';
export { createXdsClient, buildXdsNode, XDS_TYPE_URLS, type XdsClient, type XdsClientOptions, type XdsClientStatus, type XdsNodeIdentity, type XdsTerminationReason } from './discovery/xds-client.js';
export { convertWorkload, convertService, convertAuthorization, convertAddress, convertAddressResponse, convertAuthorizationResponse, ipFromBytes, ConversionError, type ConvertedAddress, type ConvertedResponse, type DecodedResource } from './discovery/xds-convert.js';
export { createConfiguredCaClient, createGrpcCaClient, readAuthToken, buildCallMetadata, createChannelCredentials, type GrpcCaClient, type GrpcCaClientOptions, type CaSettings } from './identity/ca-client.js';
export { parseGrpcTarget, type GrpcTarget, type AuthTokenSource } from './config/load.js';
export { decideAmbient, isPodTerminal, podIpsOf, type AmbientDecision, type PodFacts } from './k8s/ambient-selection.js';
export { createAmbientEnrollment, type AmbientEnrollment, type AmbientEnrollmentOptions } from './k8s/ambient-enrollment.js';
export { createKubeConfig, createNodeAgentApi, type NodeAgentApi } from './k8s/kube-client.js';
export { createNetnsFinder, type NetnsFinder, type NetnsFinderOptions } from './k8s/netns-finder.js';
export { type KubernetesConnection, type KubernetesSettings } from './config/load.js';
