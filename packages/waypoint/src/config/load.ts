import { isIP } from 'node:net';
import { ConfigError, DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, formatSpiffeId, mountedPath, PORTS, type EnvLike } from '@ambit/api';
import { parseGrpcTarget, type AuthTokenSource } from '@ambit/ztunnel';
import type { TracingProvider } from '../policy/index.js';
import { DEFAULT_AUTH_TOKEN_PATH, DEFAULT_ROOT_CA_PATH, ENV, ENV_PREFIX } from './env.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The waypoint's whole configuration: built once from the environment, validated, frozen, shown at /config_dump. */
export interface WaypointConfig {
  readonly trustDomain: string;
  readonly clusterId: string;
  readonly network: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly instanceIp: string;
  readonly nodeName: string;
  readonly serviceAccount: string;
  /** The waypoint's Gateway (HTTPRoute parentRefs to it apply to every service it serves). */
  readonly gatewayName: string;
  /** spiffe://<td>/ns/<POD_NAMESPACE>/sa/<SERVICE_ACCOUNT> */
  readonly identity: string;
  readonly domainSuffix: string;
  readonly xdsAddress: string | undefined;
  readonly xdsRootCaPath: string;
  readonly xdsHeaders: Readonly<Record<string, string>>;
  readonly caAddress: string | undefined;
  readonly caRootCaPath: string;
  readonly caHeaders: Readonly<Record<string, string>>;
  readonly altCaHostname: string | undefined;
  readonly authToken: AuthTokenSource;
  readonly proxyMetadata: Readonly<Record<string, unknown>>;
  readonly secretTtlSeconds: number;
  readonly localXdsPath: string | undefined;
  readonly localConfigPath: string | undefined;
  readonly localCa: { readonly certPath: string; readonly keyPath: string } | undefined;
  readonly hboneAddress: ListenAddress;
  /** Port of the destination agents' HBONE listener (15008; tests use another). */
  readonly upstreamHbonePort: number;
  readonly adminAddress: ListenAddress;
  readonly metricsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
  readonly drainTimeoutMs: number | undefined;
  /** Module paths of WaypointPlugins, loaded at start in this order. */
  readonly plugins: readonly string[];
  readonly limits: WaypointLimits;
  readonly tracing: WaypointTracing;
  readonly logLevel: string;
}

/** The mesh-level tracing settings (Istio keeps them in MeshConfig); Telemetry objects choose among them. */
export interface WaypointTracing {
  /** extensionProviders with a zipkin block, by name. */
  readonly providers: Readonly<Record<string, TracingProvider>>;
  /** defaultProviders.tracing. */
  readonly defaultProviders: readonly string[];
  /** defaultConfig.tracing.sampling (0..100). */
  readonly defaultSamplingPercentage: number;
}

/**
 * Reads AMBIT_TRACING_PROVIDERS: `{name: {zipkin: {service, port, path?, maxTagLength?}}}` (Istio's
 * extensionProviders[].zipkin). Problems are pushed naming the variable and the key.
 */
export function parseTracingProviders(text: string | undefined, problems: string[]): Record<string, TracingProvider> {
  if (text === undefined) return {};
  const name = ENV.tracingProviders;
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (e) { problems.push(`${name} is not JSON: ${(e as Error).message}`); return {}; }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) { problems.push(`${name} must be a JSON object {name: {zipkin: {service, port}}}`); return {}; }
  const out: Record<string, TracingProvider> = {};
  for (const [provider, v] of Object.entries(parsed as Record<string, unknown>)) {
    const z = v && typeof v === 'object' ? (v as Record<string, unknown>).zipkin : undefined;
    if (!z || typeof z !== 'object') { problems.push(`${name}: ${provider}: only zipkin providers are supported ({"zipkin": {"service": ..., "port": ...}})`); continue; }
    const { service, port, path, maxTagLength } = z as Record<string, unknown>;
    if (typeof service !== 'string' || service === '') { problems.push(`${name}: ${provider}.zipkin.service must be a host name`); continue; }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) { problems.push(`${name}: ${provider}.zipkin.port must be a port number`); continue; }
    if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) { problems.push(`${name}: ${provider}.zipkin.path must start with /`); continue; }
    if (maxTagLength !== undefined && (typeof maxTagLength !== 'number' || !Number.isInteger(maxTagLength) || maxTagLength < 1)) { problems.push(`${name}: ${provider}.zipkin.maxTagLength must be a positive integer`); continue; }
    const host = service.includes(':') && !service.startsWith('[') ? `[${service}]` : service;
    out[provider] = { kind: 'zipkin', url: `http://${host}:${port}${(path as string | undefined) ?? '/api/v2/spans'}`, maxTagLength: (maxTagLength as number | undefined) ?? 256 };
  }
  return out;
}

export interface WaypointLimits {
  /** Request header block limit (Envoy's max_request_headers_kb default 60). Over it: 431. */
  readonly maxRequestHeadersBytes: number;
  /** Request bytes kept for retries and mirrors (Envoy's per-connection buffer limit, 1 MiB). Bigger bodies stream without retry. */
  readonly maxBufferedBodyBytes: number;
  /** How long to wait for a client's first bytes before treating the stream as opaque TCP; 0 (Istio's default): no bound. */
  readonly protocolDetectionTimeoutMs: number;
  /** Idle HTTP/1.1 keep-alive and HTTP/2 connections from clients close after this long. */
  readonly idleTimeoutMs: number;
  /** Time allowed for the complete request headers (slowloris bound). */
  readonly headersTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** The process environment, for Telemetry customTags `environment` (read as the tags ask, not part of the config). */
export function processEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

/** Reads the configuration; every problem is reported at once, naming the variable. The only reader of process.env. */
export function loadConfig(env: EnvLike = process.env): WaypointConfig {
  const problems: string[] = [];
  const str = (name: string, dflt?: string): string | undefined => { const v = env[name]; return v === undefined || v === '' ? dflt : v; };
  const int = (name: string, dflt: number, min = 0): number => {
    const v = str(name);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min) { problems.push(`${name}="${v}" is not an integer >= ${min}`); return dflt; }
    return Number(v);
  };
  const addr = (name: string, dflt: string): ListenAddress => {
    const v = str(name, dflt)!;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v);
    if (!m || Number(m[2]) > 65535) { problems.push(`${name}="${v}" is not host:port`); return { host: '127.0.0.1', port: 0 }; }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  };
  const duration = (name: string, dfltSeconds: number): number => {
    const v = str(name);
    if (v === undefined) return dfltSeconds;
    const m = /^(\d+)(s|m|h)?$/.exec(v);
    if (!m) { problems.push(`${name}="${v}" is not a duration like 30s, 5m or 24h`); return dfltSeconds; }
    return Number(m[1]) * ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2] ?? 's']!;
  };
  const prefixed = (prefix: string): Array<[string, string]> =>
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith(prefix) && e[0].length > prefix.length && e[1] !== undefined)
      .map(([k, v]) => [k.slice(prefix.length), v]);
  const headers = (prefix: string): Record<string, string> =>
    Object.fromEntries(prefixed(prefix).map(([k, v]) => [k.toLowerCase().replace(/_/g, '-'), v]));
  const path = (p: string): string => mountedPath(p, env);

  const podNamespace = str(ENV.podNamespace, 'default')!;
  const gatewayName = str(ENV.gatewayName, 'waypoint')!;
  const serviceAccount = str(ENV.serviceAccount, gatewayName)!;
  const trustDomain = str(ENV.trustDomain, DEFAULT_TRUST_DOMAIN)!;
  const token = str(ENV.authToken, DEFAULT_AUTH_TOKEN_PATH)!;
  const caCert = str(ENV.localCaCert);
  const caKey = str(ENV.localCaKey);
  if ((caCert === undefined) !== (caKey === undefined)) problems.push(`${ENV.localCaCert} and ${ENV.localCaKey} must be set together`);
  const drain = str(ENV.drainTimeout);
  const pluginList = str(ENV.plugins);
  const sampling = str(ENV.tracingSampling);
  let samplingPercentage = 1;
  if (sampling !== undefined) {
    const n = Number(sampling);
    if (!Number.isFinite(n) || n < 0 || n > 100) problems.push(`${ENV.tracingSampling}="${sampling}" is not a percentage 0..100`);
    else samplingPercentage = n;
  }
  const config: WaypointConfig = {
    trustDomain,
    clusterId: str(ENV.istioMetaClusterId) ?? str(ENV.clusterId, DEFAULT_CLUSTER_ID)!,
    network: str(ENV.network, '')!,
    podName: str(ENV.podName, '')!,
    podNamespace,
    instanceIp: str(ENV.instanceIp, '')!,
    nodeName: str(ENV.nodeName, '')!,
    serviceAccount,
    gatewayName,
    identity: formatSpiffeId({ trustDomain, namespace: podNamespace, serviceAccount }),
    domainSuffix: str(ENV.domainSuffix, 'cluster.local')!,
    xdsAddress: str(ENV.xdsAddress),
    xdsRootCaPath: path(str(ENV.xdsRootCa, DEFAULT_ROOT_CA_PATH)!),
    xdsHeaders: headers(ENV_PREFIX.xdsHeader),
    caAddress: str(ENV.caAddress),
    caRootCaPath: path(str(ENV.caRootCa, DEFAULT_ROOT_CA_PATH)!),
    caHeaders: headers(ENV_PREFIX.caHeader),
    altCaHostname: str(ENV.altCaHostname),
    authToken: token.includes('/') ? { file: path(token) } : { token },
    proxyMetadata: Object.fromEntries(prefixed(ENV_PREFIX.istioMeta)),
    secretTtlSeconds: duration(ENV.secretTtl, 24 * 3600),
    localXdsPath: str(ENV.localXdsPath),
    localConfigPath: str(ENV.localConfigPath),
    localCa: caCert && caKey ? { certPath: caCert, keyPath: caKey } : undefined,
    hboneAddress: addr(ENV.hboneAddress, `0.0.0.0:${PORTS.hbone}`),
    upstreamHbonePort: int(ENV.upstreamHbonePort, PORTS.hbone, 1),
    adminAddress: addr(ENV.adminAddress, `127.0.0.1:${PORTS.admin}`),
    metricsAddress: addr(ENV.metricsAddress, `0.0.0.0:${PORTS.metrics}`),
    readinessAddress: addr(ENV.readinessAddress, `0.0.0.0:${PORTS.readiness}`),
    drainTimeoutMs: drain === undefined ? undefined : int(ENV.drainTimeout, 0) * 1000,
    plugins: pluginList ? pluginList.split(',').map((s) => s.trim()).filter(Boolean) : [],
    limits: {
      maxRequestHeadersBytes: int(ENV.maxRequestHeadersKb, 60, 1) * 1024,
      maxBufferedBodyBytes: int(ENV.maxBufferedBodyBytes, 1024 * 1024),
      protocolDetectionTimeoutMs: int(ENV.protocolDetectionTimeout, 0),
      idleTimeoutMs: int(ENV.idleTimeout, 3_600_000, 1),
      headersTimeoutMs: 60_000,
      connectTimeoutMs: int(ENV.connectTimeout, 10_000, 1),
    },
    tracing: {
      providers: parseTracingProviders(str(ENV.tracingProviders), problems),
      defaultProviders: (str(ENV.tracingDefaultProviders) ?? '').split(',').map((p) => p.trim()).filter(Boolean),
      defaultSamplingPercentage: samplingPercentage,
    },
    logLevel: str(ENV.logLevel, 'info')!,
  };
  const localMode = config.localXdsPath !== undefined || config.localConfigPath !== undefined;
  if (!localMode && !config.xdsAddress) problems.push(`one of ${ENV.xdsAddress} or ${ENV.localXdsPath}/${ENV.localConfigPath} must be set`);
  if (localMode && config.xdsAddress) problems.push(`${ENV.xdsAddress} and local config (${ENV.localXdsPath}/${ENV.localConfigPath}) are both set; set only one config source`);
  if (!config.localCa && !config.caAddress) problems.push(`one of ${ENV.caAddress} or ${ENV.localCaCert}+${ENV.localCaKey} must be set`);
  if (config.localCa && config.caAddress) problems.push(`${ENV.caAddress} and ${ENV.localCaCert}+${ENV.localCaKey} are both set; set only one CA`);
  for (const [name, v] of [[ENV.xdsAddress, config.xdsAddress], [ENV.caAddress, config.caAddress]] as const) {
    if (v !== undefined && !parseGrpcTarget(v)) problems.push(`${name}="${v}" is not [https://]host:port`);
  }
  if (config.xdsAddress) {
    if (!isIP(config.instanceIp)) problems.push(`${ENV.instanceIp}="${config.instanceIp}" is not an IP address (required with ${ENV.xdsAddress})`);
    if (!config.podName) problems.push(`${ENV.podName} must be set with ${ENV.xdsAddress}`);
  }
  for (const p of config.tracing.defaultProviders) {
    if (!config.tracing.providers[p]) problems.push(`${ENV.tracingDefaultProviders}: provider "${p}" is not defined in ${ENV.tracingProviders}`);
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.logLevel)) problems.push(`${ENV.logLevel}="${config.logLevel}" is not a pino level`);
  if (problems.length) throw new ConfigError(`invalid waypoint configuration:\n  ${problems.join('\n  ')}`);
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { for (const v of Object.values(o)) deepFreeze(v); Object.freeze(o); }
  return o;
}
