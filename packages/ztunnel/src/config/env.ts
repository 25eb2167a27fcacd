// Every environment variable the agent reads, named once. Istio's names where the concept is Istio's.
export const ENV = Object.freeze({
  trustDomain: 'TRUST_DOMAIN',
  clusterId: 'CLUSTER_ID',
  network: 'NETWORK',
  nodeName: 'NODE_NAME',
  podNamespace: 'POD_NAMESPACE',
  serviceAccount: 'SERVICE_ACCOUNT',
  localXdsPath: 'LOCAL_XDS_PATH',
  xdsAddress: 'XDS_ADDRESS',
  caAddress: 'CA_ADDRESS',
  xdsRootCa: 'XDS_ROOT_CA',
  caRootCa: 'CA_ROOT_CA',
  altCaHostname: 'ALT_CA_HOSTNAME',
  authToken: 'AUTH_TOKEN',
  xdsOnDemand: 'XDS_ON_DEMAND',
  istioMetaClusterId: 'ISTIO_META_CLUSTER_ID',
  instanceIp: 'INSTANCE_IP',
  podName: 'POD_NAME',
  localCaCert: 'AMBIT_LOCAL_CA_CERT',
  localCaKey: 'AMBIT_LOCAL_CA_KEY',
  secretTtl: 'SECRET_TTL',
  adminAddress: 'AMBIT_ADMIN_ADDRESS',
  metricsAddress: 'AMBIT_METRICS_ADDRESS',
  readinessAddress: 'AMBIT_READINESS_ADDRESS',
  cniSocket: 'AMBIT_CNI_SOCKET',
  podSnapshot: 'AMBIT_POD_SNAPSHOT',
  drainTimeout: 'AMBIT_DRAIN_TIMEOUT_SECONDS',
  ruleCheckInterval: 'AMBIT_RULE_CHECK_INTERVAL_SECONDS',
  enableOrigSrc: 'ENABLE_ORIG_SRC',
  dnsCapture: 'AMBIT_DNS_CAPTURE',
  probeSnatIpv4: 'HOST_PROBE_SNAT_ADDRESS',
  poolMaxStreams: 'POOL_MAX_STREAMS_PER_CONNECTION',
  poolUnusedRelease: 'POOL_UNUSED_RELEASE_TIMEOUT',
  http2KeepaliveInterval: 'AMBIT_HTTP2_KEEPALIVE_INTERVAL_MS',
  http2KeepaliveTimeout: 'AMBIT_HTTP2_KEEPALIVE_TIMEOUT_MS',
  connectTimeout: 'AMBIT_CONNECT_TIMEOUT_MS',
  logLevel: 'LOG_LEVEL',
  rootNamespace: 'AMBIT_ROOT_NAMESPACE',
  /**
   * Kubernetes mode (true/false): watch this node's Pods and all Namespaces, decide CNI ADDs from their labels,
   * capture running pods that become ambient, release pods that stop being ambient, annotate captured pods.
   * Default: on when KUBECONFIG is set or the agent runs in a pod (KUBERNETES_SERVICE_HOST/PORT); NODE_NAME is then
   * required. Off, every pod the CNI plugin sends is captured (the plugin's own excludeNamespaces still apply).
   */
  kubernetesWatch: 'AMBIT_KUBERNETES_WATCH',
  /** Kubeconfig file (first of a colon-separated list); without it, the in-cluster service account is used. */
  kubeconfig: 'KUBECONFIG',
  /** The host's /proc, scanned for the netns of running pods (a DaemonSet mounts it at /host/proc). */
  hostProc: 'AMBIT_HOST_PROC',
  /** The host's named network namespaces (a DaemonSet mounts /var/run/netns at /host/var/run/netns). */
  hostNetnsDir: 'AMBIT_HOST_NETNS_DIR',
  /**
   * Install the chained CNI plugin on this node (true/false, default false), as istio-cni's install-cni: the
   * executable into AMBIT_CNI_BIN_DIR, an `ambit-cni` entry appended to the primary conflist in AMBIT_CNI_CONF_DIR
   * (a single .conf is converted to a .conflist), kept there while the agent runs, taken out on uninstall.
   */
  cniInstall: 'AMBIT_CNI_INSTALL',
  /** The node's /etc/cni/net.d as mounted in the agent (default /host/etc/cni/net.d; through AMBIT_MOUNTS). */
  cniConfDir: 'AMBIT_CNI_CONF_DIR',
  /** The node's /opt/cni/bin as mounted in the agent (default /host/opt/cni/bin; through AMBIT_MOUNTS). */
  cniBinDir: 'AMBIT_CNI_BIN_DIR',
  /**
   * On SIGTERM: auto (default; remove the plugin only when the agent's DaemonSet is gone or being deleted, as
   * istio-cni), true (remove), false (never). Never while another agent serves the enrollment socket.
   */
  cniUninstallOnExit: 'AMBIT_CNI_UNINSTALL_ON_EXIT',
  /** The plugin's log level in its netconf: debug, info, warn, error or silent (default info). */
  cniPluginLogLevel: 'AMBIT_CNI_PLUGIN_LOG_LEVEL',
  /** Comma-separated namespaces whose pods the plugin passes through (default kube-system; the agent's own is added). */
  cniExcludeNamespaces: 'AMBIT_CNI_EXCLUDE_NAMESPACES',
  /**
   * A self-contained plugin executable to copy into the node's CNI bin dir (the node image's, built by
   * `npm run build:cni -w @ambit/ztunnel`); unset: a wrapper script running bin/ambit-cni with this node binary,
   * which works only where the host shares the agent's filesystem (the cluster-in-a-box).
   */
  cniPluginExecutable: 'AMBIT_CNI_PLUGIN_EXECUTABLE',
} as const);

/** Prefixes of variable families: extra gRPC headers and node metadata (Istio's names). */
export const ENV_PREFIX = Object.freeze({
  xdsHeader: 'XDS_HEADER_',
  caHeader: 'CA_HEADER_',
  istioMeta: 'ISTIO_META_',
  istioMetaJson: 'ISTIO_METAJSON_',
} as const);

/** Istio's mount points in the ztunnel pod (relative to the working directory, as ztunnel resolves them). */
export const DEFAULT_ROOT_CA_PATH = './var/run/secrets/istio/root-cert.pem';
export const DEFAULT_AUTH_TOKEN_PATH = './var/run/secrets/tokens/istio-token';
