import type { KubeObject } from '@ambit/api';
import type { PolicyDiagnostic } from './diagnostics.js';

/** A trace position: ids are lower-case hex (trace 32 or 16 chars, span 16). */
export interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  /** undefined: no decision was propagated. */
  readonly sampled?: boolean;
  /** B3 `x-b3-flags: 1` / `b3: ...-d`. */
  readonly debug?: boolean;
  /** W3C tracestate, passed through unchanged. */
  readonly tracestate?: string;
}

export type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Reads B3 multi (x-b3-*), B3 single (`b3`) and W3C (`traceparent`/`tracestate`); B3 wins when both are valid. */
export function extractTraceContext(headers: Headers): { readonly context?: SpanContext; readonly sampled?: boolean; readonly format?: 'b3' | 'b3-single' | 'w3c' } {
  void headers;
  throw new Error('extractTraceContext: implementation lands in the next commit');
}

/** The headers to send upstream for `context` (B3 multi plus W3C traceparent, tracestate when known). */
export function injectTraceContext(context: SpanContext): Record<string, string> {
  void context;
  throw new Error('injectTraceContext: implementation lands in the next commit');
}

export interface Endpoint {
  readonly serviceName?: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  readonly port?: number;
}

/** Zipkin v2 span (timestamps and durations in microseconds). */
export interface Span {
  readonly traceId: string;
  readonly id: string;
  readonly parentId?: string;
  readonly name: string;
  readonly kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  readonly timestamp: number;
  readonly duration: number;
  readonly localEndpoint?: Endpoint;
  readonly remoteEndpoint?: Endpoint;
  readonly tags?: Readonly<Record<string, string>>;
  readonly debug?: boolean;
  readonly shared?: boolean;
}

/** A tracing provider from MeshConfig extensionProviders (the caller passes the table by name). */
export interface TracingProvider {
  readonly kind: 'zipkin';
  /** e.g. `http://zipkin.istio-system:9411/api/v2/spans`. */
  readonly url: string;
  readonly maxTagLength?: number;
}

export type CustomTag =
  | { readonly tag: string; readonly literal: string }
  | { readonly tag: string; readonly header: { readonly name: string; readonly defaultValue?: string } }
  | { readonly tag: string; readonly environment: { readonly name: string; readonly defaultValue?: string } };

/** The tracing configuration in effect for this waypoint. */
export interface TracingConfig {
  /** Provider names in order (Istio uses the first); empty: tracing off. */
  readonly providers: readonly string[];
  readonly provider?: TracingProvider;
  /** 0..100; Istio's default 1 (meshConfig defaultConfig.tracing.sampling). */
  readonly randomSamplingPercentage: number;
  readonly customTags: readonly CustomTag[];
  readonly disableSpanReporting: boolean;
  readonly diagnostics: readonly PolicyDiagnostic[];
}

/**
 * Merges Telemetry objects for the waypoint: root namespace (no selector/targetRefs), then the waypoint's namespace
 * (no selector/targetRefs), then those targeting the waypoint Gateway; later fields override earlier, custom tags
 * merge by tag name.
 */
export function resolveTracingConfig(
  telemetries: readonly KubeObject[],
  options: {
    readonly waypoint: { readonly namespace: string; readonly name: string };
    readonly providers: Readonly<Record<string, TracingProvider>>;
    readonly rootNamespace?: string;
    /** meshConfig.defaultProviders.tracing. */
    readonly defaultProviders?: readonly string[];
    /** Default 1. */
    readonly defaultSamplingPercentage?: number;
  },
): TracingConfig {
  void telemetries; void options;
  throw new Error('resolveTracingConfig: implementation lands in the next commit');
}

/**
 * Envoy's decision: an incoming sampled flag (x-b3-sampled, b3 single, traceparent flags) is honoured; debug
 * forces sampling; otherwise `random() * 100 < randomSamplingPercentage`.
 */
export function decideSampling(incoming: SpanContext | undefined, percentage: number, random: () => number): boolean {
  void incoming; void percentage; void random;
  throw new Error('decideSampling: implementation lands in the next commit');
}

/** New 64-bit span id / 128-bit trace id in hex from `random` (never all zeros). */
export function newSpanId(random: () => number): string {
  void random;
  throw new Error('newSpanId: implementation lands in the next commit');
}
export function newTraceId(random: () => number): string {
  void random;
  throw new Error('newTraceId: implementation lands in the next commit');
}

/**
 * The waypoint's server span for a request: continues the incoming trace (or starts one) with a new span id, and
 * the context to propagate upstream. Tags from customTags are added by `finishSpan`.
 */
export function startServerSpan(incoming: SpanContext | undefined, sampled: boolean, random: () => number): SpanContext {
  void incoming; void sampled; void random;
  throw new Error('startServerSpan: implementation lands in the next commit');
}

/** Custom tag values for a request (literal, header with default, environment with default). */
export function customTagValues(tags: readonly CustomTag[], headers: Headers, env?: Readonly<Record<string, string | undefined>>): Record<string, string> {
  void tags; void headers; void env;
  throw new Error('customTagValues: implementation lands in the next commit');
}

export interface ExporterLogger {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface ZipkinExporterOptions {
  readonly url: string;
  /** Spans per POST. Default 100. */
  readonly batchSize?: number;
  /** Spans held while the collector is slow; older ones beyond this are dropped (counted). Default 10000. */
  readonly maxQueue?: number;
  /** Flush period. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Per-POST timeout. Default 5000 ms. */
  readonly timeoutMs?: number;
  readonly logger?: ExporterLogger;
}

export interface ZipkinExporter {
  /** Queues a span (never throws, never blocks). */
  export(span: Span): void;
  /** Sends what is queued now; resolves when done (errors logged, not thrown). */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  close(): Promise<void>;
  stats(): { readonly queued: number; readonly sent: number; readonly dropped: number; readonly failedPosts: number };
}

export function createZipkinExporter(options: ZipkinExporterOptions): ZipkinExporter {
  void options;
  throw new Error('createZipkinExporter: implementation lands in the next commit');
}
