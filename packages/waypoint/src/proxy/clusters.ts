// Upstream clusters (Envoy's `outbound|<port>|<subset>|<host>`): per destination service, subset and port, the
// DestinationRule traffic policy in force (policy/ merges top level, portLevelSettings and subset) and the live state
// built from it: the circuit breakers (connectionPool), the outlier detector, the load balancer, active requests
// per endpoint (LEAST_REQUEST) and the TLS origination plan. A cluster keeps its state across configuration
// changes that leave its effective policy alone (ejections and counters survive an unrelated VirtualService edit).
import type { Logger } from 'pino';
import type { Service } from '@ambit/ztunnel';
import {
  compileTrafficPolicy, createClusterLimiter, createLoadBalancer, createOutlierDetector, planTlsOrigination, resolveTrafficPolicy,
  type ClusterLimiter, type CompiledTrafficPolicy, type LoadBalancer, type OutlierDetector, type TlsOriginationPlan,
} from '../policy/index.js';
import type { ConfigStore } from '../state/config-store.js';
import type { Subset } from '../routing/types.js';
import type { UpstreamConnectionPolicy } from './upstream.js';

export interface Cluster {
  /** `outbound|80|v1|reviews.default.svc.cluster.local` */
  readonly name: string;
  readonly policy: CompiledTrafficPolicy;
  readonly limiter: ClusterLimiter;
  readonly outlier: OutlierDetector | undefined;
  readonly lb: LoadBalancer;
  /** How upstream connections of this cluster behave; `tlsError` when the tls block cannot be applied (file missing). */
  readonly connection: UpstreamConnectionPolicy;
  readonly tlsError: string | undefined;
  /** Requests in flight per endpoint address (LEAST_REQUEST). */
  activeRequests(address: string): number;
  /** Counts a request to `address` as active; the returned function ends it (idempotent). */
  beginRequest(address: string): () => void;
}

export interface ClusterManager {
  /** The cluster of `service:port` (subset applied) for requests of `protocol`. */
  get(service: Service, port: number, subset: Subset | undefined, protocol: 'http1' | 'http2'): Cluster;
  /** For the config dump and tests. */
  stats(): Record<string, ReturnType<ClusterLimiter['stats']> & { ejected: number }>;
  close(): void;
}

/** Istio's cluster name. */
export function clusterName(host: string, port: number, subset?: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

export interface ClusterManagerOptions {
  readonly store: ConfigStore;
  readonly logger: Logger;
  readonly random?: () => number;
  readonly now?: () => number;
  /** How often idle connections are swept from the circuit-breaker accounting. Default 1000 ms. */
  readonly sweepIntervalMs?: number;
}

interface Entry {
  /** The effective policy as written: same text, same state. */
  readonly fingerprint: string;
  readonly configVersion: number;
  readonly cluster: Cluster;
}

export function createClusterManager(options: ClusterManagerOptions): ClusterManager {
  const log = options.logger.child({ component: 'clusters' });
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  // Each build gets its own connection pool: connections made under an older policy (other TLS settings) are not reused.
  let generation = 0;

  function build(name: string, host: string, policy: CompiledTrafficPolicy, protocol: 'http1' | 'http2', explicitLb: boolean): Cluster {
    const active = new Map<string, number>();
    // No loadBalancer in any DestinationRule: LEAST_REQUEST, Istio's default (power of two choices on live counts).
    const lb = createLoadBalancer(explicitLb ? policy.loadBalancer : { kind: 'LEAST_REQUEST' }, options.random ? { random: options.random } : {});
    let plan: TlsOriginationPlan = { kind: 'plaintext' };
    let tlsError: string | undefined;
    try {
      plan = planTlsOrigination(policy.tls, { host });
    } catch (err) {
      tlsError = (err as Error).message;
      log.warn({ cluster: name, err: tlsError }, 'TLS origination cannot be set up; requests to this cluster fail with 503 UF');
    }
    const cp = policy.connectionPool;
    return {
      name, policy, lb, tlsError,
      limiter: createClusterLimiter(cp, { protocol, now }),
      outlier: policy.outlierDetection ? createOutlierDetector(policy.outlierDetection) : undefined,
      connection: {
        poolKey: `${name}#${++generation}`,
        maxRequestsPerConnection: cp.maxRequestsPerConnection,
        idleTimeoutMs: cp.tcpIdleTimeoutMs !== undefined ? Math.min(cp.tcpIdleTimeoutMs, cp.idleTimeoutMs) : cp.idleTimeoutMs,
        connectTimeoutMs: cp.connectTimeoutMs,
        ...(plan.kind === 'tls' ? { tls: plan.options } : {}),
      },
      activeRequests: (address) => active.get(address) ?? 0,
      beginRequest(address) {
        active.set(address, (active.get(address) ?? 0) + 1);
        let ended = false;
        return () => {
          if (ended) return;
          ended = true;
          const n = (active.get(address) ?? 1) - 1;
          if (n <= 0) active.delete(address); else active.set(address, n);
        };
      },
    };
  }

  const sweep = setInterval(() => {
    const t = now();
    for (const e of entries.values()) e.cluster.limiter.sweepIdle(t);
  }, options.sweepIntervalMs ?? 1000);
  sweep.unref();

  return {
    get(service, port, subset, protocol) {
      const name = clusterName(service.hostname, port, subset?.name);
      const key = `${name}|${protocol}`;
      const config = options.store.current();
      const hit = entries.get(key);
      if (hit && hit.configVersion === config.version) return hit.cluster;
      const dr = config.destinationRuleFor(service.hostname);
      const source = dr?.source;
      const effective = source ? resolveTrafficPolicy(source, subset?.name, port) : undefined;
      const fingerprint = JSON.stringify(effective ? { ...effective, fields: undefined } : null);
      if (hit && hit.fingerprint === fingerprint) {
        entries.set(key, { ...hit, configVersion: config.version });
        return hit.cluster;
      }
      // DestinationRules were validated by the same compile functions when the config store accepted them.
      const policy = source
        ? compileTrafficPolicy({ kind: 'DestinationRule', metadata: { name: source.metadata.name, ...(source.metadata.namespace ? { namespace: source.metadata.namespace } : {}) }, spec: source.spec }, subset?.name, port)
        : compileTrafficPolicy({ kind: 'DestinationRule', metadata: { name: '-' } });
      const cluster = build(name, service.hostname, policy, protocol, effective?.loadBalancer !== undefined);
      entries.set(key, { fingerprint, configVersion: config.version, cluster });
      if (hit) log.info({ cluster: name }, 'cluster traffic policy changed; its circuit breakers, outlier state and balancer start over');
      return cluster;
    },
    stats() {
      const out: ReturnType<ClusterManager['stats']> = {};
      const t = now();
      for (const [key, e] of entries) {
        const c = e.cluster;
        let ejected = 0;
        if (c.outlier) for (const a of knownEndpoints(c)) if (c.outlier.isEjected(a, t)) ejected++;
        out[key] = { ...c.limiter.stats(), ejected };
      }
      return out;
    },
    close() {
      clearInterval(sweep);
      entries.clear();
    },
  };
}

const endpointSets = new WeakMap<Cluster, readonly string[]>();

/** Tells the cluster's outlier detector the current endpoint set (maxEjectionPercent), once per change. */
export function syncOutlierEndpoints(cluster: Cluster, addresses: readonly string[]): void {
  if (!cluster.outlier) return;
  const prev = endpointSets.get(cluster);
  if (prev && prev.length === addresses.length && prev.every((a, i) => a === addresses[i])) return;
  endpointSets.set(cluster, [...addresses]);
  cluster.outlier.setEndpoints(addresses);
}

function knownEndpoints(cluster: Cluster): readonly string[] {
  return endpointSets.get(cluster) ?? [];
}
