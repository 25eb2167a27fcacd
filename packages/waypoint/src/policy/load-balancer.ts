import type { ConnectionPoolSettings } from './connection-pool.js';
import type { OutlierSettings } from './outlier.js';
import type { TlsOriginationSettings } from './tls-origination.js';

/** DestinationRule `loadBalancer`, compiled. */
export type LoadBalancerSettings =
  | { readonly kind: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' }
  | {
      readonly kind: 'CONSISTENT_HASH';
      readonly hashOn:
        | { readonly header: string }
        | { readonly cookie: { readonly name: string; readonly path?: string; readonly ttlSeconds?: number } }
        | { readonly sourceIp: true }
        | { readonly queryParameter: string };
      /** Ring hash with this many entries (Istio minimumRingSize / ringHash.minimumRingSize, default 1024).
       * maglev is served by the same ring (see README note in the report). */
      readonly ringSize: number;
    };

/** Istio's default: LEAST_REQUEST. */
export const DEFAULT_LOAD_BALANCER: LoadBalancerSettings = Object.freeze({ kind: 'LEAST_REQUEST' });

/** Validates `loadBalancer` (undefined: the default). Throws PolicyConfigError naming the field. */
export function compileLoadBalancer(loadBalancer: unknown, where: { readonly object: string; readonly field: string }): LoadBalancerSettings {
  void loadBalancer; void where;
  throw new Error('compileLoadBalancer: implementation lands in the next commit');
}

export interface LbEndpoint {
  /** `ip:port` or any stable id; what hashes and round robin key on. */
  readonly address: string;
  /** Relative weight (default 1). Honoured by ROUND_ROBIN, RANDOM and the hash ring. */
  readonly weight?: number;
}

/** Request facts for hash policies and LEAST_REQUEST. */
export interface LbContext {
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Request target with query string (queryParameter hashing). */
  readonly path?: string;
  readonly sourceIp?: string;
  /** Active requests to an endpoint (LEAST_REQUEST). */
  readonly activeRequests?: (address: string) => number;
  /** Endpoints to avoid (retry previous_hosts); used when others are available. */
  readonly exclude?: ReadonlySet<string>;
}

export type LbPick<E extends LbEndpoint> =
  | { readonly kind: 'endpoint'; readonly endpoint: E; readonly setCookie?: string }
  /** PASSTHROUGH: connect to the request's original destination address. */
  | { readonly kind: 'passthrough' }
  | { readonly kind: 'none' };

export interface LoadBalancer {
  readonly settings: LoadBalancerSettings;
  pick<E extends LbEndpoint>(endpoints: readonly E[], ctx?: LbContext): LbPick<E>;
}

export function createLoadBalancer(settings: LoadBalancerSettings, options?: { readonly random?: () => number }): LoadBalancer {
  void settings; void options;
  throw new Error('createLoadBalancer: implementation lands in the next commit');
}

/** The effective traffic policy for one destination (raw Istio JSON fields, unvalidated; compile them next). */
export interface EffectiveTrafficPolicy {
  readonly connectionPool?: unknown;
  readonly loadBalancer?: unknown;
  readonly outlierDetection?: unknown;
  readonly tls?: unknown;
  /** Where each came from, for messages: `spec.trafficPolicy.portLevelSettings[0]`, `spec.subsets[1].trafficPolicy`. */
  readonly fields: { readonly connectionPool?: string; readonly loadBalancer?: string; readonly outlierDetection?: string; readonly tls?: string };
}

/** The compiled effective policy. */
export interface CompiledTrafficPolicy {
  readonly connectionPool: ConnectionPoolSettings;
  readonly loadBalancer: LoadBalancerSettings;
  readonly outlierDetection?: OutlierSettings;
  readonly tls?: TlsOriginationSettings;
}

/**
 * Istio's MergeTrafficPolicy: top-level fields; the top-level portLevelSettings entry for `port` replaces all four
 * (unset ones fall back to defaults, not to the top level); the subset's trafficPolicy fields override one by one;
 * the subset's own portLevelSettings entry for `port` again replaces all four.
 */
export function resolveTrafficPolicy(destinationRule: { readonly spec?: any }, subset?: string, port?: number): EffectiveTrafficPolicy {
  void destinationRule; void subset; void port;
  throw new Error('resolveTrafficPolicy: implementation lands in the next commit');
}

/** resolveTrafficPolicy + compile of each field. Throws PolicyConfigError naming the DestinationRule and field. */
export function compileTrafficPolicy(destinationRule: { readonly kind?: string; readonly metadata: { name: string; namespace?: string }; readonly spec?: any }, subset?: string, port?: number): CompiledTrafficPolicy {
  void destinationRule; void subset; void port;
  throw new Error('compileTrafficPolicy: implementation lands in the next commit');
}
