// Small typed readers for configuration objects: each throws FieldError naming the field path, so every
// diagnostic says which field of which object is wrong (`spec.http[0].route[1].weight: must be 0..100`).
import { RE2JS } from 're2js';
import type { StringMatcher } from './types.js';

export class FieldError extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

export type Obj = Record<string, unknown>;

export function fail(field: string, problem: string): never {
  throw new FieldError(field, problem);
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown, field: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) fail(field, `must be an object, got ${JSON.stringify(v)}`);
  return v;
}

export function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(field, `must be a list, got ${JSON.stringify(v)}`);
  return v;
}

export function str(v: unknown, field: string, opts: { required?: boolean } = {}): string | undefined {
  if (v === undefined || v === null || v === '') {
    if (opts.required) fail(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') fail(field, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function int(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) fail(field, `must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function num(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(field, `must be a number ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** `1.5s`, `500ms`, `1m`, `1h30m` (Istio's and Gateway API's duration forms) -> milliseconds. */
export function duration(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(v)) fail(field, `must be a duration like 500ms, 1.5s or 1m, got ${JSON.stringify(v)}`);
  let ms = 0;
  for (const m of v.matchAll(DURATION_PART)) ms += Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2]!]!;
  return Math.round(ms);
}

/** Compiles an RE2 pattern (Istio and Gateway API regexes are RE2), anchored as a full match. */
export function re2(pattern: string, field: string, flags = 0): (s: string) => boolean {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, flags);
  } catch (err) {
    fail(field, `invalid RE2 regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  return (s) => re.matches(s);
}

/** RE2 replace-all, for uriRegexRewrite. */
export function re2Replacer(pattern: string, replacement: string, field: string): (s: string) => string {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    fail(field, `invalid RE2 regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  // Istio writes capture references as \1; RE2JS uses $1.
  const repl = replacement.replace(/\\(\d)/g, '$$$1');
  return (s) => re.matcher(s).replaceAll(repl);
}

/** Istio StringMatch `{exact|prefix|regex}`; `{}` means presence where `allowEmpty` (headers, query params). */
export function istioStringMatch(v: unknown, field: string, opts: { allowEmpty?: boolean; ignoreCase?: boolean } = {}): StringMatcher {
  const o = obj(v, field) ?? {};
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  if (keys.length === 0) {
    if (opts.allowEmpty) return { kind: 'present' };
    fail(field, 'must set one of exact, prefix or regex');
  }
  if (keys.length > 1) fail(field, `must set only one of exact, prefix or regex, got ${keys.join(', ')}`);
  const k = keys[0]!;
  const value = o[k];
  if (typeof value !== 'string') fail(`${field}.${k}`, `must be a string, got ${JSON.stringify(value)}`);
  switch (k) {
    case 'exact': return { kind: 'exact', value, ...(opts.ignoreCase ? { ignoreCase: true } : {}) };
    case 'prefix': return { kind: 'prefix', value, ...(opts.ignoreCase ? { ignoreCase: true } : {}) };
    case 'regex': return { kind: 'regex', value, test: re2(value, `${field}.regex`, opts.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0) };
    default: return fail(`${field}.${k}`, 'unknown match type; use exact, prefix or regex');
  }
}

export function matchString(m: StringMatcher, s: string | undefined): boolean {
  if (s === undefined) return false;
  switch (m.kind) {
    case 'present': return true;
    case 'exact': return m.ignoreCase ? s.toLowerCase() === m.value.toLowerCase() : s === m.value;
    case 'prefix': return m.ignoreCase ? s.toLowerCase().startsWith(m.value.toLowerCase()) : s.startsWith(m.value);
    case 'pathPrefix': {
      const p = m.value.length > 1 && m.value.endsWith('/') ? m.value.slice(0, -1) : m.value;
      if (p === '/') return s.startsWith('/');
      return s === p || s.startsWith(`${p}/`);
    }
    case 'regex': return m.test(s);
  }
}
