// VirtualService fault injection (Envoy's HTTP fault filter as Istio configures it). Delay and abort are
// independent draws; an abort answers locally, so the request is never retried.
import { DiagnosticSink } from './diagnostics.js';
import { isRecord, readDurationMs, readInt, readPercent, warnUnknownFields } from './fields.js';

/** VirtualService `http[].fault`, compiled. Percentages are 0..100. */
export interface FaultPolicy {
  readonly delay?: { readonly delayMs: number; readonly percent: number };
  readonly abort?: { readonly percent: number } & ({ readonly httpStatus: number } | { readonly grpcStatus: number; readonly grpcStatusName: string });
}

/** What to do to one request. `responseFlags`: `DI` (delay injected), `FI` (fault/abort injected), in that order. */
export interface FaultDecision {
  readonly delayMs?: number;
  /** Answer locally without calling the upstream: `httpStatus` with body `fault filter abort`, or HTTP 200 with
   * `grpc-status` (trailers-only) for `grpcStatus`. Never retried. */
  readonly abort?: { readonly httpStatus: number } | { readonly grpcStatus: number };
  readonly responseFlags: readonly ('DI' | 'FI')[];
}

/** Body Envoy's fault filter sends with an injected HTTP abort. */
export const FAULT_ABORT_BODY = 'fault filter abort';

/** gRPC status names as Istio's `grpcStatus` accepts them. */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = Object.freeze({
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
});

/**
 * Percentage of a delay/abort: `percentage.value` (double), else the deprecated integer `percent`. With neither,
 * Istio writes a 0% fractional percent, so the fault never fires (see the report: checked against Istio's
 * translateFault as we remember it).
 */
function readFaultPercent(spec: Record<string, any>, field: string, sink: DiagnosticSink): number {
  if (spec.percentage !== undefined) {
    if (!isRecord(spec.percentage)) { sink.error(`${field}.percentage`, 'must be an object {value: <0..100>}'); return 0; }
    return readPercent(spec.percentage.value ?? 0, `${field}.percentage.value`, sink) ?? 0;
  }
  if (spec.percent !== undefined) return readInt(spec.percent, `${field}.percent`, sink, 0, 100) ?? 0;
  return 0;
}

/** Validates `fault` (`where` names object and field for errors). Throws PolicyConfigError. */
export function compileFault(fault: unknown, where: { readonly object: string; readonly field: string }): FaultPolicy {
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(fault)) {
    sink.error(f, 'must be an object with delay and/or abort');
    sink.throwIfErrors();
  }
  const spec = fault as Record<string, any>;
  warnUnknownFields(spec, ['delay', 'abort'], f, sink);
  if (spec.delay === undefined && spec.abort === undefined) sink.error(f, 'at least one of delay or abort must be set');
  let delay: FaultPolicy['delay'];
  let abort: FaultPolicy['abort'];
  if (spec.delay !== undefined) {
    const d = spec.delay;
    if (!isRecord(d)) sink.error(`${f}.delay`, 'must be an object');
    else {
      if (d.exponentialDelay !== undefined) sink.error(`${f}.delay.exponentialDelay`, 'exponentialDelay is not supported (Istio does not support it either); use fixedDelay');
      if (d.fixedDelay === undefined) sink.error(`${f}.delay.fixedDelay`, 'is required');
      else {
        const ms = readDurationMs(d.fixedDelay, `${f}.delay.fixedDelay`, sink);
        const percent = readFaultPercent(d, `${f}.delay`, sink);
        if (ms !== undefined) delay = { delayMs: ms, percent };
      }
    }
  }
  if (spec.abort !== undefined) {
    const a = spec.abort;
    if (!isRecord(a)) sink.error(`${f}.abort`, 'must be an object');
    else {
      const percent = readFaultPercent(a, `${f}.abort`, sink);
      const kinds = ['httpStatus', 'grpcStatus', 'http2Error'].filter((k) => a[k] !== undefined);
      if (kinds.length !== 1) sink.error(`${f}.abort`, 'exactly one of httpStatus or grpcStatus must be set');
      else if (a.http2Error !== undefined) sink.error(`${f}.abort.http2Error`, 'http2Error is not supported (not implemented by Istio); use httpStatus or grpcStatus');
      else if (a.httpStatus !== undefined) {
        const status = readInt(a.httpStatus, `${f}.abort.httpStatus`, sink, 200, 599);
        if (status !== undefined) abort = { percent, httpStatus: status };
      } else {
        const g = a.grpcStatus;
        const code = typeof g === 'string' ? GRPC_STATUS_CODES[g.toUpperCase()] : undefined;
        if (code === undefined) sink.error(`${f}.abort.grpcStatus`, `must be a gRPC status name (${Object.keys(GRPC_STATUS_CODES).join(', ')}), got ${JSON.stringify(g)}`);
        else abort = { percent, grpcStatus: code, grpcStatusName: String(g).toUpperCase() };
      }
    }
  }
  sink.throwIfErrors();
  return Object.freeze({ ...(delay ? { delay } : {}), ...(abort ? { abort } : {}) });
}

/** Draws the decision; `random` returns [0, 1). Delay and abort draw independently, delay first. */
export function decideFault(policy: FaultPolicy, random: () => number): FaultDecision {
  const flags: ('DI' | 'FI')[] = [];
  let delayMs: number | undefined;
  let abort: FaultDecision['abort'];
  if (policy.delay && fires(policy.delay.percent, random)) {
    delayMs = policy.delay.delayMs;
    flags.push('DI');
  }
  if (policy.abort && fires(policy.abort.percent, random)) {
    abort = 'httpStatus' in policy.abort ? { httpStatus: policy.abort.httpStatus } : { grpcStatus: policy.abort.grpcStatus };
    flags.push('FI');
  }
  return { ...(delayMs !== undefined ? { delayMs } : {}), ...(abort ? { abort } : {}), responseFlags: flags };
}

function fires(percent: number, random: () => number): boolean {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  return random() * 100 < percent;
}
