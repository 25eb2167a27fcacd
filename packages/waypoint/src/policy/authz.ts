import type { KubeObject } from '@ambit/api';
import type { PolicyDiagnostic } from './diagnostics.js';

/** The JWT identity of a request, as `jwt.ts` produces it (Envoy's `request.auth.*` attributes). */
export interface RequestAuth {
  /** `<iss>/<sub>` of the verified token. */
  readonly principal: string;
  /** The token's `aud` claim as a list. */
  readonly audiences: readonly string[];
  /** The token's `azp` claim. */
  readonly presenter?: string;
  /** The verified payload. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** What the waypoint knows about one HTTP request when it evaluates AuthorizationPolicy. */
export interface RequestAttributes {
  /**
   * The HBONE peer's identity (URI SAN), `spiffe://td/ns/<ns>/sa/<sa>` (the scheme may be omitted). Absent when
   * the peer presented none. `principals` are compared against it without the scheme, as Istio writes them.
   */
  readonly sourcePrincipal?: string;
  /** Source namespace; derived from `sourcePrincipal` when omitted (Istio derives it from the identity only). */
  readonly sourceNamespace?: string;
  /** The downstream client IP (the original source, from the HBONE tunnel). `ipBlocks`, `source.ip`. */
  readonly sourceIp?: string;
  /** The original client IP (`remoteIpBlocks`, `remote.ip`); equals `sourceIp` when omitted. The caller sets it
   * from x-forwarded-for only when it trusts proxies in front (Envoy's xff_num_trusted_hops); Ambit does not. */
  readonly remoteIp?: string;
  /** The original destination (service VIP or pod IP) and port the client dialled (`destination.ip/port`, `ports`). */
  readonly destinationIp?: string;
  readonly destinationPort?: number;
  /** `:authority`/Host, as received (`hosts`; compared case-insensitively, with or without `:port`). */
  readonly host: string;
  readonly method: string;
  /** The request path as received; the query string and fragment are ignored (Envoy's url_path). The caller
   * normalizes it first (Istio's default BASE normalization: RFC 3986 dot-segment removal, no merge of slashes). */
  readonly path: string;
  /** Request headers, lower-case names (node's IncomingHttpHeaders shape). Multiple values are joined with ','. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** SNI of the downstream TLS connection, when any (`connection.sni`). */
  readonly sni?: string;
  /** From the JWT module when a token was verified; absent for anonymous requests. */
  readonly auth?: RequestAuth;
  /** The Service/ServiceEntry the request is addressed to (selects policies with such targetRefs). */
  readonly destinationService?: AuthorizationTargetService;
}

export interface AuthorizationTargetService {
  readonly kind: 'Service' | 'ServiceEntry';
  readonly namespace: string;
  readonly name: string;
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationResult {
  readonly decision: 'allow' | 'deny';
  /** `ns/name` of the policy that decided (absent when no policy decided). */
  readonly policy?: string;
  /** Human-readable: `denied by DENY policy ns/name`, `allowed by ALLOW policy ns/name`, ... */
  readonly reason: string;
  /** `ns/name` of every AUDIT policy whose rules matched; the request is not affected. */
  readonly audited?: readonly string[];
  /** Dry-run policies (`istio.io/dry-run: "true"`) that applied: what the decision would have been with them. */
  readonly dryRun?: { readonly decision: 'allow' | 'deny'; readonly policy?: string; readonly reason: string };
}

/** One AuthorizationPolicy, validated and compiled; opaque to callers except for its identity. */
export interface CompiledAuthorizationPolicy {
  /** `ns/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly action: AuthorizationAction;
  readonly dryRun: boolean;
  /** Findings that do not reject the object (unsupported CUSTOM, ignored selector, ...). */
  readonly diagnostics: readonly PolicyDiagnostic[];
}

export interface AuthorizationEngineOptions {
  /** The waypoint Gateway this process serves: policies with `targetRefs` kind Gateway apply when they name it. */
  readonly waypoint: { readonly namespace: string; readonly name: string };
  /** Mesh root namespace: `GatewayClass` targetRefs are honoured only there. Default `istio-system`. */
  readonly rootNamespace?: string;
  /** The waypoint's GatewayClass. Default `istio-waypoint`. */
  readonly gatewayClassName?: string;
}

export interface AuthorizationEngine {
  /** Envoy RBAC order: CUSTOM (denied: unsupported), DENY, then ALLOW (if any applies, one must match); AUDIT marks. */
  evaluate(req: RequestAttributes): AuthorizationResult;
  /** The policies the engine holds (all compiled ones, whether they apply to a given request or not). */
  readonly policies: readonly CompiledAuthorizationPolicy[];
}

export interface CompileAuthorizationResult {
  readonly engine: AuthorizationEngine;
  /** Every finding, for status/analyze: errors of rejected objects and notes on accepted ones. */
  readonly diagnostics: readonly PolicyDiagnostic[];
  /** `ns/name` of objects rejected in this compile (their `lastGood` version, if given, was kept). */
  readonly rejected: readonly string[];
}

/** Validates and compiles one AuthorizationPolicy. Throws PolicyConfigError naming the object and field. */
export function compileAuthorizationPolicy(obj: KubeObject): CompiledAuthorizationPolicy {
  void obj;
  throw new Error('compileAuthorizationPolicy: implementation lands in the next commit');
}

/** Builds the engine from compiled policies (those not applying to this waypoint are kept but never match). */
export function createAuthorizationEngine(policies: readonly CompiledAuthorizationPolicy[], options: AuthorizationEngineOptions): AuthorizationEngine {
  void policies; void options;
  throw new Error('createAuthorizationEngine: implementation lands in the next commit');
}

/**
 * Compiles every object and builds the engine. An invalid object is reported and left out, unless `lastGood`
 * holds an earlier compiled version under its `ns/name`, which is kept instead (bad config never removes good).
 */
export function compileAuthorizationPolicies(
  objects: readonly KubeObject[],
  options: AuthorizationEngineOptions & { readonly lastGood?: ReadonlyMap<string, CompiledAuthorizationPolicy> },
): CompileAuthorizationResult {
  void objects; void options;
  throw new Error('compileAuthorizationPolicies: implementation lands in the next commit');
}
