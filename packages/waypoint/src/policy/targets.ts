// targetRefs of waypoint policies (AuthorizationPolicy, RequestAuthentication, Telemetry): which objects they
// attach to, validated the same way for every kind.
import type { DiagnosticSink } from './diagnostics.js';
import { isRecord } from './fields.js';

export interface TargetRef { readonly kind: 'Gateway' | 'GatewayClass' | 'Service' | 'ServiceEntry'; readonly name: string }

const TARGET_GROUPS: Record<TargetRef['kind'], readonly string[]> = {
  Gateway: ['gateway.networking.k8s.io'],
  GatewayClass: ['gateway.networking.k8s.io'],
  Service: ['', 'core'],
  ServiceEntry: ['networking.istio.io'],
};

/** Reads `targetRef`/`targetRefs` (same namespace only; not together with `selector`). */
export function compileTargetRefs(spec: Record<string, any>, namespace: string, sink: DiagnosticSink): TargetRef[] {
  const out: TargetRef[] = [];
  const refs: [unknown, string][] = [];
  if (spec.targetRef !== undefined) refs.push([spec.targetRef, 'spec.targetRef']);
  if (spec.targetRefs !== undefined) {
    if (!Array.isArray(spec.targetRefs)) sink.error('spec.targetRefs', 'must be a list');
    else spec.targetRefs.forEach((r: unknown, i: number) => refs.push([r, `spec.targetRefs[${i}]`]));
  }
  if (refs.length > 0 && spec.selector !== undefined) sink.error('spec.selector', 'only one of targetRefs or selector may be set');
  if (spec.targetRef !== undefined && spec.targetRefs !== undefined) sink.error('spec.targetRef', 'only one of targetRef or targetRefs may be set');
  for (const [ref, field] of refs) {
    if (!isRecord(ref) || typeof ref.kind !== 'string' || typeof ref.name !== 'string' || ref.name === '') {
      sink.error(field, 'must have kind and name');
      continue;
    }
    const kind = ref.kind as TargetRef['kind'];
    const groups = Object.prototype.hasOwnProperty.call(TARGET_GROUPS, kind) ? TARGET_GROUPS[kind] : undefined;
    if (!groups) { sink.error(`${field}.kind`, `must be Gateway, GatewayClass, Service or ServiceEntry, got ${JSON.stringify(ref.kind)}`); continue; }
    const group = ref.group ?? '';
    if (!groups.includes(group)) { sink.error(`${field}.group`, `must be ${JSON.stringify(groups[0])} for kind ${kind}, got ${JSON.stringify(group)}`); continue; }
    if (ref.namespace !== undefined && ref.namespace !== '' && ref.namespace !== namespace) {
      sink.error(`${field}.namespace`, 'cross-namespace targetRefs are not allowed; it must be the policy\'s namespace');
      continue;
    }
    out.push({ kind, name: ref.name });
  }
  return out;
}

