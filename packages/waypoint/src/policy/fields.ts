// Field readers shared by the compile functions: each checks one value, reports a diagnostic naming the field
// when it is wrong, and returns undefined then.
import type { DiagnosticSink } from './diagnostics.js';

export function isRecord(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DURATION = /^(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };

/**
 * Milliseconds of a duration as Istio (protobuf JSON: `1.5s`) and the Gateway API (`100ms`, `1h30m`) write it.
 * Istio requires at least 1 ms; `allowZero` accepts `0s` (disabled). Returns undefined after reporting.
 */
export function readDurationMs(value: unknown, field: string, sink: DiagnosticSink, options: { allowZero?: boolean } = {}): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') {
    sink.error(field, `must be a duration string such as "1s" or "100ms", got ${JSON.stringify(value)}`);
    return undefined;
  }
  let rest = value.trim();
  let total = 0;
  if (rest === '0') rest = '0s';
  while (rest.length > 0) {
    const m = DURATION.exec(rest);
    if (!m) {
      sink.error(field, `invalid duration ${JSON.stringify(value)}; use a number with a unit, e.g. "1s", "100ms", "1.5s"`);
      return undefined;
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (total === 0 && options.allowZero) return 0;
  if (total < 1) {
    sink.error(field, `duration must be at least 1ms, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return Math.round(total);
}

/** A non-negative integer within [min, max]. Numeric strings are accepted (int64 fields arrive as strings in JSON). */
export function readInt(value: unknown, field: string, sink: DiagnosticSink, min: number, max: number): number | undefined {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    sink.error(field, `must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return n;
}

/** A percentage 0..100 (double). */
export function readPercent(value: unknown, field: string, sink: DiagnosticSink): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    sink.error(field, `must be a number in 0..100, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

export function readString(value: unknown, field: string, sink: DiagnosticSink): string | undefined {
  if (typeof value !== 'string') {
    sink.error(field, `must be a string, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

/** A list of strings (absent: []). */
export function readStringList(value: unknown, field: string, sink: DiagnosticSink): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    sink.error(field, `must be a list of strings`);
    return [];
  }
  const out: string[] = [];
  value.forEach((v, i) => {
    if (typeof v === 'string') out.push(v);
    else sink.error(`${field}[${i}]`, `must be a string, got ${JSON.stringify(v)}`);
  });
  return out;
}

/** Reports keys of `obj` not in `known` as warnings (ignored fields), so typos are visible. */
export function warnUnknownFields(obj: Record<string, unknown>, known: readonly string[], field: string, sink: DiagnosticSink): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) sink.warning(`${field}.${k}`, 'unknown field, ignored');
}

/** First value of a header (lower-case name); arrays joined with ',' as Envoy presents repeated headers. */
export function headerValue(headers: Readonly<Record<string, string | readonly string[] | undefined>> | undefined, name: string): string | undefined {
  const v = headers?.[name.toLowerCase()];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}
