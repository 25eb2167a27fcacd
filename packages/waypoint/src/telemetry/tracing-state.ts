// Tracing in force: the Telemetry objects (tracing providers, randomSamplingPercentage, customTags) merged by
// policy/tracing.ts over the mesh settings (AMBIT_TRACING_*), rebuilt only when Telemetry objects change. Per request:
// the incoming B3 / W3C context is continued (or a trace starts), the sampling decision is made, the upstream
// request carries B3 and traceparent for the waypoint's span, and a SERVER span is exported as Zipkin v2 JSON when
// the request finishes.
import type { Logger } from 'pino';
import type { KubeObject } from '@ambit/api';
import {
  createZipkinExporter, customTagValues, decideSampling, extractTraceContext, injectTraceContext, resolveTracingConfig, startServerSpan,
  type Span, type SpanContext, type TracingConfig, type ZipkinExporter,
} from '../policy/index.js';
import type { WaypointTracing } from '../config/load.js';
import type { ConfigStore } from '../state/config-store.js';
import type { HeaderMap } from '../proxy/headers.js';
import type { RequestResult } from './request-telemetry.js';

/** Trace headers the waypoint replaces with its own span's context. */
const TRACE_HEADERS = ['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'b3', 'traceparent', 'tracestate'] as const;

export interface TracingRequest {
  readonly method: string;
  /** Path with query, as received. */
  readonly path: string;
  readonly authority: string;
  readonly protocol: string;
  readonly sourceAddress: string;
  readonly requestId: string;
  readonly userAgent?: string;
}

export interface TracingState {
  /** The merged configuration in force (the config dump shows it). */
  config(): TracingConfig;
  /**
   * Starts the waypoint's span for one request: rewrites the trace headers in `headers` (sent upstream) and exports
   * the span when `result` finishes. Returns the span context, or undefined when tracing is off.
   */
  start(headers: HeaderMap, request: TracingRequest, result: RequestResult): SpanContext | undefined;
  stats(): { readonly exporters: Record<string, ReturnType<ZipkinExporter['stats']>> };
  close(): Promise<void>;
}

export interface TracingStateOptions {
  readonly store: ConfigStore;
  readonly mesh: WaypointTracing;
  readonly waypoint: { readonly namespace: string; readonly name: string };
  /** Root namespace of mesh-wide Telemetry (Istio's istio-system). */
  readonly rootNamespace?: string;
  readonly instanceIp: string;
  /** Values for customTags `environment` (the waypoint's environment). */
  readonly environment: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly random?: () => number;
  /** Exporter flush period (tests shorten it). */
  readonly flushIntervalMs?: number;
}

export function createTracingState(options: TracingStateOptions): TracingState {
  const log = options.logger.child({ component: 'tracing' });
  const random = options.random ?? Math.random;
  const exporters = new Map<string, ZipkinExporter>();
  let telemetryText = '';
  let current: TracingConfig = build([]);

  function build(telemetries: KubeObject[]): TracingConfig {
    const cfg = resolveTracingConfig(telemetries, {
      waypoint: options.waypoint, providers: options.mesh.providers, defaultProviders: options.mesh.defaultProviders,
      defaultSamplingPercentage: options.mesh.defaultSamplingPercentage, ...(options.rootNamespace ? { rootNamespace: options.rootNamespace } : {}),
    });
    for (const d of cfg.diagnostics) log.warn({ object: d.object, field: d.field, severity: d.severity }, d.message);
    return cfg;
  }
  const refresh = (): void => {
    const telemetries = options.store.objectsOfKind('Telemetry');
    const text = JSON.stringify(telemetries.map((t) => [t.metadata.namespace, t.metadata.name, t.metadata.labels, t.spec]));
    if (text === telemetryText) return;
    telemetryText = text;
    current = build(telemetries);
    log.info({ providers: current.providers, sampling: current.randomSamplingPercentage, reporting: !current.disableSpanReporting }, 'tracing configuration');
  };
  refresh();
  options.store.onChange(refresh);

  function exporterFor(url: string): ZipkinExporter {
    let e = exporters.get(url);
    if (!e) {
      e = createZipkinExporter({ url, logger: log, ...(options.flushIntervalMs ? { flushIntervalMs: options.flushIntervalMs } : {}) });
      exporters.set(url, e);
    }
    return e;
  }

  const localServiceName = `${options.waypoint.name}.${options.waypoint.namespace}`;

  return {
    config: () => current,
    start(headers, request, result) {
      const cfg = current;
      const provider = cfg.provider;
      // No provider: Envoy's tracer is off; trace headers pass through untouched.
      if (!provider) return undefined;
      const incoming = extractTraceContext(headers);
      const sampled = decideSampling(incoming.context ?? (incoming.sampled !== undefined ? { sampled: incoming.sampled } : undefined), cfg.randomSamplingPercentage, random);
      const span = startServerSpan(incoming.context, sampled, random);
      for (const h of TRACE_HEADERS) delete headers[h];
      Object.assign(headers, injectTraceContext(span));
      if (!sampled || cfg.disableSpanReporting) return span;
      const exporter = exporterFor(provider.url);
      const custom = customTagValues(cfg.customTags, headers, options.environment);
      const max = provider.maxTagLength ?? 256;
      result.onFinish((f) => {
        const fields = result.fields;
        const tags: Record<string, string> = {
          component: 'proxy',
          'http.method': request.method,
          'http.url': `http://${request.authority}${request.path}`,
          'http.protocol': request.protocol,
          'http.status_code': String(f.status),
          response_flags: result.responseFlags(),
          upstream_cluster: fields.upstreamCluster ?? '-',
          'upstream_cluster.name': fields.upstreamCluster ?? '-',
          request_size: String(result.requestBytes),
          response_size: String(result.responseBytes),
          'guid:x-request-id': request.requestId,
          'istio.namespace': options.waypoint.namespace,
          'istio.canonical_service': options.waypoint.name,
          'peer.address': request.sourceAddress,
          ...(request.userAgent ? { user_agent: request.userAgent } : {}),
          ...(fields.upstreamHost ? { 'upstream.address': fields.upstreamHost } : {}),
          ...(f.grpcStatus !== undefined ? { 'grpc.status_code': f.grpcStatus } : {}),
          ...(f.status >= 500 || f.status === 0 ? { error: 'true' } : {}),
          ...custom,
        };
        for (const k of Object.keys(tags)) if (tags[k]!.length > max) tags[k] = tags[k]!.slice(0, max);
        const service = fields.destinationService?.hostname;
        const out: Span = {
          traceId: span.traceId, id: span.spanId, ...(span.parentSpanId ? { parentId: span.parentSpanId } : {}),
          // Istio's operation name: the destination host and port with a wildcard path.
          name: `${service ?? request.authority}:${fields.destinationPort ?? ''}/*`,
          kind: 'SERVER',
          timestamp: f.startTime.getTime() * 1000,
          duration: Math.max(1, Math.round(f.durationMs * 1000)),
          localEndpoint: { serviceName: localServiceName, ...(options.instanceIp ? ipField(options.instanceIp) : {}) },
          remoteEndpoint: ipField(request.sourceAddress),
          tags,
          ...(span.debug ? { debug: true } : {}),
        };
        exporter.export(out);
      });
      return span;
    },
    stats() {
      return { exporters: Object.fromEntries([...exporters].map(([url, e]) => [url, e.stats()])) };
    },
    async close() {
      await Promise.all([...exporters.values()].map((e) => e.close()));
      exporters.clear();
    },
  };
}

function ipField(ip: string): { ipv4: string } | { ipv6: string } {
  return ip.includes(':') ? { ipv6: ip } : { ipv4: ip };
}
