import { ConfigError, DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, PORTS } from '@ambit/api';
import { ENV } from './env.js';

/** The agent's whole configuration, built once, validated, frozen, and shown at /config_dump. */
export interface Config {
  trustDomain: string;
  clusterId: string;
  network: string;
  nodeName: string;
  /** Namespace whose AuthorizationPolicies apply mesh-wide (Istio's root namespace). */
  rootNamespace: string;
  localXdsPath: string | undefined;
  xdsAddress: string | undefined;
  caAddress: string | undefined;
  localCa: { certPath: string; keyPath: string } | undefined;
  secretTtlSeconds: number;
  adminAddress: { host: string; port: number };
  metricsAddress: { host: string; port: number };
  readinessAddress: { host: string; port: number };
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
  const drain = str(ENV.drainTimeout);
  const config: Config = {
    trustDomain: str(ENV.trustDomain, DEFAULT_TRUST_DOMAIN)!,
    clusterId: str(ENV.clusterId, DEFAULT_CLUSTER_ID)!,
    network: str(ENV.network, '')!,
    nodeName: str(ENV.nodeName, '')!,
    rootNamespace: str(ENV.rootNamespace, 'istio-system')!,
    localXdsPath: str(ENV.localXdsPath),
    xdsAddress: str(ENV.xdsAddress),
    caAddress: str(ENV.caAddress),
    localCa: caCert && caKey ? { certPath: caCert, keyPath: caKey } : undefined,
    secretTtlSeconds: duration(ENV.secretTtl, 24 * 3600),
    adminAddress: addr(ENV.adminAddress, `127.0.0.1:${PORTS.admin}`),
    metricsAddress: addr(ENV.metricsAddress, `0.0.0.0:${PORTS.metrics}`),
    readinessAddress: addr(ENV.readinessAddress, `0.0.0.0:${PORTS.readiness}`),
    cniSocketPath: str(ENV.cniSocket, '/var/run/ambit/cni.sock')!,
    podSnapshotPath: str(ENV.podSnapshot, '/var/run/ambit/pods.json')!,
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
  };
  if (!config.localXdsPath && !config.xdsAddress) problems.push(`one of ${ENV.localXdsPath} or ${ENV.xdsAddress} must be set`);
  if (!config.localCa && !config.caAddress) problems.push(`one of ${ENV.caAddress} or ${ENV.localCaCert}+${ENV.localCaKey} must be set`);
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.logLevel)) problems.push(`${ENV.logLevel}="${config.logLevel}" is not a pino level`);
  if (problems.length) throw new ConfigError(`invalid agent configuration:\n  ${problems.join('\n  ')}`);
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { for (const v of Object.values(o)) deepFreeze(v); Object.freeze(o); }
  return o;
}
