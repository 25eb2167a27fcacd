import { Counter, Gauge, type Registry } from 'prom-client';
import {
  CONNECTION_SECURITY_POLICY, METRICS, REPORTER, RESPONSE_FLAGS, TCP_METRIC_LABELS, UNKNOWN, formatSpiffeId,
  type TcpMetricLabel,
} from '@ambit/api';

/**
 * The node agent's L4 metrics (spec §7.1), the same families and label set as ztunnel's `proxy/metrics.rs`.
 * Label values are derived here from facts (workloads, services, identities) so that every caller derives them
 * the same way; the per-connection record in connection-result.ts is the only intended caller.
 */

export type Reporter = typeof REPORTER.source | typeof REPORTER.destination;
export type ResponseFlag = (typeof RESPONSE_FLAGS)[keyof typeof RESPONSE_FLAGS];
export type SecurityPolicy = (typeof CONNECTION_SECURITY_POLICY)[keyof typeof CONNECTION_SECURITY_POLICY];

/** Locality labels: present on a series only when some locality is known (spec §7.1). */
export const LOCALITY_LABELS = Object.freeze(['source_region', 'source_zone', 'destination_region', 'destination_zone'] as const);
export type LocalityLabel = (typeof LOCALITY_LABELS)[number];
export type TrafficLabelName = TcpMetricLabel | LocalityLabel;
export type TrafficLabels = Readonly<Record<TcpMetricLabel, string>> & Readonly<Partial<Record<LocalityLabel, string>>>;

/**
 * What is known about a workload on one side of a connection. A state `Workload` fits; so do facts read from
 * HBONE `baggage` (spec §1.3) when the peer is not known by IP (cross-network): `k8s.<type>.name` is
 * `workloadName`, `service.name`/`service.version` are `canonicalName`/`canonicalRevision`.
 */
export interface WorkloadFacts {
  /** Pod name; only the access log uses it. */
  readonly name?: string;
  readonly workloadName?: string;
  readonly namespace?: string;
  readonly canonicalName?: string;
  readonly canonicalRevision?: string;
  readonly clusterId?: string;
  readonly locality?: { readonly region?: string; readonly zone?: string };
  /** With `serviceAccount`, gives the destination principal when no identity was verified. */
  readonly trustDomain?: string;
  readonly serviceAccount?: string;
}

/** The service the client addressed (a state `Service` fits). */
export interface ServiceFacts {
  readonly hostname: string;
  readonly namespace?: string;
  readonly name?: string;
}

export interface TrafficFacts {
  readonly reporter: Reporter;
  readonly sourceWorkload?: WorkloadFacts;
  /**
   * The source identity proven by mTLS: on inbound the peer certificate's SPIFFE URI, on outbound HBONE the
   * identity whose certificate this agent presented. Never derived from the source workload or its IP: an IP
   * proves nothing, so `source_principal` stays `unknown` without a handshake.
   */
  readonly sourceIdentity?: string;
  readonly destinationService?: ServiceFacts;
  readonly destinationWorkload?: WorkloadFacts;
  /** The destination identity; when absent it is the destination workload's SPIFFE identity, as in ztunnel. */
  readonly destinationIdentity?: string;
  readonly securityPolicy: SecurityPolicy;
  /** `-` when absent. */
  readonly responseFlags?: ResponseFlag;
}

const orUnknown = (v: string | undefined): string => (v ? v : UNKNOWN);

function workloadIdentity(w: WorkloadFacts | undefined): string | undefined {
  if (!w?.namespace || !w.trustDomain || !w.serviceAccount) return undefined;
  return formatSpiffeId({ trustDomain: w.trustDomain, namespace: w.namespace, serviceAccount: w.serviceAccount });
}

/**
 * The label set of one connection, in Istio's order (prom-client prints labels in the order of the first
 * object it saw for a series, so the order here is the order on the wire). Missing facts are `unknown`.
 * app/version come from the canonical name/revision, as ztunnel does (`with_source`/`with_destination`).
 */
export function deriveTrafficLabels(f: TrafficFacts): TrafficLabels {
  const s = f.sourceWorkload;
  const d = f.destinationWorkload;
  const svc = f.destinationService;
  const labels: Record<string, string> = {
    reporter: f.reporter,
    source_workload: orUnknown(s?.workloadName),
    source_canonical_service: orUnknown(s?.canonicalName),
    source_canonical_revision: orUnknown(s?.canonicalRevision),
    source_workload_namespace: orUnknown(s?.namespace),
    source_principal: orUnknown(f.sourceIdentity),
    source_app: orUnknown(s?.canonicalName),
    source_version: orUnknown(s?.canonicalRevision),
    source_cluster: orUnknown(s?.clusterId),
    destination_service: orUnknown(svc?.hostname),
    destination_service_namespace: orUnknown(svc?.namespace),
    destination_service_name: orUnknown(svc?.name),
    destination_workload: orUnknown(d?.workloadName),
    destination_canonical_service: orUnknown(d?.canonicalName),
    destination_canonical_revision: orUnknown(d?.canonicalRevision),
    destination_workload_namespace: orUnknown(d?.namespace),
    destination_principal: orUnknown(f.destinationIdentity ?? workloadIdentity(d)),
    destination_app: orUnknown(d?.canonicalName),
    destination_version: orUnknown(d?.canonicalRevision),
    destination_cluster: orUnknown(d?.clusterId),
    request_protocol: 'tcp',
    response_flags: f.responseFlags ?? RESPONSE_FLAGS.none,
    connection_security_policy: f.securityPolicy,
  };
  // Istio adds the four locality labels only when locality is known. Adding them only then keeps the common
  // case (no topology labels on nodes) to exactly TCP_METRIC_LABELS.
  if (s?.locality?.region || s?.locality?.zone || d?.locality?.region || d?.locality?.zone) {
    labels.source_region = orUnknown(s?.locality?.region);
    labels.source_zone = orUnknown(s?.locality?.zone);
    labels.destination_region = orUnknown(d?.locality?.region);
    labels.destination_zone = orUnknown(d?.locality?.zone);
  }
  return labels as TrafficLabels;
}

/** An open connection whose byte counts are folded into the counters when the registry is scraped. */
export interface LiveByteSource {
  flushBytes(): void;
}

export interface ConnectionMetrics {
  readonly registry: Registry;
  readonly opened: Counter<TrafficLabelName>;
  readonly closed: Counter<TrafficLabelName>;
  readonly failed: Counter<TrafficLabelName>;
  readonly sentBytes: Counter<TrafficLabelName>;
  readonly receivedBytes: Counter<TrafficLabelName>;
  readonly socketsOpen: Gauge<'reporter'>;
  /** Registers a live connection until the returned function is called. */
  track(conn: LiveByteSource): () => void;
}

export interface ConnectionMetricsOptions {
  /** `istio_build{component}`; default `ztunnel`, which dashboards filter on. */
  readonly component?: string;
  /** `istio_build{tag}`: the build's version; default `unknown`. */
  readonly tag?: string;
}

const ALL_LABELS: TrafficLabelName[] = [...TCP_METRIC_LABELS, ...LOCALITY_LABELS];

/**
 * Registers the TCP families, `istio_tcp_sockets_open` and `istio_build` on the process registry (never the
 * global one). Call once per registry: prom-client refuses a second registration of a name.
 */
export function createConnectionMetrics(registry: Registry, options: ConnectionMetricsOptions = {}): ConnectionMetrics {
  const live = new Set<LiveByteSource>();
  // Byte counts are kept on each connection and folded in at scrape time rather than counted per chunk: a
  // labelled prom-client inc() hashes the whole label object, far more than the copy loop should pay per read.
  const flushLive = (): void => {
    for (const c of live) c.flushBytes();
  };
  const counter = (name: string, help: string, collect?: () => void): Counter<TrafficLabelName> =>
    new Counter({ name, help, labelNames: ALL_LABELS, registers: [registry], ...(collect ? { collect } : {}) });

  const opened = counter(METRICS.tcpConnectionsOpened, 'The total number of TCP connections opened');
  const closed = counter(METRICS.tcpConnectionsClosed, 'The total number of TCP connections closed');
  const failed = counter(METRICS.tcpConnectionsFailed, 'The total number of TCP connections that failed to establish or ended in an error');
  const receivedBytes = counter(
    METRICS.tcpReceivedBytes, 'The size of total bytes received during request in case of a TCP connection', flushLive,
  );
  const sentBytes = counter(
    METRICS.tcpSentBytes, 'The size of total bytes sent during response in case of a TCP connection', flushLive,
  );
  const socketsOpen = new Gauge({
    name: METRICS.tcpSocketsOpen, help: 'The number of TCP connections currently open', labelNames: ['reporter'],
    registers: [registry],
  });
  const build = new Gauge({
    name: METRICS.build, help: 'Istio component build info', labelNames: ['component', 'tag'], registers: [registry],
  });
  // Both series exist from the start so a dashboard shows 0 rather than no data on an idle node.
  socketsOpen.set({ reporter: REPORTER.source }, 0);
  socketsOpen.set({ reporter: REPORTER.destination }, 0);
  build.set({ component: options.component ?? 'ztunnel', tag: options.tag ?? UNKNOWN }, 1);

  return {
    registry, opened, closed, failed, sentBytes, receivedBytes, socketsOpen,
    track(conn) {
      live.add(conn);
      return () => {
        live.delete(conn);
      };
    },
  };
}
