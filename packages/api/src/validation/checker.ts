// Collects the diagnostics of one object and reads its (untyped, user-written) fields with type checks, so a
// wrong type is reported at its path instead of throwing later.
import type { KubeObject } from '../config-objects.js';
import { createDiagnostic, MESSAGES, type Diagnostic, type MessageType } from './diagnostic.js';

export type Json = Record<string, unknown>;

export class Checker {
  readonly diagnostics: Diagnostic[] = [];

  constructor(readonly obj: KubeObject) {}

  /** Schema error (IST0106) at `field`. */
  error(field: string | undefined, detail: string): void {
    this.report(MESSAGES.SchemaValidationError, detail, field);
  }

  /** Schema warning (IST0133) at `field`: accepted, but probably not what the user meant. */
  warn(field: string | undefined, detail: string): void {
    this.report(MESSAGES.SchemaWarning, detail, field);
  }

  report(type: MessageType, detail: string, field?: string): void {
    this.diagnostics.push(createDiagnostic(type, this.obj, detail, field));
  }

  get namespace(): string {
    return this.obj.metadata.namespace ?? 'default';
  }

  /** An object field: undefined when absent (or null), reported when another type. */
  object(path: string, v: unknown): Json | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.error(path, `must be an object, got ${describe(v)}`);
      return undefined;
    }
    return v as Json;
  }

  /** A list field: [] when absent, reported (and []) when another type. */
  array(path: string, v: unknown): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.error(path, `must be a list, got ${describe(v)}`);
      return [];
    }
    return v;
  }

  /** A list of objects; null or non-object items are reported and skipped (index kept). */
  objects(path: string, v: unknown): { item: Json; path: string; index: number }[] {
    const out: { item: Json; path: string; index: number }[] = [];
    this.array(path, v).forEach((x, i) => {
      const p = `${path}[${i}]`;
      if (x === null || x === undefined) this.error(p, 'must not be null');
      else {
        const o = this.object(p, x);
        if (o) out.push({ item: o, path: p, index: i });
      }
    });
    return out;
  }

  string(path: string, v: unknown): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.error(path, `must be a string, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /** A list of strings; non-strings are reported and dropped. */
  strings(path: string, v: unknown): { value: string; path: string }[] {
    const out: { value: string; path: string }[] = [];
    this.array(path, v).forEach((x, i) => {
      const s = this.string(`${path}[${i}]`, x);
      if (s !== undefined) out.push({ value: s, path: `${path}[${i}]` });
    });
    return out;
  }

  /** A map of string values (labels, header maps). */
  stringMap(path: string, v: unknown): [string, string][] {
    const o = this.object(path, v);
    if (!o) return [];
    const out: [string, string][] = [];
    for (const [k, x] of Object.entries(o)) {
      const s = this.string(`${path}[${JSON.stringify(k)}]`, x);
      if (s !== undefined) out.push([k, s]);
    }
    return out;
  }

  integer(path: string, v: unknown): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.error(path, `must be an integer, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  number(path: string, v: unknown): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.error(path, `must be a number, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  boolean(path: string, v: unknown): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.error(path, `must be true or false, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /** A string from a fixed set (protobuf enum names as Istio's CRDs accept them). */
  enumValue<T extends string>(path: string, v: unknown, allowed: readonly T[]): T | undefined {
    const s = this.string(path, v);
    if (s === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(s)) {
      this.error(path, `unknown value ${JSON.stringify(s)}; must be one of ${allowed.join(', ')}`);
      return undefined;
    }
    return s as T;
  }

  /** Protobuf wrapper fields (UInt32Value...) are written as plain numbers in YAML; also accept `{value: n}`. */
  wrapped(path: string, v: unknown): number | undefined {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'value' in (v as Json)) return this.number(`${path}.value`, (v as Json).value);
    return this.number(path, v);
  }
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

export function isSet(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  if (typeof v === 'string') return v.length > 0;
  return true;
}
