// Field groups several kinds share: selectors, policy target references, exportTo, string matches, durations.
import { Checker, isSet, type Json } from './checker.js';
import { checkDuration, checkLabelKey, checkLabelValue, checkRe2 } from './primitives.js';

/** A duration field; returns true when present and valid. */
export function durationField(c: Checker, path: string, v: unknown, options: { allowZero?: boolean } = {}): boolean {
  const s = c.string(path, v);
  if (s === undefined) return false;
  const problem = checkDuration(s, options);
  if (problem) c.error(path, problem);
  return !problem;
}

/** Label map (subset labels, workload entry labels). */
export function labelsField(c: Checker, path: string, v: unknown): [string, string][] {
  const entries = c.stringMap(path, v);
  for (const [k, val] of entries) {
    const kp = checkLabelKey(k);
    if (kp) c.error(`${path}[${JSON.stringify(k)}]`, kp);
    const vp = checkLabelValue(val);
    if (vp) c.error(`${path}[${JSON.stringify(k)}]`, vp);
  }
  return entries;
}

/** `selector: {matchLabels}` of the security and telemetry kinds (Istio's validateWorkloadSelector). */
export function workloadSelectorField(c: Checker, path: string, v: unknown, labelsKey = 'matchLabels'): Json | undefined {
  const sel = c.object(path, v);
  if (!sel) return undefined;
  const entries = c.stringMap(`${path}.${labelsKey}`, sel[labelsKey]);
  for (const [k, val] of entries) {
    const p = `${path}.${labelsKey}[${JSON.stringify(k)}]`;
    if (k === '') c.error(p, `empty key is not supported in selector: "${k}=${val}"`);
    else if (k.includes('*') || val.includes('*')) c.error(p, `wildcard is not supported in selector: "${k}=${val}"`);
    else {
      const problem = checkLabelKey(k) ?? checkLabelValue(val);
      if (problem) c.error(p, problem);
    }
  }
  if (entries.length === 0) c.warn(path, 'workload selector specified without labels; it selects every workload in the namespace');
  return sel;
}

const TARGET_REF_KINDS: { group: string; kind: string }[] = [
  { group: '', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
];

/** `targetRef` / `targetRefs[]`: name set, same namespace only, kind one of Service/ServiceEntry/Gateway/GatewayClass. */
export function targetRefField(c: Checker, path: string, ref: Json): void {
  const name = c.string(`${path}.name`, ref.name);
  if (!name) c.error(`${path}.name`, 'targetRef name must be set');
  if (isSet(c.string(`${path}.namespace`, ref.namespace))) {
    c.error(`${path}.namespace`, 'targetRef namespace must not be set; cross namespace referencing is not supported');
  }
  const group = c.string(`${path}.group`, ref.group) ?? '';
  const kind = c.string(`${path}.kind`, ref.kind);
  if (!kind) {
    c.error(`${path}.kind`, 'targetRef kind must be set');
    return;
  }
  const canonical = group === 'core' ? '' : group;
  if (!TARGET_REF_KINDS.some((k) => k.kind === kind && k.group === canonical)) {
    c.error(path, `targetRef must be to one of ${TARGET_REF_KINDS.map((k) => `${k.group || 'core'}/${k.kind}`).join(', ')} but was ${group || 'core'}/${kind}`);
  }
}

/** Selector vs targetRef vs targetRefs: Istio's validateOneOfSelectorType plus each part. */
export function policyAttachment(c: Checker, spec: Json): { selector?: Json; targetRefs: { ref: Json; path: string }[] } {
  const set = [spec.selector, spec.targetRef, spec.targetRefs].filter((x) => (Array.isArray(x) ? x.length > 0 : x !== undefined && x !== null)).length;
  if (set > 1) c.error('spec.targetRefs', 'only one of targetRefs or workloadSelector can be set (spec.selector, spec.targetRef, spec.targetRefs are mutually exclusive)');
  const selector = workloadSelectorField(c, 'spec.selector', spec.selector);
  const targetRefs: { ref: Json; path: string }[] = [];
  const single = c.object('spec.targetRef', spec.targetRef);
  if (single) targetRefs.push({ ref: single, path: 'spec.targetRef' });
  for (const { item, path } of c.objects('spec.targetRefs', spec.targetRefs)) targetRefs.push({ ref: item, path });
  for (const t of targetRefs) targetRefField(c, t.path, t.ref);
  const out: { selector?: Json; targetRefs: { ref: Json; path: string }[] } = { targetRefs };
  if (selector) out.selector = selector;
  return out;
}

/** exportTo: `.`, `*`, `~` (ServiceEntry only) or namespace names; no duplicates; `*` alone. */
export function exportToField(c: Checker, path: string, v: unknown, options: { serviceEntry?: boolean } = {}): string[] {
  const values = c.strings(path, v);
  const seen = new Set<string>();
  for (const { value, path: p } of values) {
    const key = value === '.' ? c.namespace : value;
    if (seen.has(key)) {
      c.error(p, key !== value ? `duplicate entries in exportTo: . and current namespace ${c.namespace}` : `duplicate entries in exportTo for entry ${value}`);
      continue;
    }
    seen.add(key);
    if (value === '~' && !options.serviceEntry) c.error(p, 'exportTo "~" is only allowed on ServiceEntry');
    else if (value !== '.' && value !== '*' && value !== '~' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value)) {
      c.error(p, `invalid exportTo value ${JSON.stringify(value)}; must be ".", "*" or a namespace name`);
    }
  }
  if (seen.has('*') && values.length > 1) c.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && values.length > 1) c.error(path, 'cannot export service entry to no one (~) and someone');
  return values.map((x) => x.value);
}

/** A StringMatch: exactly one of exact / prefix / regex; prefix non-empty; regex valid RE2. Returns the kind. */
export function stringMatchField(c: Checker, path: string, v: unknown): 'exact' | 'prefix' | 'regex' | undefined {
  const m = c.object(path, v);
  if (!m) return undefined;
  const kinds = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined && m[k] !== null);
  if (kinds.length !== 1) {
    c.error(path, kinds.length === 0 ? 'must set exactly one of exact, prefix or regex' : `must set exactly one of exact, prefix or regex, got ${kinds.join(' and ')}`);
    return undefined;
  }
  const kind = kinds[0]!;
  const value = c.string(`${path}.${kind}`, m[kind]);
  if (value === undefined) return undefined;
  if (kind === 'prefix' && value === '') c.error(`${path}.prefix`, 'prefix string match should not be empty');
  if (kind === 'regex') regexField(c, `${path}.regex`, value);
  return kind;
}

/** A regular expression that must compile under RE2. */
export function regexField(c: Checker, path: string, value: string): void {
  if (value === '') {
    c.error(path, 'regex string match should not be empty');
    return;
  }
  const problem = checkRe2(value);
  if (problem) c.error(path, problem);
}

/** Percent fields (fault percentage, mirrorPercentage): 0..100, written as `{value: n}` or a number. */
export function percentField(c: Checker, path: string, v: unknown): void {
  if (v === undefined || v === null) return;
  const n = c.wrapped(path, v);
  if (n !== undefined && (n < 0 || n > 100)) c.error(path, `percentage ${n} is not in range 0..100`);
}
