// L7 policy in force, rebuilt from the accepted configuration objects whenever they change: the authorization
// engine (AuthorizationPolicy) and the JWT authenticator (RequestAuthentication) from policy/. The objects were
// validated by the same compile functions when the config store accepted them, so a rebuild never drops a policy.
import type { KubeObject } from '@ambit/api';
import {
  compileAuthorizationPolicies, compileAuthorizationPolicy, compileRequestAuthentication, createJwtAuthenticator,
  type AuthorizationEngine, type JwtAuthenticator, type JwksFetcher,
} from '../policy/index.js';
import type { ObjectValidator, ConfigStore } from '../state/config-store.js';

export interface PolicyState {
  authz(): AuthorizationEngine;
  jwt(): JwtAuthenticator;
}

/** Validators the config store runs on L7 policy objects (a throw rejects the object, naming the field). */
export const POLICY_VALIDATORS: Readonly<Record<string, ObjectValidator>> = Object.freeze({
  AuthorizationPolicy: (o: KubeObject) => { compileAuthorizationPolicy(o); },
  RequestAuthentication: (o: KubeObject) => { compileRequestAuthentication(o); },
});

export function createPolicyState(store: ConfigStore, options: { waypoint: { namespace: string; name: string }; fetchJwks?: JwksFetcher }): PolicyState {
  let authz: AuthorizationEngine;
  let jwt: JwtAuthenticator;
  const rebuild = (): void => {
    authz = compileAuthorizationPolicies(store.objectsOfKind('AuthorizationPolicy'), { waypoint: options.waypoint }).engine;
    jwt = createJwtAuthenticator(store.objectsOfKind('RequestAuthentication'), { waypoint: options.waypoint, ...(options.fetchJwks ? { fetchJwks: options.fetchJwks } : {}) });
  };
  rebuild();
  store.onChange(rebuild);
  return { authz: () => authz, jwt: () => jwt };
}
