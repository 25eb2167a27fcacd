// RequestAuthentication for the waypoint: Envoy's jwt_authn filter as Istio configures it (every provider in
// `requires_any` with allow_missing): no token passes as anonymous, a token that fails verification is answered
// 401 `Jwt verification fails`, a verified token yields `request.auth.*` for AuthorizationPolicy.
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { KubeObject } from '@ambit/api';
import { DiagnosticSink, PolicyConfigError, type PolicyDiagnostic } from './diagnostics.js';
import { headerValue, isRecord, readStringList, warnUnknownFields } from './fields.js';
import { compileTargetRefs, type TargetRef } from './targets.js';
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

/** Where a token is read from. */
type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

interface JwtRule {
  readonly policy: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUri?: string;
  readonly jwks?: JSONWebKeySet;
  readonly locations: readonly TokenLocation[];
  readonly outputPayloadToHeader?: string;
  readonly forwardOriginalToken: boolean;
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
}

interface Internals {
  readonly targets: readonly TargetRef[];
  readonly rules: readonly JwtRule[];
}

const internals = new WeakMap<CompiledRequestAuthentication, Internals>();

/** Istio's default locations: `Authorization: Bearer <token>` and the `access_token` query parameter. */
const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

/** Validates one RequestAuthentication. Throws PolicyConfigError naming the object and field. */
export function compileRequestAuthentication(obj: KubeObject): CompiledRequestAuthentication {
  const sink = new DiagnosticSink({ kind: obj.kind ?? 'RequestAuthentication', metadata: obj.metadata });
  const namespace = obj.metadata.namespace ?? '';
  const key = `${namespace}/${obj.metadata.name}`;
  const spec: Record<string, any> = isRecord(obj.spec) ? obj.spec : {};
  warnUnknownFields(spec, ['selector', 'targetRef', 'targetRefs', 'jwtRules'], 'spec', sink);
  const targets = compileTargetRefs(spec, namespace, sink);
  const rules: JwtRule[] = [];
  if (spec.jwtRules !== undefined && !Array.isArray(spec.jwtRules)) sink.error('spec.jwtRules', 'must be a list');
  const issuers = new Set<string>();
  (Array.isArray(spec.jwtRules) ? spec.jwtRules : []).forEach((r: unknown, i: number) => {
    const rule = compileJwtRule(r, `spec.jwtRules[${i}]`, key, sink);
    if (!rule) return;
    if (issuers.has(rule.issuer)) sink.error(`spec.jwtRules[${i}].issuer`, `duplicate issuer ${JSON.stringify(rule.issuer)}`);
    issuers.add(rule.issuer);
    rules.push(rule);
  });
  sink.throwIfErrors();
  const compiled: CompiledRequestAuthentication = Object.freeze({ key, namespace, name: obj.metadata.name, diagnostics: Object.freeze([...sink.items]) });
  internals.set(compiled, { targets, rules });
  return compiled;
}

function compileJwtRule(r: unknown, at: string, policy: string, sink: DiagnosticSink): JwtRule | undefined {
  if (!isRecord(r)) { sink.error(at, 'must be an object'); return undefined; }
  warnUnknownFields(r, ['issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies', 'outputPayloadToHeader',
    'forwardOriginalToken', 'outputClaimToHeaders', 'timeout'], at, sink);
  const before = sink.items.length;
  if (typeof r.issuer !== 'string' || r.issuer === '') sink.error(`${at}.issuer`, 'is required');
  const audiences = readStringList(r.audiences, `${at}.audiences`, sink);
  let jwks: JSONWebKeySet | undefined;
  if (r.jwks !== undefined) {
    try {
      const parsed = typeof r.jwks === 'string' ? JSON.parse(r.jwks) : undefined;
      if (!isRecord(parsed) || !Array.isArray(parsed.keys)) throw new Error('no "keys" list');
      jwks = parsed as JSONWebKeySet;
    } catch (e) {
      sink.error(`${at}.jwks`, `must be a JSON Web Key Set as a JSON string: ${(e as Error).message}`);
    }
  }
  if (r.jwksUri !== undefined) {
    if (typeof r.jwksUri !== 'string' || !/^https?:\/\/[^/]+/.test(r.jwksUri)) sink.error(`${at}.jwksUri`, `must be an http(s) URL, got ${JSON.stringify(r.jwksUri)}`);
    if (jwks) sink.warning(`${at}.jwksUri`, 'jwks is set too; the inline jwks is used');
  }
  const locations: TokenLocation[] = [];
  if (r.fromHeaders !== undefined) {
    if (!Array.isArray(r.fromHeaders)) sink.error(`${at}.fromHeaders`, 'must be a list');
    else r.fromHeaders.forEach((h: unknown, i: number) => {
      if (!isRecord(h) || typeof h.name !== 'string' || h.name === '') sink.error(`${at}.fromHeaders[${i}].name`, 'is required');
      else locations.push({ kind: 'header', name: h.name.toLowerCase(), prefix: typeof h.prefix === 'string' ? h.prefix : '' });
    });
  }
  for (const p of readStringList(r.fromParams, `${at}.fromParams`, sink)) locations.push({ kind: 'param', name: p });
  for (const c of readStringList(r.fromCookies, `${at}.fromCookies`, sink)) locations.push({ kind: 'cookie', name: c });
  const claimHeaders: { header: string; claim: string }[] = [];
  if (r.outputClaimToHeaders !== undefined) {
    if (!Array.isArray(r.outputClaimToHeaders)) sink.error(`${at}.outputClaimToHeaders`, 'must be a list');
    else r.outputClaimToHeaders.forEach((c: unknown, i: number) => {
      if (!isRecord(c) || typeof c.header !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(c.header) || typeof c.claim !== 'string' || c.claim === '') {
        sink.error(`${at}.outputClaimToHeaders[${i}]`, 'needs a valid header name and a claim');
      } else claimHeaders.push({ header: c.header.toLowerCase(), claim: c.claim });
    });
  }
  if (r.outputPayloadToHeader !== undefined && (typeof r.outputPayloadToHeader !== 'string' || r.outputPayloadToHeader === '')) {
    sink.error(`${at}.outputPayloadToHeader`, 'must be a header name');
  }
  if (sink.items.slice(before).some((d) => d.severity === 'error')) return undefined;
  return {
    policy,
    issuer: r.issuer as string,
    audiences,
    ...(jwks ? { jwks } : typeof r.jwksUri === 'string' ? { jwksUri: r.jwksUri } : {}),
    locations: locations.length > 0 ? locations : DEFAULT_LOCATIONS,
    ...(r.outputPayloadToHeader ? { outputPayloadToHeader: String(r.outputPayloadToHeader).toLowerCase() } : {}),
    forwardOriginalToken: r.forwardOriginalToken === true,
    outputClaimToHeaders: claimHeaders,
  };
}

/** A failure with Envoy's wording (jwt_authn Status messages). */
class JwtFailure extends Error {}

const defaultFetchJwks: JwksFetcher = async (uri) => {
  const res = await fetch(uri, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
  if (res.status !== 200) throw new Error(`GET ${uri} answered ${res.status}`);
  return res.json();
};

interface JwksEntry {
  keys?: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
  pending?: Promise<void>;
  error?: string;
}

/** Builds the authenticator for this waypoint from every RequestAuthentication. JWKS are fetched lazily and cached. */
export function createJwtAuthenticator(objects: readonly KubeObject[], options: JwtAuthenticatorOptions): JwtAuthenticator {
  const now = options.now ?? Date.now;
  const fetchJwks = options.fetchJwks ?? defaultFetchJwks;
  const cacheMs = options.jwksCacheMs ?? 5 * 60_000;
  const cooldownMs = options.jwksRefetchCooldownMs ?? 30_000;
  const skew = options.clockSkewSeconds ?? 60;
  const root = options.rootNamespace ?? 'istio-system';
  const className = options.gatewayClassName ?? 'istio-waypoint';

  const policies: CompiledRequestAuthentication[] = [];
  const diagnostics: PolicyDiagnostic[] = [];
  const rejected: string[] = [];
  for (const obj of objects) {
    try {
      const p = compileRequestAuthentication(obj);
      policies.push(p);
      diagnostics.push(...p.diagnostics);
    } catch (err) {
      if (!(err instanceof PolicyConfigError)) throw err;
      const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
      diagnostics.push(...err.diagnostics);
      rejected.push(key);
      const prev = options.lastGood?.get(key);
      if (prev) policies.push(prev);
    }
  }
  const always: JwtRule[] = [];
  const byService = new Map<string, JwtRule[]>();
  for (const p of policies) {
    const int = internals.get(p);
    if (!int) throw new TypeError(`RequestAuthentication ${p.key} was not produced by compileRequestAuthentication`);
    const forWaypoint = int.targets.some((t) =>
      (t.kind === 'Gateway' && p.namespace === options.waypoint.namespace && t.name === options.waypoint.name) ||
      (t.kind === 'GatewayClass' && p.namespace === root && t.name === className));
    if (forWaypoint) { always.push(...int.rules); continue; }
    for (const t of int.targets) {
      if (t.kind !== 'Service' && t.kind !== 'ServiceEntry') continue;
      const k = `${t.kind}/${p.namespace}/${t.name}`;
      byService.set(k, [...(byService.get(k) ?? []), ...int.rules]);
    }
  }

  const jwksCache = new Map<string, JwksEntry>();

  async function resolveJwksUri(rule: JwtRule): Promise<string> {
    if (rule.jwksUri) return rule.jwksUri;
    // Neither jwks nor jwksUri: OpenID discovery from the issuer, as istiod does.
    const doc = await fetchJwks(`${rule.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    if (!isRecord(doc) || typeof doc.jwks_uri !== 'string') throw new Error('OpenID configuration has no jwks_uri');
    return doc.jwks_uri;
  }

  async function refresh(rule: JwtRule, entry: JwksEntry): Promise<void> {
    entry.pending ??= (async () => {
      try {
        const uri = await resolveJwksUri(rule);
        const doc = await fetchJwks(uri);
        if (!isRecord(doc) || !Array.isArray(doc.keys)) throw new Error(`${uri} did not return a JSON Web Key Set`);
        entry.keys = createLocalJWKSet(doc as JSONWebKeySet);
        delete entry.error;
      } catch (e) {
        entry.error = (e as Error).message;
      } finally {
        entry.fetchedAt = now();
        delete entry.pending;
      }
    })();
    await entry.pending;
  }

  async function keysFor(rule: JwtRule, forceRefresh: boolean): Promise<ReturnType<typeof createLocalJWKSet>> {
    if (rule.jwks) return createLocalJWKSet(rule.jwks);
    const cacheKey = rule.jwksUri ?? `discovery:${rule.issuer}`;
    let entry = jwksCache.get(cacheKey);
    if (!entry) { entry = { fetchedAt: -Infinity }; jwksCache.set(cacheKey, entry); }
    const age = now() - entry.fetchedAt;
    if (!entry.keys || age >= cacheMs || (forceRefresh && age >= cooldownMs)) await refresh(rule, entry);
    if (!entry.keys) throw new JwtFailure(`Jwks remote fetch is failed (${entry.error ?? 'no keys'})`);
    return entry.keys;
  }

  async function verify(token: string, rule: JwtRule): Promise<JWTPayload> {
    const opts = {
      issuer: rule.issuer,
      ...(rule.audiences.length > 0 ? { audience: [...rule.audiences] } : {}),
      currentDate: new Date(now()),
      clockTolerance: skew,
    };
    try {
      return (await jwtVerify(token, await keysFor(rule, false), opts)).payload;
    } catch (e) {
      if (e instanceof joseErrors.JWKSNoMatchingKey && !rule.jwks) {
        // A rotated key: fetch again (rate-limited by the cooldown) before giving up.
        try { return (await jwtVerify(token, await keysFor(rule, true), opts)).payload; } catch (e2) { throw mapJoseError(e2); }
      }
      throw mapJoseError(e);
    }
  }

  return {
    policies,
    diagnostics,
    rejected,
    async authenticate(req: JwtRequest): Promise<JwtAuthResult> {
      const svc = req.destinationService;
      const rules = svc ? [...always, ...(byService.get(`${svc.kind}/${svc.namespace}/${svc.name}`) ?? [])] : always;
      if (rules.length === 0) return { ok: true, anonymous: true };
      const found = extractTokens(req, rules);
      if (found.length === 0) return { ok: true, anonymous: true };
      let success: Extract<JwtAuthResult, { anonymous: false }> | undefined;
      try {
        for (const { token, location } of found) {
          let iss: unknown;
          try { iss = decodeJwt(token).iss; } catch { throw new JwtFailure('Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'); }
          const rule = rules.find((r) => r.issuer === iss && r.locations.some((l) => sameLocation(l, location)));
          if (!rule) throw new JwtFailure('Jwt issuer is not configured');
          const payload = await verify(token, rule);
          success ??= buildSuccess(token, payload, rule, location);
        }
      } catch (e) {
        return fail(req, e instanceof JwtFailure ? e.message : `Jwt verification fails (${(e as Error).message})`);
      }
      return success!;
    },
  };
}

function sameLocation(a: TokenLocation, b: TokenLocation): boolean {
  return a.kind === b.kind && a.name === b.name && (a.kind !== 'header' || a.prefix === (b as typeof a).prefix);
}

function extractTokens(req: JwtRequest, rules: readonly JwtRule[]): { token: string; location: TokenLocation }[] {
  const seen: TokenLocation[] = [];
  for (const r of rules) for (const l of r.locations) if (!seen.some((s) => sameLocation(s, l))) seen.push(l);
  const out: { token: string; location: TokenLocation }[] = [];
  const q = req.path.indexOf('?');
  const params = q >= 0 ? new URLSearchParams(req.path.slice(q + 1)) : undefined;
  const cookieHeader = headerValue(req.headers, 'cookie');
  for (const l of seen) {
    let token: string | undefined;
    if (l.kind === 'header') {
      const v = headerValue(req.headers, l.name);
      if (v !== undefined) {
        if (l.prefix === '') token = v.trim();
        else if (v.toLowerCase().startsWith(l.prefix.toLowerCase())) token = v.slice(l.prefix.length).trim();
      }
    } else if (l.kind === 'param') token = params?.get(l.name) ?? undefined;
    else if (cookieHeader) {
      for (const part of cookieHeader.split(/;\s*/)) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === l.name) { token = part.slice(eq + 1).trim(); break; }
      }
    }
    if (token) out.push({ token, location: l });
  }
  return out;
}

function mapJoseError(e: unknown): JwtFailure {
  if (e instanceof JwtFailure) return e;
  if (e instanceof joseErrors.JWTExpired) return new JwtFailure('Jwt is expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return new JwtFailure('Audiences in Jwt are not allowed');
    if (e.claim === 'nbf') return new JwtFailure('Jwt not yet valid');
    if (e.claim === 'iss') return new JwtFailure('Jwt issuer is not configured');
    return new JwtFailure(`Jwt verification fails (${e.claim}: ${e.reason})`);
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey) return new JwtFailure("Jwks doesn't have key to match kid or alg from Jwt");
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new JwtFailure('Jwt verification fails');
  if (e instanceof joseErrors.JOSEError) return new JwtFailure(`Jwt verification fails (${e.code})`);
  return new JwtFailure(`Jwt verification fails (${(e as Error).message})`);
}

function buildSuccess(token: string, payload: JWTPayload, rule: JwtRule, location: TokenLocation): Extract<JwtAuthResult, { anonymous: false }> {
  const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  const setHeaders: Record<string, string> = {};
  if (rule.outputPayloadToHeader) setHeaders[rule.outputPayloadToHeader] = token.split('.')[1]!;
  for (const { header, claim } of rule.outputClaimToHeaders) {
    let v: unknown = payload;
    for (const k of claim.split('.')) v = isRecord(v) ? v[k] : undefined;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') setHeaders[header] = String(v);
  }
  return {
    ok: true,
    anonymous: false,
    identity: {
      principal: `${payload.iss ?? ''}/${payload.sub ?? ''}`,
      audiences: aud,
      ...(typeof payload.azp === 'string' ? { presenter: payload.azp } : {}),
      claims: payload as Record<string, unknown>,
    },
    policy: rule.policy,
    issuer: rule.issuer,
    setHeaders,
    removeHeaders: !rule.forwardOriginalToken && location.kind === 'header' ? [location.name] : [],
  };
}

function fail(req: JwtRequest, reason: string): Extract<JwtAuthResult, { ok: false }> {
  const host = headerValue(req.headers, ':authority') ?? headerValue(req.headers, 'host') ?? '';
  const q = req.path.search(/[?#]/);
  const path = q >= 0 ? req.path.slice(0, q) : req.path;
  return {
    ok: false,
    status: 401,
    reason,
    body: 'Jwt verification fails',
    headers: { 'www-authenticate': `Bearer realm="http://${host}${path}", error="invalid_token"` },
  };
}
