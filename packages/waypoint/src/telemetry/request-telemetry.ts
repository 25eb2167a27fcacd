// The waypoint's per-request record (spec §7.4): one RequestResult per request feeds the four istio_request*
// metrics and writes the one access-log line when it finishes, so metrics and log never disagree.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { CONNECTION_SECURITY_POLICY, METRICS, REPORTER, UNKNOWN } from '@ambit/api';
import { deriveTrafficLabels, type ServiceFacts, type WorkloadFacts } from '@ambit/ztunnel';

/** Envoy's response flags (short form) the waypoint sets. */
export const RESPONSE_FLAG = Object.freeze({
  none: '-',
  /** no route configured */
  noRoute: 'NR',
  /** no healthy upstream */
  noHealthyUpstream: 'UH',
  /** upstream connection failure */
  upstreamConnectionFailure: 'UF',
  /** upstream retry limit exceeded */
  upstreamRetryLimitExceeded: 'URX',
  /** upstream overflow (circuit breaking) */
  upstreamOverflow: 'UO',
  /** request delayed by fault injection */
  delayInjected: 'DI',
  /** request aborted by fault injection */
  faultInjected: 'FI',
  /** upstream request timeout */
  upstreamRequestTimeout: 'UT',
  /** upstream connection termination */
  upstreamConnectionTermination: 'UC',
  /** downstream connection termination */
  downstreamConnectionTermination: 'DC',
  /** downstream protocol error */
  downstreamProtocolError: 'DPE',
  /** denied by RBAC (AuthorizationPolicy) */
  rbacDenied: 'RBAC',
  /** rate limited */
  rateLimited: 'RL',
  /** request stopped by a plugin (local reply) */
  localReply: 'LR',
} as const);
export type ResponseFlag = (typeof RESPONSE_FLAG)[keyof typeof RESPONSE_FLAG];

/** Istio's (Envoy's default) buckets for istio_request_duration_milliseconds. */
export const DURATION_BUCKETS_MS = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);
/** Istio's buckets for istio_request_bytes / istio_response_bytes. */
export const SIZE_BUCKETS_BYTES = Object.freeze([1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000]);

const REQUEST_LABELS = [
  'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster', 'destination_service', 'destination_service_namespace',
  'destination_service_name', 'destination_workload', 'destination_canonical_service', 'destination_canonical_revision',
  'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version', 'destination_cluster',
  'destination_port', 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const;
type RequestLabel = (typeof REQUEST_LABELS)[number];

export interface RequestMetrics {
  readonly requests: Counter<RequestLabel>;
  readonly duration: Histogram<RequestLabel>;
  readonly requestBytes: Histogram<RequestLabel>;
  readonly responseBytes: Histogram<RequestLabel>;
}

export function createRequestMetrics(registry: Registry): RequestMetrics {
  const labelNames = [...REQUEST_LABELS];
  return {
    requests: new Counter({ name: METRICS.requestsTotal, help: 'Total number of requests', labelNames, registers: [registry] }),
    duration: new Histogram({ name: METRICS.requestDurationMs, help: 'Request duration in milliseconds', labelNames, buckets: [...DURATION_BUCKETS_MS], registers: [registry] }),
    requestBytes: new Histogram({ name: METRICS.requestBytes, help: 'Request size in bytes', labelNames, buckets: [...SIZE_BUCKETS_BYTES], registers: [registry] }),
    responseBytes: new Histogram({ name: METRICS.responseBytes, help: 'Response size in bytes', labelNames, buckets: [...SIZE_BUCKETS_BYTES], registers: [registry] }),
  };
}

/** What is known when the request starts. */
export interface RequestStart {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly grpc: boolean;
  readonly requestId: string;
  readonly sourceAddress: string;
  readonly sourceIdentity?: string;
  readonly sourceWorkload?: WorkloadFacts;
  readonly userAgent?: string;
  readonly xForwardedFor?: string;
  /** The CONNECT :authority the request arrived in. */
  readonly hboneAuthority: string;
}

export interface RequestResultFields {
  destinationService?: ServiceFacts;
  destinationWorkload?: WorkloadFacts;
  destinationIdentity?: string;
  destinationPort?: number;
  upstreamHost?: string;
  upstreamCluster?: string;
  routeName?: string;
  attempts?: number;
  upstreamServiceTimeMs?: number;
  upstreamFailureReason?: string;
}

export interface FinishedRequest {
  readonly status: number;
  readonly grpcStatus?: string;
  readonly durationMs: number;
  readonly startTime: Date;
}

/** The per-request record; `finish` is idempotent and writes metrics and the access line once. */
export class RequestResult {
  private readonly startedAt = performance.now();
  /** Wall clock at the start (ms); a Date only for those who ask (access line, spans). */
  private readonly startEpochMs = Date.now();
  // The common request has no flag and no finisher: neither is allocated for it.
  private flags: ResponseFlag[] | undefined;
  private done = false;
  private finishers: Array<(f: FinishedRequest) => void> | undefined;
  readonly fields: RequestResultFields = {};
  requestBytes = 0;
  responseBytes = 0;
  /** Where the request byte count comes from at finish (the body reader counts it). */
  requestBytesFrom: (() => number) | undefined;

  constructor(private readonly sink: RequestTelemetry, readonly start: RequestStart) {}

  flag(f: ResponseFlag): void {
    if (f === RESPONSE_FLAG.none) return;
    if (!this.flags) this.flags = [f];
    else if (!this.flags.includes(f)) this.flags.push(f);
  }

  responseFlags(): string {
    return this.flags ? this.flags.join(',') : RESPONSE_FLAG.none;
  }

  set(fields: RequestResultFields): void {
    Object.assign(this.fields, fields);
  }

  /** Runs `fn` once the request finished, after metrics and the access line (tracing exports its span here). */
  onFinish(fn: (f: FinishedRequest) => void): void {
    (this.finishers ??= []).push(fn);
  }

  get finished(): boolean {
    return this.done;
  }

  finish(status: number, grpcStatus?: string): void {
    if (this.done) return;
    this.done = true;
    if (this.requestBytesFrom) this.requestBytes = this.requestBytesFrom();
    const durationMs = performance.now() - this.startedAt;
    this.sink.record(this, status, grpcStatus, durationMs, this.startEpochMs);
    if (!this.finishers) return;
    const startTime = new Date(this.startEpochMs);
    for (const fn of this.finishers) fn({ status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), durationMs, startTime });
  }
}

export interface RequestTelemetry {
  begin(start: RequestStart): RequestResult;
  /** @internal called by RequestResult.finish; `startEpochMs` is the wall clock at the start. */
  record(r: RequestResult, status: number, grpcStatus: string | undefined, durationMs: number, startEpochMs: number): void;
}

/** The four metrics' children of one label set. */
interface LabelledChildren {
  readonly requests: { inc(): void };
  readonly duration: { observe(v: number): void };
  readonly requestBytes: { observe(v: number): void };
  readonly responseBytes: { observe(v: number): void };
}

/** Label sets kept; past it the cache starts over (a bound on memory when labels vary a lot, e.g. many sources). */
const MAX_CACHED_LABEL_SETS = 4096;

export function createRequestTelemetry(options: { metrics: RequestMetrics; logger: Logger }): RequestTelemetry {
  const { metrics } = options;
  const access = options.logger;
  // Per request, deriving 26 labels and letting prom-client hash them for each of the four metrics dominated the
  // waypoint's own CPU (bench --profile): the labelled children are looked up once per distinct set of facts.
  // Workload and service facts are state objects, replaced (never changed) on updates: their identity is the key.
  const ids = new WeakMap<object, number>();
  let nextId = 1;
  const idOf = (o: object | undefined): number => {
    if (!o) return 0;
    let id = ids.get(o);
    if (id === undefined) { id = nextId++; ids.set(o, id); }
    return id;
  };
  const children = new Map<string, LabelledChildren>();

  function labelsOf(r: RequestResult, status: number, grpcStatus: string | undefined, flags: string): Record<RequestLabel, string> {
    const s = r.start;
    const f = r.fields;
    const base = deriveTrafficLabels({
      reporter: REPORTER.destination,
      ...(s.sourceWorkload ? { sourceWorkload: s.sourceWorkload } : {}),
      ...(s.sourceIdentity ? { sourceIdentity: s.sourceIdentity } : {}),
      ...(f.destinationService ? { destinationService: f.destinationService } : {}),
      ...(f.destinationWorkload ? { destinationWorkload: f.destinationWorkload } : {}),
      ...(f.destinationIdentity ? { destinationIdentity: f.destinationIdentity } : {}),
      securityPolicy: s.sourceIdentity ? CONNECTION_SECURITY_POLICY.mutualTls : CONNECTION_SECURITY_POLICY.unknown,
    });
    const labels: Record<RequestLabel, string> = {} as Record<RequestLabel, string>;
    for (const k of REQUEST_LABELS) {
      switch (k) {
        case 'reporter': labels[k] = REPORTER.waypoint; break;
        case 'destination_port': labels[k] = f.destinationPort ? String(f.destinationPort) : UNKNOWN; break;
        case 'request_protocol': labels[k] = s.grpc ? 'grpc' : 'http'; break;
        case 'response_code': labels[k] = String(status); break;
        case 'grpc_response_status': labels[k] = s.grpc ? grpcStatus ?? UNKNOWN : ''; break;
        case 'response_flags': labels[k] = flags; break;
        default: labels[k] = (base as Record<string, string>)[k] ?? UNKNOWN;
      }
    }
    return labels;
  }

  function childrenFor(r: RequestResult, status: number, grpcStatus: string | undefined, flags: string): LabelledChildren {
    const s = r.start;
    const f = r.fields;
    const svc = f.destinationService;
    // Every fact a label is derived from, and nothing else.
    const key = `${idOf(s.sourceWorkload)}|${s.sourceIdentity ?? ''}|${svc ? `${svc.hostname}|${svc.namespace}|${svc.name}` : '||'}|${idOf(f.destinationWorkload)}|${f.destinationIdentity ?? ''}|${f.destinationPort ?? 0}|${s.grpc ? 1 : 0}|${status}|${grpcStatus ?? ''}|${flags}`;
    let c = children.get(key);
    if (!c) {
      const labels = labelsOf(r, status, grpcStatus, flags);
      c = {
        requests: metrics.requests.labels(labels),
        duration: metrics.duration.labels(labels),
        requestBytes: metrics.requestBytes.labels(labels),
        responseBytes: metrics.responseBytes.labels(labels),
      };
      if (children.size >= MAX_CACHED_LABEL_SETS) children.clear();
      children.set(key, c);
    }
    return c;
  }

  const telemetry: RequestTelemetry = {
    begin: (start) => new RequestResult(telemetry, start),
    record(r, status, grpcStatus, durationMs, startEpochMs) {
      const flags = r.responseFlags();
      const c = childrenFor(r, status, grpcStatus, flags);
      c.requests.inc();
      c.duration.observe(durationMs);
      c.requestBytes.observe(r.requestBytes);
      c.responseBytes.observe(r.responseBytes);
      // Istio's default has no access log (the benchmark's waypoint runs at warn): build the line only when written.
      if (!access.isLevelEnabled('info')) return;
      const s = r.start;
      const f = r.fields;
      access.info({
        start_time: new Date(startEpochMs).toISOString(),
        method: s.method,
        path: s.path,
        protocol: s.protocol,
        response_code: status,
        ...(s.grpc ? { grpc_status: grpcStatus ?? UNKNOWN } : {}),
        response_flags: flags,
        bytes_received: r.requestBytes,
        bytes_sent: r.responseBytes,
        duration: Math.round(durationMs),
        ...(f.upstreamServiceTimeMs !== undefined ? { upstream_service_time: Math.round(f.upstreamServiceTimeMs) } : {}),
        x_forwarded_for: s.xForwardedFor ?? s.sourceAddress,
        user_agent: s.userAgent ?? '-',
        request_id: s.requestId,
        authority: s.authority,
        upstream_host: f.upstreamHost ?? '-',
        upstream_cluster: f.upstreamCluster ?? '-',
        ...(f.upstreamFailureReason ? { upstream_transport_failure_reason: f.upstreamFailureReason } : {}),
        route_name: f.routeName ?? '-',
        ...(f.attempts && f.attempts > 1 ? { attempts: f.attempts } : {}),
        downstream_peer: s.sourceAddress,
        'src.identity': s.sourceIdentity ?? '-',
        'dst.hbone_addr': s.hboneAuthority,
        'dst.service': f.destinationService?.hostname ?? '-',
      }, 'request complete');
    },
  };
  return telemetry;
}
