import { ipFamilyOf } from './ip.js';
import type { LoadBalancingScope, PortMap, Service, Workload } from './types.js';

/** A workload that backs a service, with its own servicePort -> targetPort mapping for that service. */
export interface Endpoint {
  readonly workload: Workload;
  readonly ports: PortMap;
}

export interface PickEndpointOptions {
  /** The client workload; needed for locality-aware load balancing (Strict/Failover modes). */
  readonly source?: Workload;
  /** Uniform in [0, 1). Injected by tests; Math.random otherwise. */
  readonly random?: () => number;
  /** Prefer a workload IP of this family (the family of the address the client dialled). */
  readonly family?: 4 | 6;
}

export type EndpointChoice =
  | {
      readonly kind: 'endpoint';
      readonly workload: Workload;
      /** The port to dial on the workload (service port translated). */
      readonly targetPort: number;
      /** The workload IP to dial; undefined when the workload has only a hostname or sits behind a network gateway. */
      readonly address: string | undefined;
    }
  /** LB mode Passthrough: no endpoint selection, send to the original destination. */
  | { readonly kind: 'passthrough' }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * Chooses an upstream for `service:servicePort` among `endpoints`, as ztunnel's `load_balance` +
 * `find_upstream_from_service` do (spec §3.4, §6.1 outbound step 2):
 * - the service must declare the port;
 * - only Healthy workloads, unless the service's health policy is AllowAll;
 * - workloads with neither IP nor hostname are skipped unless reachable through a network gateway on another network;
 * - with load balancing mode Strict/Failover, workloads are ranked by how many routing preferences (in order) they
 *   share with the source; Strict keeps only full matches, Failover keeps the best rank;
 * - weighted random choice by capacity (capacity 0 is never picked).
 * Target port: the endpoint's own mapping for the port if set (named ports), else the service's targetPort if set,
 * else the service port itself.
 */
export function pickEndpoint(
  service: Service,
  servicePort: number,
  endpoints: readonly Endpoint[],
  options: PickEndpointOptions = {},
): EndpointChoice {
  const name = `${service.namespace}/${service.hostname}`;
  const lb = service.loadBalancing;
  if (lb?.mode === 'Passthrough') return { kind: 'passthrough' };
  const declared = service.ports.find((p) => p.servicePort === servicePort);
  if (!declared) {
    return { kind: 'none', reason: `service "${name}" has no port ${servicePort} (ports: ${service.ports.map((p) => p.servicePort).join(', ') || 'none'})` };
  }
  const allowUnhealthy = lb?.healthPolicy === 'AllowAll';
  const src = options.source;
  let candidates = endpoints.filter(({ workload: w }) => {
    if (!allowUnhealthy && w.status !== 'Healthy') return false;
    if (w.capacity <= 0) return false;
    const hasAddress = w.workloadIps.length > 0 || w.hostname !== '';
    if (!hasAddress) {
      const inNetwork = src ? w.network === src.network : true;
      if (inNetwork || !w.networkGateway) return false;
    }
    return true;
  });
  if (candidates.length === 0) {
    const healthy = endpoints.filter((e) => e.workload.status === 'Healthy').length;
    return { kind: 'none', reason: `no healthy endpoint for service "${name}" port ${servicePort} (${endpoints.length} endpoints, ${healthy} healthy)` };
  }

  if (lb && (lb.mode === 'Strict' || lb.mode === 'Failover') && lb.routingPreferences.length > 0) {
    if (!src) {
      if (lb.mode === 'Strict') return { kind: 'none', reason: `service "${name}" requires locality matching (Strict) but the source workload is unknown` };
    } else {
      const ranked = candidates.map((e) => ({ e, rank: rankOf(lb.routingPreferences, src, e.workload) }));
      const eligible = lb.mode === 'Strict' ? ranked.filter((r) => r.rank === lb.routingPreferences.length) : ranked;
      if (eligible.length === 0) {
        return { kind: 'none', reason: `no endpoint of service "${name}" matches the source on ${lb.routingPreferences.join(', ')} (Strict)` };
      }
      const best = Math.max(...eligible.map((r) => r.rank));
      candidates = eligible.filter((r) => r.rank === best).map((r) => r.e);
    }
  }

  const chosen = chooseWeighted(candidates, options.random ?? Math.random);
  const w = chosen.workload;
  const targetPort = nonZero(chosen.ports[servicePort]) ?? nonZero(declared.targetPort) ?? servicePort;
  return { kind: 'endpoint', workload: w, targetPort, address: chooseAddress(w, service, options.family) };
}

function nonZero(n: number | undefined): number | undefined {
  return n === undefined || n === 0 ? undefined : n;
}

function rankOf(prefs: readonly LoadBalancingScope[], src: Workload, w: Workload): number {
  let rank = 0;
  for (const p of prefs) {
    const same =
      p === 'Network' ? src.network === w.network
      : p === 'Region' ? src.locality.region === w.locality.region
      : p === 'Zone' ? src.locality.zone === w.locality.zone
      : p === 'Subzone' ? src.locality.subzone === w.locality.subzone
      : p === 'Node' ? src.node === w.node
      : src.clusterId === w.clusterId;
    if (!same) break;
    rank++;
  }
  return rank;
}

function chooseWeighted<T extends Endpoint>(items: readonly T[], random: () => number): T {
  let total = 0;
  for (const i of items) total += i.workload.capacity;
  let r = random() * total;
  for (const i of items) {
    r -= i.workload.capacity;
    if (r < 0) return i;
  }
  return items[items.length - 1]!;
}

function chooseAddress(w: Workload, service: Service, family: 4 | 6 | undefined): string | undefined {
  const allowed = w.workloadIps.filter((ip) => {
    const f = ipFamilyOf(ip);
    return service.ipFamilies === 'IPv4Only' ? f === 4 : service.ipFamilies === 'IPv6Only' ? f === 6 : true;
  });
  return allowed.find((ip) => family !== undefined && ipFamilyOf(ip) === family) ?? allowed[0];
}
