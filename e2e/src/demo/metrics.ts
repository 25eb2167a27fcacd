// Prometheus text exposition -> samples, the difference between two scrapes, and the golden signals the demo
// prints: per destination service, request rate, error share and p50/p99 latency from the waypoint's
// istio_requests_total / istio_request_duration_milliseconds (the way Istio's dashboards compute them, with
// histogram_quantile's linear interpolation inside a bucket), and the L4 view from the agents' istio_tcp_*.
import { METRICS, CONNECTION_SECURITY_POLICY, REPORTER } from '@ambit/api';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text format (comments skipped). Throws on a line that is not a sample, naming it. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line.slice(0, 200)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

function key(s: Sample): string {
  return `${s.name}{${Object.entries(s.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',')}}`;
}

/** after - before, per series (counters and histogram buckets; a series new in `after` counts from 0). */
export function diffMetrics(before: readonly Sample[], after: readonly Sample[]): Sample[] {
  const prev = new Map(before.map((s) => [key(s), s.value]));
  return after.map((s) => ({ ...s, value: s.value - (prev.get(key(s)) ?? 0) }));
}

/** histogram_quantile over cumulative buckets (le -> count), with its linear interpolation. */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | undefined {
  const bs = [...buckets.entries()].sort(([a], [b]) => a - b);
  const total = bs.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of bs) {
    if (count >= rank) {
      if (le === Infinity) return prevLe; // Prometheus returns the highest finite bound
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

export interface ServiceSignals {
  service: string;
  requests: number;
  /** requests per second over the window. */
  rate: number;
  /** Share of 5xx answers (0..1). */
  errorRate: number;
  /** Answers by status code. */
  codes: Record<string, number>;
  p50Ms?: number;
  p99Ms?: number;
}

/** Per destination service, from a diff of the waypoint's metrics over `seconds`. */
export function requestSignals(diff: readonly Sample[], seconds: number, reporter: string = REPORTER.waypoint): ServiceSignals[] {
  const by = new Map<string, ServiceSignals & { buckets: Map<number, number> }>();
  const entry = (service: string) => {
    let e = by.get(service);
    if (!e) {
      e = { service, requests: 0, rate: 0, errorRate: 0, codes: {}, buckets: new Map() };
      by.set(service, e);
    }
    return e;
  };
  for (const s of diff) {
    if (s.labels.reporter !== reporter || s.value <= 0) continue;
    const service = s.labels.destination_service_name ?? s.labels.destination_service ?? 'unknown';
    if (s.name === METRICS.requestsTotal) {
      const e = entry(service);
      e.requests += s.value;
      const code = s.labels.response_code ?? 'unknown';
      e.codes[code] = (e.codes[code] ?? 0) + s.value;
    } else if (s.name === `${METRICS.requestDurationMs}_bucket`) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      const b = entry(service).buckets;
      b.set(le, (b.get(le) ?? 0) + s.value);
    }
  }
  return [...by.values()]
    .filter((e) => e.requests > 0)
    .map(({ buckets, ...e }) => {
      const errors = Object.entries(e.codes).filter(([c]) => c.startsWith('5')).reduce((n, [, v]) => n + v, 0);
      const p50 = histogramQuantile(0.5, buckets);
      const p99 = histogramQuantile(0.99, buckets);
      return { ...e, rate: e.requests / seconds, errorRate: errors / e.requests, ...(p50 !== undefined ? { p50Ms: p50 } : {}), ...(p99 !== undefined ? { p99Ms: p99 } : {}) };
    })
    .sort((a, b) => a.service.localeCompare(b.service));
}

export interface ConnectionSignals {
  service: string;
  opened: number;
  /** Connections whose security policy was mutual TLS (0..opened). */
  mutualTls: number;
  failed: number;
  bytesSent: number;
  bytesReceived: number;
}

/** Per destination service, from a diff of the agents' metrics (the destination side's reports). */
export function connectionSignals(diff: readonly Sample[]): ConnectionSignals[] {
  const by = new Map<string, ConnectionSignals>();
  for (const s of diff) {
    if (s.labels.reporter !== REPORTER.destination || s.value <= 0) continue;
    const service = s.labels.destination_service_name && s.labels.destination_service_name !== 'unknown'
      ? s.labels.destination_service_name
      : s.labels.destination_workload ?? 'unknown';
    let e = by.get(service);
    if (!e) {
      e = { service, opened: 0, mutualTls: 0, failed: 0, bytesSent: 0, bytesReceived: 0 };
      by.set(service, e);
    }
    if (s.name === METRICS.tcpConnectionsOpened) {
      e.opened += s.value;
      if (s.labels.connection_security_policy === CONNECTION_SECURITY_POLICY.mutualTls) e.mutualTls += s.value;
    } else if (s.name === METRICS.tcpConnectionsFailed) e.failed += s.value;
    else if (s.name === METRICS.tcpSentBytes) e.bytesSent += s.value;
    else if (s.name === METRICS.tcpReceivedBytes) e.bytesReceived += s.value;
  }
  return [...by.values()].sort((a, b) => a.service.localeCompare(b.service));
}
