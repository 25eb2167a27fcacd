// Upstream endpoints: the workloads of a service (or of a DestinationRule subset) that are healthy and reachable.
// Requests choose among them with the cluster's load balancer (proxy/clusters.ts); `pick` (round robin) serves
// mirrors and opaque TCP.
import { formatSpiffeId } from '@ambit/api';
import type { ProxyState, Service, Workload } from '@ambit/ztunnel';
import type { Subset } from '../routing/types.js';

export interface UpstreamEndpoint {
  readonly workload: Workload;
  /** IP address, or the host name of a DNS ServiceEntry endpoint (transport `tcp` only). */
  readonly address: string;
  /**
   * `hbone`: a captured workload, reached through its node agent (address:15008, mTLS, CONNECT address:targetPort).
   * `tcp`: a workload outside the mesh (ServiceEntry endpoints, protocol TCP): a plain TCP connection to
   * address:targetPort, with TLS on top when a DestinationRule originates it.
   */
  readonly transport: 'hbone' | 'tcp';
  readonly targetPort: number;
  /** SPIFFE identities the endpoint's agent may present: the workload's, then the service's SANs. */
  readonly identities: readonly string[];
}

export type EndpointResult =
  | { readonly kind: 'endpoint'; readonly endpoint: UpstreamEndpoint; readonly candidates: readonly UpstreamEndpoint[] }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * Workload facts a subset's labels can be checked against. The workload API carries no pod labels, only the
 * canonical name and revision (from `app`/`version` and their Istio and Kubernetes synonyms); a subset selecting on
 * any other label matches nothing, and says so.
 */
const LABEL_FACTS: Readonly<Record<string, (w: Workload) => string>> = {
  app: (w) => w.canonicalName,
  'app.kubernetes.io/name': (w) => w.canonicalName,
  'service.istio.io/canonical-name': (w) => w.canonicalName,
  version: (w) => w.canonicalRevision,
  'app.kubernetes.io/version': (w) => w.canonicalRevision,
  'service.istio.io/canonical-revision': (w) => w.canonicalRevision,
};

export function subsetMatches(subset: Subset, w: Workload): boolean {
  return Object.entries(subset.labels).every(([k, v]) => LABEL_FACTS[k]?.(w) === v);
}

export function unsupportedSubsetLabels(subset: Subset): string[] {
  return Object.keys(subset.labels).filter((k) => !LABEL_FACTS[k]);
}

export function identityOfWorkload(w: Workload): string {
  return formatSpiffeId({ trustDomain: w.trustDomain, namespace: w.namespace, serviceAccount: w.serviceAccount });
}

export interface EndpointPicker {
  /** All usable endpoints of `service:port` (subset applied). */
  candidates(service: Service, port: number, subset?: Subset): UpstreamEndpoint[] | { reason: string };
  pick(service: Service, port: number, subset?: Subset, exclude?: ReadonlySet<string>): EndpointResult;
  /** A workload addressed directly (pod IP:port through the waypoint). */
  workloadEndpoint(w: Workload, address: string, port: number): UpstreamEndpoint;
}

export function createEndpointPicker(state: ProxyState): EndpointPicker {
  const cursors = new Map<string, number>();
  function candidates(service: Service, port: number, subset?: Subset): UpstreamEndpoint[] | { reason: string } {
    const name = `${service.namespace}/${service.hostname}`;
    const declared = service.ports.find((p) => p.servicePort === port);
    if (!declared) return { reason: `service ${name} has no port ${port}` };
    const allowUnhealthy = service.loadBalancing?.healthPolicy === 'AllowAll';
    const out: UpstreamEndpoint[] = [];
    const all = state.endpointsOf(service);
    for (const { workload: w, ports } of all) {
      if (!allowUnhealthy && w.status !== 'Healthy') continue;
      if (w.capacity <= 0) continue;
      if (subset && !subsetMatches(subset, w)) continue;
      const transport = w.protocol === 'HBONE' ? 'hbone' : 'tcp';
      // A DNS ServiceEntry endpoint has a host name instead of an IP; only a direct TCP connection can use it.
      const address = w.workloadIps[0] ?? (transport === 'tcp' && w.hostname ? w.hostname : undefined);
      if (!address) continue;
      const mapped = ports[port];
      const targetPort = mapped && mapped !== 0 ? mapped : declared.targetPort !== 0 ? declared.targetPort : port;
      out.push({ workload: w, address, transport, targetPort, identities: transport === 'hbone' ? [identityOfWorkload(w), ...service.subjectAltNames] : [] });
    }
    if (out.length === 0) {
      const why = subset && unsupportedSubsetLabels(subset).length
        ? `; subset "${subset.name}" selects on ${unsupportedSubsetLabels(subset).join(', ')}, which the workload API does not carry (use app/version)`
        : subset ? ` in subset "${subset.name}"` : '';
      return { reason: `no healthy endpoint for ${name}:${port} (${all.length} endpoints)${why}` };
    }
    return out;
  }
  return {
    candidates,
    pick(service, port, subset, exclude) {
      const list = candidates(service, port, subset);
      if (!Array.isArray(list)) return { kind: 'none', reason: list.reason };
      const key = `${service.namespace}/${service.hostname}|${port}|${subset?.name ?? ''}`;
      let i = cursors.get(key) ?? 0;
      let chosen = list[i % list.length]!;
      // A retry prefers another endpoint than the ones that already failed (Envoy's previous_hosts predicate).
      for (let n = 0; exclude && n < list.length && exclude.has(chosen.address); n++) chosen = list[(++i) % list.length]!;
      cursors.set(key, (i + 1) % 1_000_000);
      return { kind: 'endpoint', endpoint: chosen, candidates: list };
    },
    workloadEndpoint(w, address, port) {
      const transport = w.protocol === 'HBONE' ? 'hbone' : 'tcp';
      return { workload: w, address, transport, targetPort: port, identities: transport === 'hbone' ? [identityOfWorkload(w)] : [] };
    },
  };
}
