// Environment -> one frozen Settings object. This module is the only reader of the process environment;
// everything else receives Settings (or a part of it).
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  ConfigError, DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, PORTS, inClusterConnection,
  type EnvLike, type InClusterConnection,
} from '@ambit/api';
import { ENV } from './env.js';

/** istiod's monitoring port (/metrics, /ready, /debug). */
export const DEFAULT_MONITORING_PORT = 15014;
export const DEFAULT_LEASE_NAME = 'ambit-controller-leader';
export const DEFAULT_WAYPOINT_IMAGE = 'ambit/waypoint';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LeaderElectionSettings {
  enabled: boolean;
  leaseName: string;
  leaseNamespace: string;
  /** How long a Lease is valid after its last renewal (client-go's LeaseDuration). */
  leaseDurationMs: number;
  /** The leader gives up if it could not renew for this long (client-go's RenewDeadline). */
  renewDeadlineMs: number;
  /** Interval between attempts to acquire or renew (client-go's RetryPeriod). */
  retryPeriodMs: number;
}

/** How to reach Kubernetes: a kubeconfig file, or the pod's in-cluster credentials. */
export type KubernetesConnection =
  | { kind: 'kubeconfig'; path: string }
  | { kind: 'in-cluster'; connection: InClusterConnection };

export interface EmbeddedSettings {
  /** Directory of *.yaml / *.yml / *.json configuration objects. */
  configDir: string;
  /** Where a generated root CA is kept (default `<configDir>/.ambit`). */
  stateDir: string;
  /** Root certificate and key files (both or neither). */
  caCertPath?: string;
  caKeyPath?: string;
}

export interface Settings {
  podName: string;
  podNamespace: string;
  clusterId: string;
  trustDomain: string;
  clusterDomain: string;
  /** Name of the controller's Service (serving certificate names): istiod, the name agents dial. */
  serviceName: string;
  xds: { host: string; port: number; debounceMs: number };
  monitoring: { host: string; port: number };
  /** Undefined in embedded mode. */
  kubernetes?: KubernetesConnection;
  /** Set in embedded mode (AMBIT_CONFIG_DIR): no Kubernetes at all. */
  embedded?: EmbeddedSettings;
  leaderElection: LeaderElectionSettings;
  logLevel: LogLevel;
  waypointImage: string;
  trustedNodeAccounts: readonly string[];
}

/** Reads the settings from `env` (default: the process environment). Throws ConfigError naming the variable. */
export function loadSettings(env: EnvLike = process.env): Readonly<Settings> {
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const embeddedDir = str(ENV.configDir);
  const kubeconfig = str(ENV.kubeconfig);
  let kubernetes: KubernetesConnection | undefined;
  let embedded: EmbeddedSettings | undefined;
  if (embeddedDir) {
    const configDir = resolve(embeddedDir);
    const caCertPath = str(ENV.caCert);
    const caKeyPath = str(ENV.caKey);
    if ((caCertPath === undefined) !== (caKeyPath === undefined)) {
      throw new ConfigError(`${caCertPath ? ENV.caKey : ENV.caCert} must be set together with ${caCertPath ? ENV.caCert : ENV.caKey}`);
    }
    const stateDir = str(ENV.stateDir);
    embedded = {
      configDir,
      stateDir: stateDir ? resolve(stateDir) : join(configDir, '.ambit'),
      ...(caCertPath ? { caCertPath: resolve(caCertPath) } : {}),
      ...(caKeyPath ? { caKeyPath: resolve(caKeyPath) } : {}),
    };
  } else if (kubeconfig) {
    // KUBECONFIG may list several files; client-node loads one, so we take the first like a single-file kubectl.
    const first = kubeconfig.split(':').find((p) => p.length > 0)!;
    kubernetes = { kind: 'kubeconfig', path: isAbsolute(first) ? first : resolve(first) };
  } else {
    const connection = inClusterConnection(env);
    if (!connection) {
      throw new ConfigError(`no Kubernetes connection: set ${ENV.kubeconfig}, run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT), `
        + `or set ${ENV.configDir} to a directory of YAML for embedded mode`);
    }
    kubernetes = { kind: 'in-cluster', connection };
  }

  const podNamespace = str(ENV.podNamespace) ?? 'istio-system';
  const leaderDefault = kubernetes !== undefined;
  const leaderEnabled = bool(env, ENV.leaderElection, leaderDefault);
  if (leaderEnabled && !kubernetes) {
    throw new ConfigError(`${ENV.leaderElection}=true needs Kubernetes; embedded mode (${ENV.configDir}) has no Lease to elect with`);
  }
  const podName = str(ENV.podName) ?? hostname();
  const xdsHost = str(ENV.xdsHost) ?? (embedded ? '127.0.0.1' : '0.0.0.0');
  if (embedded && !isLoopback(xdsHost)) {
    // Embedded mode has no TokenReview: callers are not authenticated, so only this machine may reach it.
    throw new ConfigError(`${ENV.xdsHost}="${xdsHost}": in embedded mode (${ENV.configDir}) xDS and the CA listen on loopback only, because callers cannot be authenticated without Kubernetes`);
  }
  const logLevel = (str(ENV.logLevel) ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`${ENV.logLevel}="${env[ENV.logLevel]}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const trusted = str(ENV.trustedNodeAccounts);
  // Istio's chart default is <istio namespace>/ztunnel, so the default follows POD_NAMESPACE.
  const trustedNodeAccounts = trusted === undefined
    ? [`${podNamespace}/ztunnel`]
    : trusted.split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of trustedNodeAccounts) {
    if (!/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(a)) {
      throw new ConfigError(`${ENV.trustedNodeAccounts}: "${a}" is not <namespace>/<service account>`);
    }
  }

  const settings: Settings = {
    podName,
    podNamespace,
    clusterId: str(ENV.clusterId) ?? DEFAULT_CLUSTER_ID,
    trustDomain: str(ENV.trustDomain) ?? DEFAULT_TRUST_DOMAIN,
    clusterDomain: str(ENV.clusterDomain) ?? 'cluster.local',
    serviceName: str(ENV.serviceName) ?? 'istiod',
    xds: { host: xdsHost, port: port(env, ENV.xdsPort, PORTS.xds), debounceMs: duration(env, ENV.xdsDebounceMs, 100) },
    monitoring: { host: str(ENV.monitoringHost) ?? (embedded ? '127.0.0.1' : '0.0.0.0'), port: port(env, ENV.monitoringPort, DEFAULT_MONITORING_PORT) },
    ...(kubernetes ? { kubernetes } : {}),
    ...(embedded ? { embedded } : {}),
    leaderElection: {
      enabled: leaderEnabled,
      leaseName: str(ENV.leaseName) ?? DEFAULT_LEASE_NAME,
      leaseNamespace: str(ENV.leaseNamespace) ?? podNamespace,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    },
    logLevel: logLevel as LogLevel,
    waypointImage: str(ENV.waypointImage) ?? DEFAULT_WAYPOINT_IMAGE,
    trustedNodeAccounts,
  };
  return deepFreeze(settings);
}

function port(env: EnvLike, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name}="${raw}" is not a port number (0..65535)`);
  return n;
}

function bool(env: EnvLike, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name}="${env[name]}" is not a boolean (true or false)`);
}

/** Istio-style durations ("100ms", "1s", "1.5s") or plain milliseconds. */
function duration(env: EnvLike, name: string, fallbackMs: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m) throw new ConfigError(`${name}="${raw}" is not a duration (e.g. 100ms, 1s)`);
  const factor = m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1;
  return Math.round(Number(m[1]) * factor);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}
