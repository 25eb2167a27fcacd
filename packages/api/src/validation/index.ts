// Configuration validation shared by the controller and `ambitctl analyze`: per-object checks, cross-object
// analyzers, and diagnostics with Istio's analyzer codes.
export {
  createDiagnostic, documentationUrl, formatDiagnostic, hasSeverity, MESSAGES, sortDiagnostics,
  type Diagnostic, type MessageName, type MessageType, type Severity,
} from './diagnostic.js';
export { acceptedApiVersions, validateObject, VALIDATED_KINDS } from './validate.js';
export { analyze, matchesLabels, type AnalyzeOptions } from './analyze.js';
export { checkDuration, checkRe2, checkWildcardDomain, formatDuration, MAX_REGEX_LENGTH, parseDuration } from './primitives.js';
