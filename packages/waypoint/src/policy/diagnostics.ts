import { ConfigError, describeObject, type KubeObject } from '@ambit/api';

/**
 * A finding about one configuration object, printed the Istio way:
 * `Error [severity] (AuthorizationPolicy ns/name) spec.rules[0].when[1].key: ...`.
 * - `error`: the object (or the named part) is invalid and was rejected;
 * - `unsupported`: valid Istio config that Ambit does not implement (the object still takes effect where stated);
 * - `warning`: accepted, but a field is ignored.
 */
export interface PolicyDiagnostic {
  /** `Kind namespace/name`, as `describeObject` writes it. */
  readonly object: string;
  /** Path of the field from the object root, e.g. `spec.rules[0].to[0].operation.paths[1]`. */
  readonly field: string;
  readonly message: string;
  readonly severity: 'error' | 'unsupported' | 'warning';
}

/** `AuthorizationPolicy ns/name: spec.action: ...`: one line naming the object and the field. */
export function formatDiagnostic(d: PolicyDiagnostic): string {
  return `${d.object}: ${d.field}: ${d.message}`;
}

/** Thrown by the compile functions when an object is invalid. `diagnostics` holds every error found. */
export class PolicyConfigError extends ConfigError {
  readonly diagnostics: readonly PolicyDiagnostic[];
  constructor(diagnostics: readonly PolicyDiagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('; '));
    this.diagnostics = diagnostics;
  }
}

/** Collects findings for one object while it is compiled. */
export class DiagnosticSink {
  readonly items: PolicyDiagnostic[] = [];
  readonly object: string;
  constructor(obj: Pick<KubeObject, 'kind' | 'metadata'> | string) {
    this.object = typeof obj === 'string' ? obj : describeObject(obj);
  }
  error(field: string, message: string): void { this.items.push({ object: this.object, field, message, severity: 'error' }); }
  unsupported(field: string, message: string): void { this.items.push({ object: this.object, field, message, severity: 'unsupported' }); }
  warning(field: string, message: string): void { this.items.push({ object: this.object, field, message, severity: 'warning' }); }
  get hasErrors(): boolean { return this.items.some((d) => d.severity === 'error'); }
  /** Throws PolicyConfigError listing the errors, if any. */
  throwIfErrors(): void {
    const errors = this.items.filter((d) => d.severity === 'error');
    if (errors.length > 0) throw new PolicyConfigError(errors);
  }
}
