// Public surface of @ambit/ztunnel (state, policy and local-config layers so far).
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
