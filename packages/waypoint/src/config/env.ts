// Every environment variable the waypoint reads, named once. Istio's (and the node agent's) names where the
// concept is theirs; AMBIT_* for our own knobs.
export const ENV = Object.freeze({
  trustDomain: 'TRUST_DOMAIN',
  clusterId: 'CLUSTER_ID',
  istioMetaClusterId: 'ISTIO_META_CLUSTER_ID',
  network: 'NETWORK',
  podName: 'POD_NAME',
  podNamespace: 'POD_NAMESPACE',
  instanceIp: 'INSTANCE_IP',
  nodeName: 'NODE_NAME',
  serviceAccount: 'SERVICE_ACCOUNT',
  gatewayName: 'GATEWAY_NAME',
  xdsAddress: 'XDS_ADDRESS',
  caAddress: 'CA_ADDRESS',
  xdsRootCa: 'XDS_ROOT_CA',
  caRootCa: 'CA_ROOT_CA',
  altCaHostname: 'ALT_CA_HOSTNAME',
  authToken: 'AUTH_TOKEN',
  secretTtl: 'SECRET_TTL',
  logLevel: 'LOG_LEVEL',
  /** Local mode: workloads and services in ztunnel's local-config YAML (as the agent reads it). */
  localXdsPath: 'LOCAL_XDS_PATH',
  /** Local mode: a YAML file, or a directory of YAML files, of configuration objects (VirtualService, HTTPRoute, ...). */
  localConfigPath: 'AMBIT_LOCAL_CONFIG_PATH',
  localCaCert: 'AMBIT_LOCAL_CA_CERT',
  localCaKey: 'AMBIT_LOCAL_CA_KEY',
  hboneAddress: 'AMBIT_HBONE_ADDRESS',
  upstreamHbonePort: 'AMBIT_UPSTREAM_HBONE_PORT',
  adminAddress: 'AMBIT_ADMIN_ADDRESS',
  metricsAddress: 'AMBIT_METRICS_ADDRESS',
  readinessAddress: 'AMBIT_READINESS_ADDRESS',
  drainTimeout: 'AMBIT_DRAIN_TIMEOUT_SECONDS',
  domainSuffix: 'AMBIT_DOMAIN_SUFFIX',
  plugins: 'AMBIT_WAYPOINT_PLUGINS',
  maxRequestHeadersKb: 'AMBIT_MAX_REQUEST_HEADERS_KB',
  maxBufferedBodyBytes: 'AMBIT_MAX_BUFFERED_BODY_BYTES',
  protocolDetectionTimeout: 'AMBIT_PROTOCOL_DETECTION_TIMEOUT_MS',
  idleTimeout: 'AMBIT_HTTP_IDLE_TIMEOUT_MS',
  connectTimeout: 'AMBIT_CONNECT_TIMEOUT_MS',
  /**
   * Tracing providers by name, as Istio's meshConfig.extensionProviders (JSON):
   * `{"zipkin": {"zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411}}}`.
   */
  tracingProviders: 'AMBIT_TRACING_PROVIDERS',
  /** meshConfig.defaultProviders.tracing: comma-separated provider names used without a Telemetry naming one. */
  tracingDefaultProviders: 'AMBIT_TRACING_DEFAULT_PROVIDERS',
  /** meshConfig.defaultConfig.tracing.sampling: 0..100, default 1. */
  tracingSampling: 'AMBIT_TRACING_SAMPLING',
} as const);

/** Prefixes of variable families (Istio's names). */
export const ENV_PREFIX = Object.freeze({
  xdsHeader: 'XDS_HEADER_',
  caHeader: 'CA_HEADER_',
  istioMeta: 'ISTIO_META_',
} as const);

/** Istio's mount points in a waypoint pod; resolved through mountedPath() (AMBIT_MOUNTS in the cluster-in-a-box). */
export const DEFAULT_ROOT_CA_PATH = '/var/run/secrets/istio/root-cert.pem';
export const DEFAULT_AUTH_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
