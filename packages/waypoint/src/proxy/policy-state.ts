// L7 policy in force, rebuilt from the accepted configuration objects when they change: the authorization engine
// (AuthorizationPolicy) and the JWT authenticator (RequestAuthentication) from policy/. Each is rebuilt only when
// objects of its own kind changed, so an unrelated edit (a VirtualService) keeps the authenticator and its JWKS
// cache. The objects were validated by the same compile functions when the config store accepted them, so a
// rebuild never drops a policy.
import type { KubeObject } from '@ambit/api';
import {
  compileAuthorizationPolicies, compileAuthorizationPolicy, compileRequestAuthentication, compileTrafficPolicy, createJwtAuthenticator,
  resolveTracingConfig, PolicyConfigError,
  type AuthorizationEngine, type JwtAuthenticator, type JwksFetcher,
} from '../policy/index.js';
import type { ObjectValidator, ConfigStore } from '../state/config-store.js';

export interface PolicyState {
  authz(): AuthorizationEngine;
  jwt(): JwtAuthenticator;
}

/** Every traffic policy a DestinationRule can produce: top level, each subset, each port-level entry. */
function validateDestinationRule(o: KubeObject): void {
  const spec = (o.spec ?? {}) as { trafficPolicy?: { portLevelSettings?: unknown }; subsets?: unknown };
  const ports = new Set<number | undefined>([undefined]);
  const collect = (tp: unknown): void => {
    const pls = (tp as { portLevelSettings?: unknown } | undefined)?.portLevelSettings;
    if (Array.isArray(pls)) for (const p of pls) { const n = Number((p as { port?: { number?: unknown } })?.port?.number); if (Number.isInteger(n)) ports.add(n); }
  };
  collect(spec.trafficPolicy);
  const subsets: (string | undefined)[] = [undefined];
  if (Array.isArray(spec.subsets)) {
    for (const s of spec.subsets as { name?: unknown; trafficPolicy?: unknown }[]) {
      if (typeof s?.name === 'string') subsets.push(s.name);
      collect(s?.trafficPolicy);
    }
  }
  for (const subset of subsets) for (const port of ports) compileTrafficPolicy(o as Parameters<typeof compileTrafficPolicy>[0], subset, port);
}

/** A Telemetry's own errors (an unknown provider name is the mesh settings' business, not the object's). */
function validateTelemetry(o: KubeObject): void {
  const cfg = resolveTracingConfig([{ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } }], {
    waypoint: { namespace: o.metadata.namespace ?? 'default', name: '' }, providers: {}, rootNamespace: o.metadata.namespace ?? 'default',
  });
  const errors = cfg.diagnostics.filter((d) => d.severity === 'error' && d.object !== 'MeshConfig');
  if (errors.length > 0) throw new PolicyConfigError(errors);
}

/** Validators the config store runs on L7 policy objects (a throw rejects the object, naming the field). */
export const POLICY_VALIDATORS: Readonly<Record<string, ObjectValidator>> = Object.freeze({
  AuthorizationPolicy: (o: KubeObject) => { compileAuthorizationPolicy(o); },
  RequestAuthentication: (o: KubeObject) => { compileRequestAuthentication(o); },
  DestinationRule: validateDestinationRule,
  Telemetry: validateTelemetry,
});

export function createPolicyState(store: ConfigStore, options: { waypoint: { namespace: string; name: string }; fetchJwks?: JwksFetcher }): PolicyState {
  let authz: AuthorizationEngine;
  let jwt: JwtAuthenticator;
  let authzObjects: readonly KubeObject[] | undefined;
  let jwtObjects: readonly KubeObject[] | undefined;
  // The store keeps accepted objects by identity: same objects in the same order, same policy.
  const same = (a: readonly KubeObject[] | undefined, b: readonly KubeObject[]): boolean => a !== undefined && a.length === b.length && a.every((o, i) => o === b[i]);
  const rebuild = (): void => {
    const ap = store.objectsOfKind('AuthorizationPolicy');
    if (!same(authzObjects, ap)) {
      authz = compileAuthorizationPolicies(ap, { waypoint: options.waypoint }).engine;
      authzObjects = ap;
    }
    const ra = store.objectsOfKind('RequestAuthentication');
    if (!same(jwtObjects, ra)) {
      jwt = createJwtAuthenticator(ra, { waypoint: options.waypoint, ...(options.fetchJwks ? { fetchJwks: options.fetchJwks } : {}) });
      jwtObjects = ra;
    }
  };
  rebuild();
  store.onChange(rebuild);
  return { authz: () => authz!, jwt: () => jwt! };
}
