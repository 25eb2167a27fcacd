export { createResourceStore } from './xds/resource-store.js';
export type { ChangeListener, ChangeSet, ResourceStore, ResourceTypes, StoredResource, TypeUrl, UpsertOptions } from './xds/resource-store.js';
export { createXdsServer } from './xds/xds-server.js';
export type { NackRecord, XdsConnectionStatus, XdsServer, XdsServerOptions, XdsTypeStatus } from './xds/xds-server.js';
export { formatNetworkAlias } from './xds/names.js';
export { ipStringify, ipToBytes } from './xds/ip.js';
export { createCaService, DEFAULT_TRUSTED_NODE_ACCOUNTS } from './ca/ca-server.js';
export type { CaService, CaServiceOptions, PodIdentity } from './ca/ca-server.js';
export { ANONYMOUS, authenticateCall, formatCaller, grpcError } from './auth/caller.js';
export type { Authenticator, CallerIdentity, GrpcStatusError } from './auth/caller.js';
export { issueServingCertificate, startControlPlaneServer } from './control-plane-server.js';
export type { ControlPlaneServer, ControlPlaneServerOptions, GrpcServiceBinding, ServingCertificateOptions } from './control-plane-server.js';
export { loadSettings, ENV, DEFAULT_LEASE_NAME, DEFAULT_MONITORING_PORT, DEFAULT_WAYPOINT_IMAGE, LOG_LEVELS } from './settings/index.js';
export type { EmbeddedSettings, KubernetesConnection, LeaderElectionSettings, LogLevel, Settings } from './settings/index.js';
export { createKubeRest, loadKubeConfig, KubeApiError } from './k8s/kube-rest.js';
export type { KubeRest, WatchEvent } from './k8s/kube-rest.js';
export { collectionPath, objectPath, RESOURCES, type ResourceType } from './k8s/resources.js';
export { createReflector, type Reflector, type ReflectorOptions, type ReflectorStatus } from './k8s/reflector.js';
export { createInformers, type Informers, type InformersOptions } from './k8s/informers.js';
export { createWorkQueue, type WorkQueue, type WorkQueueOptions, type WorkQueueStats } from './k8s/work-queue.js';
export { createDispatcher, objectKey, type Dispatcher, type DispatcherOptions } from './k8s/dispatcher.js';
export type { ConfigForwarderLike, ObjectChangeListener, ObjectIndexLike, TranslatorLike } from './k8s/contracts.js';
export { createTokenReviewAuthenticator, ISTIO_CA_AUDIENCE, type TokenReviewAuthenticatorOptions } from './k8s/token-review.js';
export { loadOrCreateCaSecret, CA_SECRET_NAME, CA_SECRET_TYPE, CA_CERT_KEY, CA_KEY_KEY } from './ca-root/ca-secret.js';
export { createRootCertPublisher, type RootCertPublisher, type RootCertPublisherOptions } from './ca-root/root-cert-publisher.js';
export { createPodLookup, type PodLookup } from './ca-root/pod-lookup.js';
export { createLeaderElector, type LeaderElector, type LeaderElectorOptions, type LeaderStatus } from './leader/leader-elector.js';
export { createStatusWriter, type ObjectStatusReport, type StatusWriter, type StatusWriterOptions } from './status/status-writer.js';
export { createControllerMetrics, metricType, type ControllerMetrics } from './status/metrics.js';
export { createReadiness, type Readiness } from './status/readiness.js';
export { startMonitoringServer, syncz, type MonitoringServer, type MonitoringServerOptions } from './status/monitoring-server.js';
export { createDirectorySource, parseConfigFile, type DirectorySource, type DirectorySourceOptions } from './embedded/directory-source.js';
export { loadEmbeddedCa } from './embedded/embedded-ca.js';
export { loopbackAuthenticator } from './embedded/loopback-authenticator.js';
export { createApp, type App, type AppOptions } from './app.js';
export * from './waypoints/index.js';
export {
  createConfigForwarder, isL7ConfigKind, VALIDATION_CONDITION_TYPE,
  type ConfigForwarder, type ConfigForwarderOptions, type ConfigObjectRef, type ConfigStatus, type ForwardResult,
  type ValidationCondition, type ValidationMessage,
} from './forward/config-forwarder.js';
