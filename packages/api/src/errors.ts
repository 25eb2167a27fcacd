/**
 * One error base with a stable code (`AMB_ERR_*`) and an optional cause. Messages state the fact and a likely cause.
 * Subclasses are one line each, so callers can test `err.code` or `instanceof`.
 */
export class AmbitError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
export class ConfigError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_CONFIG', message, options); }
}
export class CertificateError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_CERTIFICATE', message, options); }
}
export class IdentityMismatchError extends AmbitError {
  constructor(message: string, options?: { cause?: unknown }) { super('AMB_ERR_IDENTITY', message, options); }
}
