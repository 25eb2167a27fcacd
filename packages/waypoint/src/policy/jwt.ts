import type { KubeObject } from '@ambit/api';
import type { PolicyDiagnostic } from './diagnostics.js';
import type { AuthorizationTargetService, RequestAuth } from './authz.js';

/** Fetches a JWKS document (the parsed JSON). Default: global fetch with a 5 s timeout, http(s) only. */
export type JwksFetcher = (uri: string) => Promise<unknown>;

export interface JwtAuthenticatorOptions {
  /** The waypoint Gateway this process serves (targetRefs kind Gateway). */
  readonly waypoint: { readonly namespace: string; readonly name: string };
  /** Default `istio-system`; GatewayClass targetRefs are honoured only there. */
  readonly rootNamespace?: string;
  /** Default `istio-waypoint`. */
  readonly gatewayClassName?: string;
  /** Milliseconds since the epoch; default Date.now. Drives token expiry checks and the JWKS cache. */
  readonly now?: () => number;
  readonly fetchJwks?: JwksFetcher;
  /** How long a fetched JWKS is used before it is fetched again. Default 5 min (Envoy's cache_duration). */
  readonly jwksCacheMs?: number;
  /** An unknown `kid` re-fetches the JWKS at most this often. Default 30 s. */
  readonly jwksRefetchCooldownMs?: number;
  /** Allowed clock skew for exp/nbf. Default 60 s (Envoy's clock_skew_seconds). */
  readonly clockSkewSeconds?: number;
  /** Invalid objects keep their previous version (keyed `ns/name`) instead of being dropped. */
  readonly lastGood?: ReadonlyMap<string, CompiledRequestAuthentication>;
}

/** What the JWT module reads from a request. */
export interface JwtRequest {
  /** Lower-case names (IncomingHttpHeaders shape). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The request target including the query string (`fromParams`, default `access_token`). */
  readonly path: string;
  /** The Service/ServiceEntry the request is for (selects RequestAuthentications with such targetRefs). */
  readonly destinationService?: AuthorizationTargetService;
}

export type JwtAuthResult =
  | {
      readonly ok: true;
      readonly anonymous: false;
      /** Feed this to RequestAttributes.auth. */
      readonly identity: RequestAuth;
      /** `ns/name` of the RequestAuthentication whose rule verified the token. */
      readonly policy: string;
      readonly issuer: string;
      /** Headers the caller sets on the upstream request (outputPayloadToHeader, outputClaimToHeaders). */
      readonly setHeaders: Readonly<Record<string, string>>;
      /** Headers the caller removes before forwarding (the token header unless forwardOriginalToken). Lower case. */
      readonly removeHeaders: readonly string[];
    }
  /** No token in any configured location: RequestAuthentication alone does not reject. */
  | { readonly ok: true; readonly anonymous: true }
  | {
      readonly ok: false;
      readonly status: 401;
      /** Why (logged / access log); e.g. `Jwt is expired`, `Jwt issuer is not configured`, `Audiences in Jwt are not allowed`. */
      readonly reason: string;
      /** Response body, as Envoy writes it: `Jwt verification fails`. */
      readonly body: string;
      /** Response headers: `www-authenticate: Bearer realm="<url>", error="invalid_token"`. */
      readonly headers: Readonly<Record<string, string>>;
    };

export interface CompiledRequestAuthentication {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly diagnostics: readonly PolicyDiagnostic[];
}

export interface JwtAuthenticator {
  /** Extracts, verifies and maps the token of one request. Never throws; JWKS fetch errors give a 401. */
  authenticate(req: JwtRequest): Promise<JwtAuthResult>;
  readonly policies: readonly CompiledRequestAuthentication[];
  /** Diagnostics of this compile: errors of rejected objects, notes on accepted ones. */
  readonly diagnostics: readonly PolicyDiagnostic[];
  readonly rejected: readonly string[];
}

/** Validates one RequestAuthentication. Throws PolicyConfigError naming the object and field. */
export function compileRequestAuthentication(obj: KubeObject): CompiledRequestAuthentication {
  void obj;
  throw new Error('compileRequestAuthentication: implementation lands in the next commit');
}

/** Builds the authenticator for this waypoint from every RequestAuthentication. JWKS are fetched lazily and cached. */
export function createJwtAuthenticator(objects: readonly KubeObject[], options: JwtAuthenticatorOptions): JwtAuthenticator {
  void objects; void options;
  throw new Error('createJwtAuthenticator: implementation lands in the next commit');
}
