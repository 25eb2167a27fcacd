import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, PORTS, inClusterConnection, mountedPath, type InClusterConnection } from '@ambit/api';
import { DEFAULT_AUTH_TOKEN_PATH, DEFAULT_ROOT_CA_PATH, ENV, ENV_PREFIX } from './env.js';

/** Where the agent's bearer token comes from: a file re-read on every use (projected tokens rotate), or a literal. */
export type AuthTokenSource = { readonly file: string } | { readonly token: string };

/** A gRPC server address: `https://host:port` or `host:port` (TLS), `http://host:port` (plaintext, tests only). */
export interface GrpcTarget {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** `host:port` as grpc-js wants it (IPv6 in brackets). */
  readonly target: string;
}

/** Parses XDS_ADDRESS / CA_ADDRESS; undefined when it is not `[http[s]://]host:port`. */
export function parseGrpcTarget(value: string): GrpcTarget | undefined {
  const m = /^(?:(https?):\/\/)?(\[[^\]]+\]|[^:/\[\]]+):(\d+)\/?$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return undefined;
  const host = m[2]!.replace(/^\[|\]$/g, '');
  return { tls: m[1] !== 'http', host, port: Number(m[3]), target: `${host.includes(':') ? `[${host}]` : host}:${m[3]}` };
}

/** How the agent reaches the API server: a kubeconfig file, or the pod's in-cluster service account. */
export type KubernetesConnection =
  | { kind: 'kubeconfig'; path: string }
  | { kind: 'in-cluster'; connection: InClusterConnection };

/** Kubernetes mode (AMBIT_KUBERNETES_WATCH): where the API server is and where the host's namespaces are seen. */
export interface KubernetesSettings {
  connection: KubernetesConnection;
  /** The host's /proc (AMBIT_HOST_PROC, through AMBIT_MOUNTS). */
  procDir: string;
  /** The host's /var/run/netns (AMBIT_HOST_NETNS_DIR, through AMBIT_MOUNTS). */
  netnsDir: string;
}

export type CniUninstallOnExit = 'auto' | 'true' | 'false';
export type CniPluginLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The CNI plugin installer (AMBIT_CNI_INSTALL=true): the node's CNI dirs as the agent sees them, and the plugin's settings. */
export interface CniInstallSettings {
  /** The node's /etc/cni/net.d (AMBIT_CNI_CONF_DIR, through AMBIT_MOUNTS). */
  confDir: string;
  /** The node's /opt/cni/bin (AMBIT_CNI_BIN_DIR, through AMBIT_MOUNTS). */
  binDir: string;
  uninstallOnExit: CniUninstallOnExit;
  pluginLogLevel: CniPluginLogLevel;
  /** Namespaces the plugin passes through without asking the agent; the agent's own namespace included. */
  excludeNamespaces: string[];
  /** The self-contained plugin executable to install (AMBIT_CNI_PLUGIN_EXECUTABLE); unset: the wrapper script. */
  pluginExecutable?: string;
}

/** The agent's whole configuration, built once, validated, frozen, and shown at /config_dump. */
export interface Config {
  trustDomain: string;
  clusterId: string;
  network: string;
  nodeName: string;
  /** Namespace whose AuthorizationPolicies apply mesh-wide (Istio's root namespace). */
  rootNamespace: string;
  localXdsPath: string | undefined;
  /** Delta xDS server (XDS_ADDRESS); used when LOCAL_XDS_PATH is not set. */
  xdsAddress: string | undefined;
  /** Root that verifies the xDS server's TLS certificate (XDS_ROOT_CA). */
  xdsRootCaPath: string;
  /** Extra gRPC metadata on the xDS stream, from XDS_HEADER_<NAME> (name lower-cased, `_` -> `-`). */
  xdsHeaders: Record<string, string>;
  /** Certificate service (CA_ADDRESS); used when no local CA is set. */
  caAddress: string | undefined;
  /** Root that verifies the CA server's TLS certificate (CA_ROOT_CA). */
  caRootCaPath: string;
  /** Extra gRPC metadata on CreateCertificate calls, from CA_HEADER_<NAME>. */
  caHeaders: Record<string, string>;
  /** TLS server name checked on the CA (and xDS) connection instead of the address's host (ALT_CA_HOSTNAME). */
  altCaHostname: string | undefined;
  /** Bearer token for xDS and CA (AUTH_TOKEN: a path, or a literal token when it has no "/"). */
  authToken: AuthTokenSource;
  /** This agent pod, for the xDS node id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`. */
  instanceIp: string;
  podName: string;
  podNamespace: string;
  /** Extra node metadata: ISTIO_META_<KEY> (strings) and ISTIO_METAJSON_<KEY> (JSON values). */
  proxyMetadata: Record<string, unknown>;
  localCa: { certPath: string; keyPath: string } | undefined;
  secretTtlSeconds: number;
  adminAddress: { host: string; port: number };
  metricsAddress: { host: string; port: number };
  readinessAddress: { host: string; port: number };
  /** The enrollment socket (AMBIT_CNI_SOCKET, through AMBIT_MOUNTS: the installer writes this path into the plugin's netconf). */
  cniSocketPath: string;
  podSnapshotPath: string;
  /** Upper bound of the drain after SIGTERM; undefined = wait for every connection to end. */
  drainTimeoutMs: number | undefined;
  /** How often captured pods' redirection rules are checked for drift and repaired; 0 = never. */
  ruleCheckIntervalMs: number;
  enableOrigSrc: boolean;
  dnsCapture: boolean;
  probeSnatIpv4: string | undefined;
  pool: { maxStreamsPerConnection: number; unusedReleaseTimeoutMs: number };
  http2: { keepaliveIntervalMs: number; keepaliveTimeoutMs: number; connectTimeoutMs: number };
  logLevel: string;
  /** Kubernetes mode; undefined when off (pods are then enrolled only through the CNI plugin, all captured). */
  kubernetes: KubernetesSettings | undefined;
  /** The CNI plugin installer; undefined when AMBIT_CNI_INSTALL is not true. */
  cniInstall: CniInstallSettings | undefined;
}

type Env = Record<string, string | undefined>;

/** Reads the configuration from the environment; every problem is reported at once, naming the variable. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  const str = (name: string, dflt?: string) => { const v = env[name]; return v === undefined || v === '' ? dflt : v; };
  const int = (name: string, dflt: number, min = 0): number => {
    const v = str(name);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min) { problems.push(`${name}="${v}" is not an integer >= ${min}`); return dflt; }
    return Number(v);
  };
  const bool = (name: string, dflt: boolean): boolean => {
    const v = str(name);
    if (v === undefined) return dflt;
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    problems.push(`${name}="${v}" is not true or false`);
    return dflt;
  };
  const addr = (name: string, dflt: string): { host: string; port: number } => {
    const v = str(name, dflt)!;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v);
    if (!m || Number(m[2]) > 65535) { problems.push(`${name}="${v}" is not host:port`); return addr('', dflt); }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  };
  const duration = (name: string, dfltSeconds: number): number => {
    const v = str(name);
    if (v === undefined) return dfltSeconds;
    const m = /^(\d+)(s|m|h)?$/.exec(v);
    if (!m) { problems.push(`${name}="${v}" is not a duration like 30s, 5m or 24h`); return dfltSeconds; }
    return Number(m[1]) * ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2] ?? 's']!;
  };
  const caCert = str(ENV.localCaCert);
  const caKey = str(ENV.localCaKey);
  if ((caCert === undefined) !== (caKey === undefined)) problems.push(`${ENV.localCaCert} and ${ENV.localCaKey} must be set together`);
  const prefixed = (prefix: string): Array<[string, string]> =>
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith(prefix) && e[0].length > prefix.length && e[1] !== undefined)
      .map(([k, v]) => [k.slice(prefix.length), v]);
  const headers = (prefix: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of prefixed(prefix)) {
      // ztunnel's rule: lower-cased, `_` -> `-` (XDS_HEADER_X_ISTIO_REVISION sends x-istio-revision).
      const name = k.toLowerCase().replace(/_/g, '-');
      if (!/^[0-9a-z_.-]+$/.test(name) || name.endsWith('-bin')) problems.push(`${prefix}${k}: "${name}" is not a usable gRPC header name`);
      else out[name] = v;
    }
    return out;
  };
  const proxyMetadata: Record<string, unknown> = {};
  for (const [k, v] of prefixed(ENV_PREFIX.istioMeta)) proxyMetadata[k] = v;
  for (const [k, v] of prefixed(ENV_PREFIX.istioMetaJson)) {
    try { proxyMetadata[k] = JSON.parse(v); } catch { problems.push(`${ENV_PREFIX.istioMetaJson}${k} is not valid JSON`); }
  }
  // Well-known files (root certificate, token) are where the pod's volumes are mounted; in the cluster-in-a-box
  // the kubelet announces those through AMBIT_MOUNTS instead (mountedPath).
  const file = (path: string): string => {
    try {
      return mountedPath(path, env);
    } catch (err) {
      problems.push((err as Error).message);
      return path;
    }
  };
  // Paths inside volumes: in the cluster-in-a-box (no mount namespace) the kubelet names the directories in
  // AMBIT_MOUNTS; in a real pod mountedPath() returns the path unchanged.
  const mounted = (name: string, dflt: string): string => {
    const v = str(name, dflt)!;
    if (!isAbsolute(v)) { problems.push(`${name}="${v}" must be an absolute path`); return v; }
    try {
      return mountedPath(v, env);
    } catch (err) {
      problems.push((err as Error).message);
      return v;
    }
  };
  const token = str(ENV.authToken, DEFAULT_AUTH_TOKEN_PATH)!;
  const drain = str(ENV.drainTimeout);
  const config: Config = {
    trustDomain: str(ENV.trustDomain, DEFAULT_TRUST_DOMAIN)!,
    // Istio: ISTIO_META_CLUSTER_ID wins over CLUSTER_ID.
    clusterId: str(ENV.istioMetaClusterId) ?? str(ENV.clusterId, DEFAULT_CLUSTER_ID)!,
    network: str(ENV.network, '')!,
    nodeName: str(ENV.nodeName, '')!,
    rootNamespace: str(ENV.rootNamespace, 'istio-system')!,
    localXdsPath: str(ENV.localXdsPath),
    xdsAddress: str(ENV.xdsAddress),
    xdsRootCaPath: file(str(ENV.xdsRootCa, DEFAULT_ROOT_CA_PATH)!),
    xdsHeaders: headers(ENV_PREFIX.xdsHeader),
    caAddress: str(ENV.caAddress),
    caRootCaPath: file(str(ENV.caRootCa, DEFAULT_ROOT_CA_PATH)!),
    caHeaders: headers(ENV_PREFIX.caHeader),
    altCaHostname: str(ENV.altCaHostname),
    authToken: token.includes('/') ? { file: file(token) } : { token },
    instanceIp: str(ENV.instanceIp, '')!,
    podName: str(ENV.podName, '')!,
    podNamespace: str(ENV.podNamespace, '')!,
    proxyMetadata,
    localCa: caCert && caKey ? { certPath: file(caCert), keyPath: file(caKey) } : undefined,
    secretTtlSeconds: duration(ENV.secretTtl, 24 * 3600),
    adminAddress: addr(ENV.adminAddress, `127.0.0.1:${PORTS.admin}`),
    metricsAddress: addr(ENV.metricsAddress, `0.0.0.0:${PORTS.metrics}`),
    readinessAddress: addr(ENV.readinessAddress, `0.0.0.0:${PORTS.readiness}`),
    cniSocketPath: mounted(ENV.cniSocket, '/var/run/ambit/cni.sock'),
    podSnapshotPath: mounted(ENV.podSnapshot, '/var/run/ambit/pods.json'),
    drainTimeoutMs: drain === undefined ? undefined : int(ENV.drainTimeout, 0) * 1000,
    ruleCheckIntervalMs: int(ENV.ruleCheckInterval, 30) * 1000,
    enableOrigSrc: bool(ENV.enableOrigSrc, true),
    dnsCapture: bool(ENV.dnsCapture, false),
    probeSnatIpv4: str(ENV.probeSnatIpv4),
    pool: {
      maxStreamsPerConnection: int(ENV.poolMaxStreams, 100, 1),
      unusedReleaseTimeoutMs: duration(ENV.poolUnusedRelease, 300) * 1000,
    },
    http2: {
      keepaliveIntervalMs: int(ENV.http2KeepaliveInterval, 10_000, 1),
      keepaliveTimeoutMs: int(ENV.http2KeepaliveTimeout, 20_000, 1),
      connectTimeoutMs: int(ENV.connectTimeout, 10_000, 1),
    },
    logLevel: str(ENV.logLevel, 'info')!,
    kubernetes: undefined,
    cniInstall: undefined,
  };
  config.kubernetes = kubernetesSettings(env, str, bool, mounted, problems);
  if (bool(ENV.cniInstall, false)) config.cniInstall = cniInstallSettings(env, str, mounted, problems, config);
  if (config.kubernetes && !config.nodeName) problems.push(`${ENV.nodeName} must be set in Kubernetes mode (${ENV.kubernetesWatch}): the agent watches the pods of its node`);
  if (!config.localXdsPath && !config.xdsAddress) problems.push(`one of ${ENV.localXdsPath} or ${ENV.xdsAddress} must be set`);
  if (config.localXdsPath && config.xdsAddress) problems.push(`${ENV.localXdsPath} and ${ENV.xdsAddress} are both set; set only one config source`);
  if (!config.localCa && !config.caAddress) problems.push(`one of ${ENV.caAddress} or ${ENV.localCaCert}+${ENV.localCaKey} must be set`);
  if (config.localCa && config.caAddress) problems.push(`${ENV.caAddress} and ${ENV.localCaCert}+${ENV.localCaKey} are both set; set only one CA`);
  for (const [name, v] of [[ENV.xdsAddress, config.xdsAddress], [ENV.caAddress, config.caAddress]] as const) {
    if (v !== undefined && !parseGrpcTarget(v)) problems.push(`${name}="${v}" is not [https://]host:port`);
  }
  if (config.xdsAddress && !config.localXdsPath) {
    // The node id carries them, and istiod refuses a node id whose IP does not parse.
    if (!isIP(config.instanceIp)) problems.push(`${ENV.instanceIp}="${config.instanceIp}" is not an IP address (required with ${ENV.xdsAddress})`);
    if (!config.podName) problems.push(`${ENV.podName} must be set with ${ENV.xdsAddress}`);
    if (!config.podNamespace) problems.push(`${ENV.podNamespace} must be set with ${ENV.xdsAddress}`);
  }
  if (bool(ENV.xdsOnDemand, false)) problems.push(`${ENV.xdsOnDemand}=true is not supported yet: this agent subscribes to every workload (wildcard)`);
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.logLevel)) problems.push(`${ENV.logLevel}="${config.logLevel}" is not a pino level`);
  if (problems.length) throw new ConfigError(`invalid agent configuration:\n  ${[...new Set(problems)].join('\n  ')}`);
  return deepFreeze(config);
}

/**
 * Kubernetes mode is on when asked (AMBIT_KUBERNETES_WATCH=true) or, unless refused (=false), when there is a way
 * to reach an API server: KUBECONFIG, or the in-cluster env every pod gets.
 */
function kubernetesSettings(
  env: Env,
  str: (name: string, dflt?: string) => string | undefined,
  bool: (name: string, dflt: boolean) => boolean,
  mounted: (name: string, dflt: string) => string,
  problems: string[],
): KubernetesSettings | undefined {
  const kubeconfig = str(ENV.kubeconfig)?.split(':').find((p) => p.length > 0);
  let inCluster: InClusterConnection | undefined;
  try {
    inCluster = inClusterConnection(env);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!bool(ENV.kubernetesWatch, kubeconfig !== undefined || inCluster !== undefined)) return undefined;
  let connection: KubernetesConnection;
  if (kubeconfig) connection = { kind: 'kubeconfig', path: isAbsolute(kubeconfig) ? kubeconfig : resolve(kubeconfig) };
  else if (inCluster) connection = { kind: 'in-cluster', connection: inCluster };
  else {
    problems.push(`${ENV.kubernetesWatch}=true but there is no API server to watch: set ${ENV.kubeconfig} or run in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT)`);
    return undefined;
  }
  return { connection, procDir: mounted(ENV.hostProc, '/proc'), netnsDir: mounted(ENV.hostNetnsDir, '/var/run/netns') };
}

const UNINSTALL_MODES: readonly CniUninstallOnExit[] = ['auto', 'true', 'false'];
const PLUGIN_LOG_LEVELS: readonly CniPluginLogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
// Kubernetes namespace names (RFC 1123 labels).
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function cniInstallSettings(
  env: Env,
  str: (name: string, dflt?: string) => string | undefined,
  mounted: (name: string, dflt: string) => string,
  problems: string[],
  config: Config,
): CniInstallSettings {
  const uninstall = str(ENV.cniUninstallOnExit, 'auto')!.toLowerCase();
  if (!UNINSTALL_MODES.includes(uninstall as CniUninstallOnExit)) problems.push(`${ENV.cniUninstallOnExit}="${env[ENV.cniUninstallOnExit]}" is not auto, true or false`);
  const level = str(ENV.cniPluginLogLevel, 'info')!.toLowerCase();
  if (!PLUGIN_LOG_LEVELS.includes(level as CniPluginLogLevel)) problems.push(`${ENV.cniPluginLogLevel}="${env[ENV.cniPluginLogLevel]}" is not one of ${PLUGIN_LOG_LEVELS.join(', ')}`);
  const excluded = (str(ENV.cniExcludeNamespaces, 'kube-system') ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const n of excluded) if (!NAMESPACE_NAME.test(n)) problems.push(`${ENV.cniExcludeNamespaces}: "${n}" is not a namespace name`);
  // The agent's own pods must start when no agent runs (an upgrade after a crash), or the node could never get one back.
  if (config.podNamespace && !excluded.includes(config.podNamespace)) excluded.push(config.podNamespace);
  // istio-cni's rule needs the pod's owner: the DaemonSet is found from POD_NAMESPACE/POD_NAME.
  if (uninstall === 'auto' && config.kubernetes && (!config.podName || !config.podNamespace)) {
    problems.push(`${ENV.cniUninstallOnExit}=auto in Kubernetes mode needs ${ENV.podName} and ${ENV.podNamespace} (the agent's DaemonSet decides an uninstall); set them from the downward API or set ${ENV.cniUninstallOnExit}=true|false`);
  }
  const executable = str(ENV.cniPluginExecutable);
  if (executable !== undefined && !executable.startsWith('/')) problems.push(`${ENV.cniPluginExecutable}="${executable}" must be an absolute path`);
  return {
    confDir: mounted(ENV.cniConfDir, '/host/etc/cni/net.d'),
    binDir: mounted(ENV.cniBinDir, '/host/opt/cni/bin'),
    uninstallOnExit: uninstall as CniUninstallOnExit,
    pluginLogLevel: level as CniPluginLogLevel,
    excludeNamespaces: excluded,
    ...(executable !== undefined ? { pluginExecutable: executable } : {}),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { for (const v of Object.values(o)) deepFreeze(v); Object.freeze(o); }
  return o;
}
