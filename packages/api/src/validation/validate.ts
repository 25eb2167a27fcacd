// validateObject: the per-object checks (what istiod's validating webhook and the CRD schema would refuse), for
// the Istio and Gateway API kinds Ambit understands. Pure and synchronous; the controller runs it before a config
// object reaches the waypoint and `ambitctl analyze` runs it on files.
import type { KubeObject } from '../config-objects.js';
import { Checker, describe, type Json } from './checker.js';
import type { Diagnostic } from './diagnostic.js';
import { validateGateway, validateGrpcRoute, validateHttpRoute } from './gateway-api.js';
import { validateDestinationRule, validateServiceEntry, validateVirtualService, validateWorkloadEntry } from './networking.js';
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from './security.js';
import { validateTelemetry } from './telemetry.js';

interface KindRule {
  group: string;
  /** API versions this kind is served under (Istio's CRDs serve older versions with the same schema). */
  versions: readonly string[];
  validate: (c: Checker, spec: Json) => void;
}

const KIND_RULES: Record<string, KindRule> = {
  VirtualService: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], validate: validateVirtualService },
  DestinationRule: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], validate: validateDestinationRule },
  ServiceEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], validate: validateServiceEntry },
  WorkloadEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], validate: validateWorkloadEntry },
  AuthorizationPolicy: { group: 'security.istio.io', versions: ['v1', 'v1beta1'], validate: validateAuthorizationPolicy },
  PeerAuthentication: { group: 'security.istio.io', versions: ['v1', 'v1beta1'], validate: validatePeerAuthentication },
  RequestAuthentication: { group: 'security.istio.io', versions: ['v1', 'v1beta1'], validate: validateRequestAuthentication },
  Telemetry: { group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], validate: validateTelemetry },
  Gateway: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], validate: validateGateway },
  HTTPRoute: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], validate: validateHttpRoute },
  GRPCRoute: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha2'], validate: validateGrpcRoute },
};

/** Kinds validateObject checks; other kinds get no diagnostics. */
export const VALIDATED_KINDS: readonly string[] = Object.freeze(Object.keys(KIND_RULES));

/** API versions accepted for a validated kind (`networking.istio.io/v1`, ...). */
export function acceptedApiVersions(kind: string): string[] {
  const r = KIND_RULES[kind];
  return r ? r.versions.map((v) => `${r.group}/${v}`) : [];
}

/**
 * Checks one object on its own. Returns IST0106 SchemaValidationError for invalid fields, IST0133 SchemaWarning
 * for accepted-but-suspect ones, and a few analyzer messages Istio also derives from one object (IST0130/IST0131
 * unreachable VirtualService rules, IST0167 ineffective ambient policy). Kinds it does not know give [].
 */
export function validateObject(obj: KubeObject): Diagnostic[] {
  const kind = obj.kind ?? '';
  const rule = KIND_RULES[kind];
  if (!rule) return [];
  const c = new Checker(obj);
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name === '') c.error('metadata.name', 'name is required');
  else if (name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    c.error('metadata.name', `invalid name ${JSON.stringify(name)}: must be a DNS-1123 subdomain (lower case alphanumerics, '-' or '.', at most 253 characters)`);
  }
  const apiVersion = obj.apiVersion;
  const accepted = rule.versions.map((v) => `${rule.group}/${v}`);
  if (apiVersion !== undefined && !accepted.includes(apiVersion)) {
    c.error('apiVersion', `unsupported apiVersion ${JSON.stringify(apiVersion)} for ${kind}; use one of ${accepted.join(', ')}`);
  }
  if (obj.spec === undefined || obj.spec === null) {
    // An empty spec is valid for policies (e.g. an allow-nothing AuthorizationPolicy), not for routes.
    rule.validate(c, {});
  } else if (typeof obj.spec !== 'object' || Array.isArray(obj.spec)) {
    c.error('spec', `must be an object, got ${describe(obj.spec)}`);
  } else {
    rule.validate(c, obj.spec as Json);
  }
  return c.diagnostics;
}
