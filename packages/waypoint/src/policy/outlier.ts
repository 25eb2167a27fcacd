// Envoy outlier detection (consecutive 5xx and gateway errors) as Istio configures it from DestinationRule
// outlierDetection. Deterministic: the caller passes `now`.
import { DiagnosticSink } from './diagnostics.js';
import { isRecord, readDurationMs, readInt, readPercent, warnUnknownFields } from './fields.js';

/** DestinationRule `trafficPolicy.outlierDetection`, compiled (Istio/Envoy defaults filled in). */
export interface OutlierSettings {
  /** 0 disables. Default 5. */
  readonly consecutive5xxErrors: number;
  /** 502/503/504 and local-origin failures; 0 disables (default). */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  /** Envoy's max_ejection_time (not in Istio's API): 300 s. */
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  /** Below this % of healthy endpoints, ejections are ignored (panic). Default 0. */
  readonly minHealthPercent: number;
}

/**
 * Validates `outlierDetection` (undefined: no detection). Defaults: consecutive5xxErrors 5, interval 10 s,
 * baseEjectionTime 30 s, maxEjectionPercent 10, minHealthPercent 0. The deprecated `consecutiveErrors` is read as
 * consecutiveGatewayErrors (with 5xx detection off), as Istio does. Throws PolicyConfigError naming the field.
 */
export function compileOutlierDetection(outlierDetection: unknown, where: { readonly object: string; readonly field: string }): OutlierSettings | undefined {
  if (outlierDetection === undefined || outlierDetection === null) return undefined;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(outlierDetection)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const o = outlierDetection as Record<string, any>;
  warnUnknownFields(o, ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveErrors', 'interval', 'baseEjectionTime',
    'maxEjectionPercent', 'minHealthPercent', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures'], f, sink);
  const int = (k: string, def: number, max = 2 ** 32 - 1) => (o[k] === undefined ? def : readInt(o[k], `${f}.${k}`, sink, 0, max) ?? def);
  const dur = (k: string, def: number) => (o[k] === undefined ? def : readDurationMs(o[k], `${f}.${k}`, sink) ?? def);
  let c5xx = int('consecutive5xxErrors', 5);
  let cgw = int('consecutiveGatewayErrors', 0);
  if (o.consecutiveErrors !== undefined) {
    const legacy = int('consecutiveErrors', 0, 2 ** 31 - 1);
    if (legacy > 0) { cgw = legacy; if (o.consecutive5xxErrors === undefined) c5xx = 0; }
  }
  const settings: OutlierSettings = {
    consecutive5xxErrors: c5xx,
    consecutiveGatewayErrors: cgw,
    intervalMs: dur('interval', 10_000),
    baseEjectionTimeMs: dur('baseEjectionTime', 30_000),
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: o.maxEjectionPercent === undefined ? 10 : readInt(o.maxEjectionPercent, `${f}.maxEjectionPercent`, sink, 0, 100) ?? 10,
    minHealthPercent: o.minHealthPercent === undefined ? 0 : readPercent(o.minHealthPercent, `${f}.minHealthPercent`, sink) ?? 0,
  };
  if (o.splitExternalLocalOriginErrors || o.consecutiveLocalOriginFailures !== undefined) {
    sink.warning(`${f}.splitExternalLocalOriginErrors`, 'ignored: local-origin failures always count as 5xx and gateway errors');
  }
  sink.throwIfErrors();
  return Object.freeze(settings);
}

/** What one request to an endpoint ended with. */
export interface EndpointOutcome {
  readonly status?: number;
  /** Connect failure, reset, timeout (counted as a 5xx and a gateway error, as with split_external_local_origin_errors off). */
  readonly localOriginFailure?: boolean;
}

export interface OutlierDetector {
  readonly settings: OutlierSettings;
  /** Records an outcome; returns whether the endpoint got ejected by it. */
  record(endpoint: string, outcome: EndpointOutcome, now: number): { readonly ejected: boolean };
  isEjected(endpoint: string, now: number): boolean;
  /** The endpoints to balance over: the non-ejected ones, or all of them when fewer than minHealthPercent are healthy. */
  available<E extends string | { readonly address: string }>(endpoints: readonly E[], now: number): E[];
  /** Tells the detector the current endpoint set (for maxEjectionPercent); forgets removed endpoints. */
  setEndpoints(endpoints: readonly string[]): void;
}

interface EndpointState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Ejection multiplier: +1 per ejection, -1 per interval spent healthy. */
  multiplier: number;
  ejectedUntil?: number;
  healthySince: number;
}

export function createOutlierDetector(settings: OutlierSettings): OutlierDetector {
  const states = new Map<string, EndpointState>();
  let known: Set<string> | undefined;

  const stateOf = (ep: string, now: number) => {
    let s = states.get(ep);
    if (!s) { s = { consecutive5xx: 0, consecutiveGateway: 0, multiplier: 0, healthySince: now }; states.set(ep, s); }
    return s;
  };
  const ejected = (s: EndpointState | undefined, now: number): boolean => {
    if (!s || s.ejectedUntil === undefined) return false;
    if (now < s.ejectedUntil) return true;
    // Back in the pool: counters start over; the multiplier decays from here.
    s.healthySince = s.ejectedUntil;
    delete s.ejectedUntil;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    return false;
  };
  const total = () => known?.size ?? states.size;
  const ejectedCount = (now: number) => { let n = 0; for (const s of states.values()) if (ejected(s, now)) n++; return n; };

  return {
    settings,
    record(endpoint, outcome, now) {
      const s = stateOf(endpoint, now);
      if (ejected(s, now)) return { ejected: false };
      const status = outcome.status ?? 0;
      const is5xx = outcome.localOriginFailure === true || (status >= 500 && status <= 599);
      const isGateway = outcome.localOriginFailure === true || status === 502 || status === 503 || status === 504;
      s.consecutive5xx = is5xx ? s.consecutive5xx + 1 : 0;
      s.consecutiveGateway = isGateway ? s.consecutiveGateway + 1 : 0;
      const trip = (settings.consecutive5xxErrors > 0 && s.consecutive5xx >= settings.consecutive5xxErrors) ||
        (settings.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= settings.consecutiveGatewayErrors);
      if (!trip) return { ejected: false };
      // Envoy: eject only while (ejected + 1) / hosts stays within maxEjectionPercent.
      if (100 * (ejectedCount(now) + 1) / Math.max(1, total()) > settings.maxEjectionPercent) return { ejected: false };
      const decay = settings.intervalMs > 0 ? Math.floor((now - s.healthySince) / settings.intervalMs) : 0;
      s.multiplier = Math.max(0, s.multiplier - decay) + 1;
      const duration = Math.min(settings.baseEjectionTimeMs * s.multiplier, Math.max(settings.baseEjectionTimeMs, settings.maxEjectionTimeMs));
      s.ejectedUntil = now + duration;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return { ejected: true };
    },
    isEjected(endpoint, now) {
      return ejected(states.get(endpoint), now);
    },
    available(endpoints, now) {
      const addr = (e: string | { readonly address: string }) => (typeof e === 'string' ? e : e.address);
      const healthy = endpoints.filter((e) => !ejected(states.get(addr(e)), now));
      // Panic (Istio minHealthPercent = Envoy healthy_panic_threshold): too few healthy, balance over all.
      if (endpoints.length > 0 && settings.minHealthPercent > 0 && (100 * healthy.length) / endpoints.length < settings.minHealthPercent) return [...endpoints];
      return healthy;
    },
    setEndpoints(endpoints) {
      known = new Set(endpoints);
      for (const k of [...states.keys()]) if (!known.has(k)) states.delete(k);
    },
  };
}
