// Tracing for the waypoint: B3 (multi and single header) and W3C trace context, Envoy's sampling decision, span ids,
// Zipkin v2 spans and a batching exporter, configured from Telemetry objects and MeshConfig's provider table.
import type { KubeObject } from '@ambit/api';
import { DiagnosticSink, type PolicyDiagnostic } from './diagnostics.js';
import { headerValue, isRecord } from './fields.js';

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

const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const ZERO = /^0+$/;

function validTraceId(id: string): boolean { return (HEX16.test(id) || HEX32.test(id)) && !ZERO.test(id); }
function validSpanId(id: string): boolean { return HEX16.test(id) && !ZERO.test(id); }

function parseB3Sampled(v: string | undefined): { sampled?: boolean; debug?: boolean } {
  if (v === undefined) return {};
  const t = v.trim().toLowerCase();
  if (t === '1' || t === 'true') return { sampled: true };
  if (t === '0' || t === 'false') return { sampled: false };
  if (t === 'd') return { sampled: true, debug: true };
  return {};
}

function extractB3Multi(headers: Headers): { context?: SpanContext; sampled?: boolean; debug?: boolean } | undefined {
  const traceId = headerValue(headers, 'x-b3-traceid')?.trim().toLowerCase();
  const spanId = headerValue(headers, 'x-b3-spanid')?.trim().toLowerCase();
  const decision = parseB3Sampled(headerValue(headers, 'x-b3-sampled'));
  const debug = headerValue(headers, 'x-b3-flags')?.trim() === '1';
  if (debug) { decision.sampled = true; decision.debug = true; }
  if (traceId === undefined && spanId === undefined) return decision.sampled === undefined ? undefined : decision;
  if (!traceId || !spanId || !validTraceId(traceId) || !validSpanId(spanId)) return undefined;
  const parent = headerValue(headers, 'x-b3-parentspanid')?.trim().toLowerCase();
  const context: SpanContext = {
    traceId, spanId,
    ...(parent && validSpanId(parent) ? { parentSpanId: parent } : {}),
    ...(decision.sampled !== undefined ? { sampled: decision.sampled } : {}),
    ...(decision.debug ? { debug: true } : {}),
  };
  return { context, ...decision };
}

function extractB3Single(headers: Headers): { context?: SpanContext; sampled?: boolean; debug?: boolean } | undefined {
  const v = headerValue(headers, 'b3')?.trim().toLowerCase();
  if (!v) return undefined;
  const parts = v.split('-');
  if (parts.length === 1) { const d = parseB3Sampled(parts[0]); return d.sampled === undefined ? undefined : d; }
  const [traceId, spanId, flag, parent] = parts as [string, string, string?, string?];
  if (!validTraceId(traceId) || !validSpanId(spanId) || parts.length > 4) return undefined;
  const d = parseB3Sampled(flag);
  if (flag !== undefined && d.sampled === undefined) return undefined;
  if (parent !== undefined && !validSpanId(parent)) return undefined;
  const context: SpanContext = {
    traceId, spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    ...(d.sampled !== undefined ? { sampled: d.sampled } : {}),
    ...(d.debug ? { debug: true } : {}),
  };
  return { context, ...d };
}

function extractW3c(headers: Headers): { context: SpanContext; sampled: boolean } | undefined {
  const v = headerValue(headers, 'traceparent')?.trim().toLowerCase();
  if (!v) return undefined;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(v);
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const [, , traceId, spanId, flags] = m as unknown as [string, string, string, string, string];
  if (ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  const sampled = (parseInt(flags, 16) & 1) === 1;
  const tracestate = headerValue(headers, 'tracestate');
  return { context: { traceId, spanId, sampled, ...(tracestate ? { tracestate } : {}) }, sampled };
}

/** Reads B3 multi (x-b3-*), B3 single (`b3`) and W3C (`traceparent`/`tracestate`); B3 wins when both are valid
 * (Envoy's Zipkin tracer reads B3 first). `sampled` alone is returned for `b3: 0|1|d` or `x-b3-sampled` without ids. */
export function extractTraceContext(headers: Headers): { readonly context?: SpanContext; readonly sampled?: boolean; readonly format?: 'b3' | 'b3-single' | 'w3c' } {
  const multi = extractB3Multi(headers);
  if (multi?.context) return { context: withState(multi.context, headers), ...(multi.sampled !== undefined ? { sampled: multi.sampled } : {}), format: 'b3' };
  const single = extractB3Single(headers);
  if (single?.context) return { context: withState(single.context, headers), ...(single.sampled !== undefined ? { sampled: single.sampled } : {}), format: 'b3-single' };
  const w3c = extractW3c(headers);
  if (w3c) return { context: w3c.context, sampled: w3c.sampled, format: 'w3c' };
  const decision = multi?.sampled ?? single?.sampled;
  return decision !== undefined ? { sampled: decision } : {};
}

function withState(ctx: SpanContext, headers: Headers): SpanContext {
  const tracestate = headerValue(headers, 'tracestate');
  return tracestate ? { ...ctx, tracestate } : ctx;
}

/** The headers to send upstream for `context`: B3 multi plus W3C traceparent (a 64-bit trace id is left-padded),
 * tracestate when known. */
export function injectTraceContext(context: SpanContext): Record<string, string> {
  const out: Record<string, string> = { 'x-b3-traceid': context.traceId, 'x-b3-spanid': context.spanId };
  if (context.parentSpanId) out['x-b3-parentspanid'] = context.parentSpanId;
  if (context.debug) out['x-b3-flags'] = '1';
  else if (context.sampled !== undefined) out['x-b3-sampled'] = context.sampled ? '1' : '0';
  out.traceparent = `00-${context.traceId.padStart(32, '0')}-${context.spanId}-${context.sampled ? '01' : '00'}`;
  if (context.tracestate) out.tracestate = context.tracestate;
  return out;
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
 * merge by tag name. Of `tracing[]`, entries with `match.mode` SERVER, CLIENT_AND_SERVER or no match apply.
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
  const root = options.rootNamespace ?? 'istio-system';
  const diagnostics: PolicyDiagnostic[] = [];
  const unscoped = (t: KubeObject) => !isRecord(t.spec) || (t.spec.selector === undefined && t.spec.targetRef === undefined && t.spec.targetRefs === undefined);
  const targetsWaypoint = (t: KubeObject) => {
    if (!isRecord(t.spec) || t.metadata.namespace !== options.waypoint.namespace) return false;
    const refs: unknown[] = [...(Array.isArray(t.spec.targetRefs) ? t.spec.targetRefs : []), ...(t.spec.targetRef ? [t.spec.targetRef] : [])];
    return refs.some((r) => isRecord(r) && r.kind === 'Gateway' && r.name === options.waypoint.name);
  };
  const byName = (a: KubeObject, b: KubeObject) => (a.metadata.name < b.metadata.name ? -1 : 1);
  const ordered = [
    ...telemetries.filter((t) => t.metadata.namespace === root && unscoped(t)).sort(byName),
    ...(options.waypoint.namespace !== root ? telemetries.filter((t) => t.metadata.namespace === options.waypoint.namespace && unscoped(t)).sort(byName) : []),
    ...telemetries.filter(targetsWaypoint).sort(byName),
  ];
  let providers = [...(options.defaultProviders ?? [])];
  let pct = options.defaultSamplingPercentage ?? 1;
  let disable = false;
  const tags = new Map<string, CustomTag>();
  for (const t of ordered) {
    const sink = new DiagnosticSink({ kind: 'Telemetry', metadata: t.metadata });
    const list: unknown[] = isRecord(t.spec) && Array.isArray(t.spec.tracing) ? t.spec.tracing : [];
    list.forEach((entry, i) => {
      const at = `spec.tracing[${i}]`;
      if (!isRecord(entry)) { sink.error(at, 'must be an object'); return; }
      const mode = isRecord(entry.match) ? entry.match.mode : undefined;
      if (mode !== undefined && mode !== 'SERVER' && mode !== 'CLIENT_AND_SERVER') return;
      if (Array.isArray(entry.providers)) {
        providers = entry.providers.filter((p: unknown) => isRecord(p) && typeof p.name === 'string').map((p: any) => p.name as string);
        if (providers.length > 1) sink.warning(`${at}.providers`, 'only the first tracing provider is used (as Istio)');
      }
      if (entry.randomSamplingPercentage !== undefined) {
        const v = entry.randomSamplingPercentage;
        if (typeof v !== 'number' || v < 0 || v > 100) sink.error(`${at}.randomSamplingPercentage`, `must be 0..100, got ${JSON.stringify(v)}`);
        else pct = v;
      }
      if (entry.disableSpanReporting !== undefined) disable = entry.disableSpanReporting === true;
      if (isRecord(entry.customTags)) {
        for (const [tag, spec] of Object.entries(entry.customTags)) {
          const ct = readCustomTag(tag, spec, `${at}.customTags.${tag}`, sink);
          if (ct) tags.set(tag, ct);
        }
      }
      if (entry.useRequestIdForTraceSampling !== undefined) sink.warning(`${at}.useRequestIdForTraceSampling`, 'ignored: sampling uses the incoming decision or the random percentage');
    });
    diagnostics.push(...sink.items);
  }
  const name = providers[0];
  const provider = name !== undefined ? options.providers[name] : undefined;
  if (name !== undefined && !provider) {
    diagnostics.push({ object: 'MeshConfig', field: 'extensionProviders', message: `tracing provider ${JSON.stringify(name)} is not defined; tracing is off`, severity: 'error' });
  }
  return {
    providers,
    ...(provider ? { provider } : {}),
    randomSamplingPercentage: pct,
    customTags: [...tags.values()],
    disableSpanReporting: disable || !provider,
    diagnostics,
  };
}

function readCustomTag(tag: string, spec: unknown, at: string, sink: DiagnosticSink): CustomTag | undefined {
  if (isRecord(spec) && isRecord(spec.literal) && typeof spec.literal.value === 'string') return { tag, literal: spec.literal.value };
  if (isRecord(spec) && isRecord(spec.header) && typeof spec.header.name === 'string') {
    return { tag, header: { name: spec.header.name.toLowerCase(), ...(typeof spec.header.defaultValue === 'string' ? { defaultValue: spec.header.defaultValue } : {}) } };
  }
  if (isRecord(spec) && isRecord(spec.environment) && typeof spec.environment.name === 'string') {
    return { tag, environment: { name: spec.environment.name, ...(typeof spec.environment.defaultValue === 'string' ? { defaultValue: spec.environment.defaultValue } : {}) } };
  }
  sink.error(at, 'must be one of literal {value}, header {name, defaultValue} or environment {name, defaultValue}');
  return undefined;
}

/**
 * Envoy's decision: an incoming sampled flag (x-b3-sampled, b3 single, traceparent flags) is honoured; debug
 * forces sampling; otherwise `random() * 100 < randomSamplingPercentage`.
 */
export function decideSampling(incoming: Pick<SpanContext, 'sampled' | 'debug'> | undefined, percentage: number, random: () => number): boolean {
  if (incoming?.debug) return true;
  if (incoming?.sampled !== undefined) return incoming.sampled;
  if (percentage <= 0) return false;
  if (percentage >= 100) return true;
  return random() * 100 < percentage;
}

function hex32(random: () => number): string {
  return Math.floor(random() * 0x1_0000_0000).toString(16).padStart(8, '0');
}

/** New 64-bit span id / 128-bit trace id in hex from `random` (never all zeros). */
export function newSpanId(random: () => number): string {
  const id = hex32(random) + hex32(random);
  return ZERO.test(id) ? '0000000000000001' : id;
}
export function newTraceId(random: () => number): string {
  const id = hex32(random) + hex32(random) + hex32(random) + hex32(random);
  return ZERO.test(id) ? '00000000000000000000000000000001' : id;
}

/**
 * The waypoint's server span for a request: continues the incoming trace (or starts one) with a new span id, and
 * the context to propagate upstream. Tags from customTags are added with `customTagValues`.
 */
export function startServerSpan(incoming: SpanContext | undefined, sampled: boolean, random: () => number): SpanContext {
  if (!incoming) return { traceId: newTraceId(random), spanId: newSpanId(random), sampled };
  return {
    traceId: incoming.traceId,
    spanId: newSpanId(random),
    parentSpanId: incoming.spanId,
    sampled,
    ...(incoming.debug ? { debug: true } : {}),
    ...(incoming.tracestate ? { tracestate: incoming.tracestate } : {}),
  };
}

/** Custom tag values for a request (literal, header with default, environment with default); unset ones omitted. */
export function customTagValues(tags: readonly CustomTag[], headers: Headers, env: Readonly<Record<string, string | undefined>> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags) {
    let v: string | undefined;
    if ('literal' in t) v = t.literal;
    else if ('header' in t) v = headerValue(headers, t.header.name) ?? t.header.defaultValue;
    else v = env[t.environment.name] ?? t.environment.defaultValue;
    if (v !== undefined) out[t.tag] = v;
  }
  return out;
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

/**
 * Batches spans and POSTs them as a Zipkin v2 JSON array. Bounded: beyond `maxQueue` the oldest spans are dropped
 * (counted). A full batch triggers a send; the timer sends the rest. Failures are logged and counted, never thrown;
 * the failed batch is dropped (the collector may be down for long; spans are not worth unbounded memory).
 */
export function createZipkinExporter(options: ZipkinExporterOptions): ZipkinExporter {
  const batchSize = options.batchSize ?? 100;
  const maxQueue = options.maxQueue ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const queue: Span[] = [];
  let sent = 0;
  let dropped = 0;
  let failedPosts = 0;
  let chain: Promise<void> = Promise.resolve();
  let closed = false;

  async function post(batch: Span[]): Promise<void> {
    try {
      const res = await fetch(options.url, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch), signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
      if (res.status < 200 || res.status >= 300) throw new Error(`collector answered ${res.status}`);
      sent += batch.length;
    } catch (e) {
      failedPosts++;
      dropped += batch.length;
      options.logger?.warn({ url: options.url, spans: batch.length, err: (e as Error).message }, 'zipkin span export failed');
    }
  }
  const flush = (): Promise<void> => {
    chain = chain.then(async () => {
      while (queue.length > 0) await post(queue.splice(0, batchSize));
    });
    return chain;
  };
  const timer = setInterval(() => { if (queue.length > 0) void flush(); }, options.flushIntervalMs ?? 1000);
  timer.unref();

  return {
    export(span) {
      if (closed) { dropped++; return; }
      queue.push(span);
      if (queue.length > maxQueue) { queue.shift(); dropped++; }
      if (queue.length === batchSize) void flush();
    },
    flush,
    async close() {
      closed = true;
      clearInterval(timer);
      await flush();
    },
    stats: () => ({ queued: queue.length, sent, dropped, failedPosts }),
  };
}
