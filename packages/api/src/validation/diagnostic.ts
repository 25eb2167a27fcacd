// Configuration diagnostics as data, with Istio's analyzer codes and names (istio/istio
// pkg/config/analysis/msg/messages.yaml), so `ambitctl analyze` output and `status.validationMessages` read the
// same as `istioctl analyze` and istiod's status. One catalog; every diagnostic names its object and, when it is
// about one field, the field's path (`spec.http[0].route[1].weight`).
import type { KubeObject } from '../config-objects.js';

export type Severity = 'Error' | 'Warning' | 'Info';

export interface Diagnostic {
  /** Istio analyzer code, `IST0106`. */
  code: string;
  /** Istio analyzer name, `SchemaValidationError`. */
  name: string;
  severity: Severity;
  kind: string;
  namespace?: string;
  objectName: string;
  /** Path of the offending field (`spec.http[0].route[1].weight`), when there is one. */
  field?: string;
  /** The whole message, field included: `Schema validation error: spec.hosts: ...`. */
  message: string;
}

export interface MessageType {
  code: string;
  name: string;
  severity: Severity;
}

/** The message types Ambit emits; levels are Istio's. */
export const MESSAGES = Object.freeze({
  ReferencedResourceNotFound: { code: 'IST0101', name: 'ReferencedResourceNotFound', severity: 'Error' },
  SchemaValidationError: { code: 'IST0106', name: 'SchemaValidationError', severity: 'Error' },
  NoMatchingWorkloadsFound: { code: 'IST0127', name: 'NoMatchingWorkloadsFound', severity: 'Warning' },
  VirtualServiceUnreachableRule: { code: 'IST0130', name: 'VirtualServiceUnreachableRule', severity: 'Warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', name: 'VirtualServiceIneffectiveMatch', severity: 'Info' },
  SchemaWarning: { code: 'IST0133', name: 'SchemaWarning', severity: 'Warning' },
  IneffectivePolicy: { code: 'IST0167', name: 'IneffectivePolicy', severity: 'Warning' },
  DestinationRuleSubsetNotSelectPods: { code: 'IST0173', name: 'DestinationRuleSubsetNotSelectPods', severity: 'Error' },
  UnknownDestinationRuleHost: { code: 'IST0174', name: 'UnknownDestinationRuleHost', severity: 'Warning' },
} as const satisfies Record<string, MessageType>);
export type MessageName = keyof typeof MESSAGES;

/** Istio's documentation page for a code (what istiod puts in `validationMessages[].documentationUrl`). */
export function documentationUrl(code: string): string {
  return `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/`;
}

/** Builds a diagnostic about `obj`. */
export function createDiagnostic(type: MessageType, obj: Pick<KubeObject, 'kind' | 'metadata'>, detail: string, field?: string): Diagnostic {
  // Schema messages name the field in the text (`Schema validation error: spec.hosts: ...`); analyzer messages read
  // like Istio's (`Referenced host not found: "ratings"`) and carry the field in `field` only.
  const located = field ? `${field}: ${detail}` : detail;
  const message =
    type.code === MESSAGES.SchemaValidationError.code ? `Schema validation error: ${located}`
    : type.code === MESSAGES.SchemaWarning.code ? `Schema validation warning: ${located}`
    : detail;
  const d: Diagnostic = {
    code: type.code,
    name: type.name,
    severity: type.severity,
    kind: obj.kind ?? 'Unknown',
    objectName: obj.metadata?.name ?? '',
    message,
  };
  if (obj.metadata?.namespace) d.namespace = obj.metadata.namespace;
  if (field) d.field = field;
  return d;
}

/**
 * `istioctl analyze` format: `<Level> [<code>] (<Kind> <name>.<namespace>) <message>`; the namespace suffix is
 * left out for cluster-scoped objects.
 */
export function formatDiagnostic(d: Diagnostic): string {
  const who = d.namespace ? `${d.objectName}.${d.namespace}` : d.objectName;
  return `${d.severity} [${d.code}] (${d.kind} ${who}) ${d.message}`;
}

const SEVERITY_ORDER: Record<Severity, number> = { Error: 0, Warning: 1, Info: 2 };

/** Errors first, then warnings, then infos; within a level by kind, namespace, name, code (stable output). */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) =>
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    a.kind.localeCompare(b.kind) ||
    (a.namespace ?? '').localeCompare(b.namespace ?? '') ||
    a.objectName.localeCompare(b.objectName) ||
    a.code.localeCompare(b.code));
}

/** True when any diagnostic is at or above `level` (istioctl's `--failure-threshold`). */
export function hasSeverity(list: readonly Diagnostic[], level: Severity): boolean {
  return list.some((d) => SEVERITY_ORDER[d.severity] <= SEVERITY_ORDER[level]);
}
