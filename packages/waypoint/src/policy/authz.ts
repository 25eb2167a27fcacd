// L7 AuthorizationPolicy for the waypoint, with Envoy RBAC's semantics as Istio generates them
// (pilot/pkg/security/authz): CUSTOM, then DENY, then ALLOW; AUDIT only marks. Policies reach a waypoint only through
// targetRefs (the waypoint Gateway, a Service or ServiceEntry it serves, or the GatewayClass from the root namespace);
// selector policies are ztunnel's (spec 6.1) and never apply here.
import { BlockList } from 'node:net';
import { parseSpiffeId, type KubeObject } from '@ambit/api';
import { canonicalizeIp, parseCidr } from '@ambit/ztunnel';
import { DiagnosticSink, PolicyConfigError, type PolicyDiagnostic } from './diagnostics.js';
import { headerValue, isRecord, warnUnknownFields } from './fields.js';
import { compileTargetRefs, type TargetRef } from './targets.js';
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
  /** `:authority`/Host, as received (`hosts`: case-insensitive; an exact host also matches `host:<port>`, a
   * `*`-prefix/suffix pattern is compared with the whole authority, as Istio's HostMatcher). */
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

// ---- compile -------------------------------------------------------------------------------------------------

/** Facts derived once per request for the matchers. */
interface Ctx {
  readonly req: RequestAttributes;
  /** Principal without `spiffe://` ('' when none). */
  readonly principal: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly sourceIp?: string;
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  /** Path without query and fragment. */
  readonly path: string;
}

type Pred = (ctx: Ctx) => boolean;

interface Internals {
  readonly targets: readonly TargetRef[];
  /** Rules ORed; undefined entries were none (no rules: matches nothing). */
  readonly rules: readonly Pred[];
  readonly provider?: string;
}

const internals = new WeakMap<CompiledAuthorizationPolicy, Internals>();

const SOURCE_FIELDS = ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** Validates and compiles one AuthorizationPolicy. Throws PolicyConfigError naming the object and field. */
export function compileAuthorizationPolicy(obj: KubeObject): CompiledAuthorizationPolicy {
  const sink = new DiagnosticSink({ kind: obj.kind ?? 'AuthorizationPolicy', metadata: obj.metadata });
  const namespace = obj.metadata.namespace ?? '';
  const name = obj.metadata.name;
  const spec: Record<string, any> = obj.spec ?? {};
  if (!isRecord(spec)) { sink.error('spec', 'must be an object'); sink.throwIfErrors(); }
  warnUnknownFields(spec, ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules'], 'spec', sink);

  const action = (spec.action ?? 'ALLOW') as AuthorizationAction;
  if (!['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'].includes(action)) sink.error('spec.action', `must be one of ALLOW, DENY, AUDIT, CUSTOM, got ${JSON.stringify(spec.action)}`);
  let provider: string | undefined;
  if (action === 'CUSTOM') {
    provider = isRecord(spec.provider) && typeof spec.provider.name === 'string' ? spec.provider.name : undefined;
    if (!provider) sink.error('spec.provider.name', 'is required when action is CUSTOM');
    sink.unsupported('spec.action', 'CUSTOM action is not supported by Ambit: requests matching this policy are denied (fail closed)');
  } else if (spec.provider !== undefined) sink.error('spec.provider', 'may only be set when action is CUSTOM');

  const targets = compileTargetRefs(spec, namespace, sink);
  const rules: Pred[] = [];
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) sink.error('spec.rules', 'must be a list');
  else (spec.rules ?? []).forEach((rule: unknown, i: number) => {
    const pred = compileRule(rule, `spec.rules[${i}]`, sink);
    if (pred) rules.push(pred);
  });
  sink.throwIfErrors();

  const compiled: CompiledAuthorizationPolicy = Object.freeze({
    key: `${namespace}/${name}`,
    namespace,
    name,
    action,
    dryRun: obj.metadata.annotations?.['istio.io/dry-run'] === 'true',
    diagnostics: Object.freeze([...sink.items]),
  });
  internals.set(compiled, { targets, rules, ...(provider ? { provider } : {}) });
  return compiled;
}

function compileRule(rule: unknown, field: string, sink: DiagnosticSink): Pred | undefined {
  if (!isRecord(rule)) { sink.error(field, 'must be an object'); return undefined; }
  warnUnknownFields(rule, ['from', 'to', 'when'], field, sink);
  const parts: Pred[] = [];
  const list = (key: 'from' | 'to' | 'when'): unknown[] => {
    const v = rule[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) { sink.error(`${field}.${key}`, 'must be a list'); return []; }
    return v;
  };
  const from = list('from').map((f, i) => {
    const at = `${field}.from[${i}]`;
    if (!isRecord(f) || !isRecord(f.source)) { sink.error(`${at}.source`, 'must not be nil'); return undefined; }
    return compileFields(f.source, SOURCE_FIELDS, `${at}.source`, sink);
  });
  if (from.length > 0) { const preds = from.filter(Boolean) as Pred[]; parts.push((c) => preds.some((p) => p(c))); }
  const to = list('to').map((t, i) => {
    const at = `${field}.to[${i}]`;
    if (!isRecord(t) || !isRecord(t.operation)) { sink.error(`${at}.operation`, 'must not be nil'); return undefined; }
    return compileFields(t.operation, OPERATION_FIELDS, `${at}.operation`, sink);
  });
  if (to.length > 0) { const preds = to.filter(Boolean) as Pred[]; parts.push((c) => preds.some((p) => p(c))); }
  list('when').forEach((w, i) => { const p = compileCondition(w, `${field}.when[${i}]`, sink); if (p) parts.push(p); });
  // `rules: [{}]` matches every request.
  return (c) => parts.every((p) => p(c));
}

/** One source or operation: set fields ANDed; values within a field ORed; `not*` fields must match none. */
function compileFields(obj: Record<string, any>, fields: readonly string[], at: string, sink: DiagnosticSink): Pred | undefined {
  warnUnknownFields(obj, fields, at, sink);
  const preds: Pred[] = [];
  let any = false;
  for (const f of fields) {
    const values = obj[f];
    if (values === undefined) continue;
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) { sink.error(`${at}.${f}`, 'must be a list of strings'); continue; }
    if (values.length === 0) continue;
    any = true;
    const negative = f.startsWith('not');
    const base = negative ? f[3]!.toLowerCase() + f.slice(4) : f;
    const m = compileValueMatcher(base, values as string[], `${at}.${f}`, sink);
    if (m) preds.push(negative ? (c) => !m(c) : m);
  }
  if (!any) { sink.error(at, 'must not be empty: set at least one field'); return undefined; }
  return (c) => preds.every((p) => p(c));
}

/** Matcher for a list of values of one source/operation field (true when any value matches). */
function compileValueMatcher(field: string, values: string[], at: string, sink: DiagnosticSink): Pred | undefined {
  switch (field) {
    case 'principals': return anyString(values, (c) => c.principal || undefined);
    case 'requestPrincipals': return anyString(values, (c) => c.req.auth?.principal);
    case 'namespaces': return anyString(values, (c) => c.namespace || undefined);
    case 'serviceAccounts': {
      for (const [i, v] of values.entries()) if (!/^[^/]+\/[^/]+$/.test(v)) sink.error(`${at}[${i}]`, `must be "<namespace>/<serviceaccount>", got ${JSON.stringify(v)}`);
      const set = new Set(values);
      return (c) => c.principal !== '' && set.has(`${c.namespace}/${c.serviceAccount}`);
    }
    case 'ipBlocks': return ipMatcher(values, at, sink, (c) => c.sourceIp);
    case 'remoteIpBlocks': return ipMatcher(values, at, sink, (c) => c.remoteIp);
    case 'hosts': { const ms = values.map(hostMatcher); return (c) => ms.some((m) => m(c.req.host)); }
    case 'ports': return portMatcher(values, at, sink, (c) => c.req.destinationPort);
    case 'methods': return anyString(values, (c) => c.req.method);
    case 'paths': {
      const ms = values.map((v, i) => pathMatcher(v, `${at}[${i}]`, sink));
      return (c) => ms.some((m) => m(c.path));
    }
    default: sink.error(at, 'unknown field'); return undefined;
  }
}

/** Istio's StringMatcher: `*` = present and non-empty, `*x` suffix, `x*` prefix, else exact. */
export function matchIstioString(pattern: string, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const v = ignoreCase ? value.toLowerCase() : value;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  if (p === '*') return v !== '';
  if (p.startsWith('*')) return v.endsWith(p.slice(1));
  if (p.endsWith('*')) return v.startsWith(p.slice(0, -1));
  return v === p;
}

function anyString(values: readonly string[], get: (c: Ctx) => string | undefined): Pred {
  return (c) => { const v = get(c); return values.some((p) => matchIstioString(p, v)); };
}

function hostMatcher(pattern: string): (host: string) => boolean {
  const p = pattern.toLowerCase();
  if (p === '*') return (h) => h !== '';
  if (p.startsWith('*')) return (h) => h.toLowerCase().endsWith(p.slice(1));
  if (p.endsWith('*')) return (h) => h.toLowerCase().startsWith(p.slice(0, -1));
  // Exact hosts also match with any port: Istio's regex `(?i)<host>(:[0-9]+)?`.
  return (h) => {
    const l = h.toLowerCase();
    if (l === p) return true;
    return l.startsWith(p) && /^:[0-9]+$/.test(l.slice(p.length));
  };
}

function portMatcher(values: readonly string[], at: string, sink: DiagnosticSink, get: (c: Ctx) => number | undefined): Pred {
  const ports = new Set<number>();
  values.forEach((v, i) => {
    const n = /^\d+$/.test(String(v)) ? Number(v) : NaN;
    if (!(n >= 0 && n <= 65535)) sink.error(`${at}[${i}]`, `must be a port number 0..65535, got ${JSON.stringify(v)}`);
    else ports.add(n);
  });
  return (c) => { const p = get(c); return p !== undefined && ports.has(p); };
}

function ipMatcher(values: readonly string[], at: string, sink: DiagnosticSink, get: (c: Ctx) => string | undefined): Pred {
  const v4 = new BlockList();
  const v6 = new BlockList();
  values.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (typeof cidr === 'string') { sink.error(`${at}[${i}]`, `${JSON.stringify(text)} ${cidr}`); return; }
    if (cidr.family === 4) v4.addSubnet(cidr.address, cidr.prefix, 'ipv4');
    else v6.addSubnet(cidr.address, cidr.prefix, 'ipv6');
  });
  return (c) => {
    const ip = get(c);
    if (!ip) return false;
    return ip.includes(':') ? v6.check(ip, 'ipv6') : v4.check(ip, 'ipv4');
  };
}

/**
 * Istio's path matching: `*` any non-empty path, `*x` suffix, `x*` prefix, exact; a path containing `{*}` or `{**}`
 * is an Envoy URI template: `{*}` matches one path segment, `{**}` one or more (only as the last operator).
 */
function pathMatcher(pattern: string, at: string, sink: DiagnosticSink): (path: string) => boolean {
  if (!pattern.includes('{')) return (p) => matchIstioString(pattern, p);
  if (!pattern.startsWith('/')) { sink.error(at, `path template must start with "/", got ${JSON.stringify(pattern)}`); return () => false; }
  const ops = pattern.match(/\{[^}]*\}/g) ?? [];
  for (const op of ops) if (op !== '{*}' && op !== '{**}') { sink.error(at, `unsupported path template operator ${op}; only {*} and {**} are allowed`); return () => false; }
  const dbl = pattern.indexOf('{**}');
  if (dbl >= 0 && dbl !== pattern.lastIndexOf('{')) { sink.error(at, '{**} must be the last operator of a path template'); return () => false; }
  const parts = pattern.split(/(\{\*\*\}|\{\*\})/);
  let re = '^';
  for (const part of parts) {
    if (part === '{*}') re += '[^/]+';
    else if (part === '{**}') re += '.+';
    else {
      if (part.includes('*') || part.includes('{') || part.includes('}')) { sink.error(at, `path template ${JSON.stringify(pattern)} mixes "*" or braces with {*}/{**}`); return () => false; }
      re += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  const rx = new RegExp(`${re}$`);
  return (p) => rx.test(p);
}

// ---- when conditions -----------------------------------------------------------------------------------------

const WHEN_KEYS = ['source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'request.auth.principal',
  'request.auth.audiences', 'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni'];

function compileCondition(w: unknown, at: string, sink: DiagnosticSink): Pred | undefined {
  if (!isRecord(w)) { sink.error(at, 'must be an object'); return undefined; }
  warnUnknownFields(w, ['key', 'values', 'notValues'], at, sink);
  const key = w.key;
  if (typeof key !== 'string' || key === '') { sink.error(`${at}.key`, 'is required'); return undefined; }
  const values = w.values ?? [];
  const notValues = w.notValues ?? [];
  for (const [f, v] of [['values', values], ['notValues', notValues]] as const) {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) { sink.error(`${at}.${f}`, 'must be a list of strings'); return undefined; }
  }
  if (values.length === 0 && notValues.length === 0) { sink.error(at, `at least one of values or notValues must be set for key ${JSON.stringify(key)}`); return undefined; }
  const matcher = compileConditionKey(key, `${at}.key`, sink);
  if (!matcher) return undefined;
  const pos = values.length > 0 ? matcher(values as string[], `${at}.values`) : undefined;
  const neg = notValues.length > 0 ? matcher(notValues as string[], `${at}.notValues`) : undefined;
  return (c) => (!pos || pos(c)) && (!neg || !neg(c));
}

type ValuesMatcher = (values: string[], at: string) => Pred;

function compileConditionKey(key: string, at: string, sink: DiagnosticSink): ValuesMatcher | undefined {
  if (key.startsWith('experimental.envoy.filters.')) {
    sink.error(at, `${key}: experimental.envoy.filters.* conditions read Envoy filter metadata and are not supported by Ambit`);
    return undefined;
  }
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key);
  if (header) {
    const name = header[1]!.toLowerCase();
    return (values) => (c) => { const v = headerValue(c.req.headers, name); return values.some((p) => matchIstioString(p, v)); };
  }
  if (key.startsWith('request.auth.claims')) {
    const path = parseClaimPath(key.slice('request.auth.claims'.length));
    if (!path) { sink.error(at, `${key}: claims must be written request.auth.claims[name] or request.auth.claims[a][b] for nested claims`); return undefined; }
    return (values) => (c) => {
      const v = claimAt(c.req.auth?.claims, path);
      const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
      return list.some((x) => values.some((p) => matchIstioString(p, x)));
    };
  }
  if (!WHEN_KEYS.includes(key)) {
    sink.error(at, `unknown condition key ${JSON.stringify(key)}; supported: ${WHEN_KEYS.join(', ')}, request.headers[<name>], request.auth.claims[<name>]`);
    return undefined;
  }
  switch (key) {
    case 'source.ip': return (values, vat) => ipMatcher(values, vat, sink, (c) => c.sourceIp);
    case 'remote.ip': return (values, vat) => ipMatcher(values, vat, sink, (c) => c.remoteIp);
    case 'destination.ip': return (values, vat) => ipMatcher(values, vat, sink, (c) => c.destinationIp);
    case 'destination.port': return (values, vat) => portMatcher(values, vat, sink, (c) => c.req.destinationPort);
    case 'source.namespace': return (values) => anyString(values, (c) => c.namespace || undefined);
    case 'source.principal': return (values) => anyString(values, (c) => c.principal || undefined);
    case 'request.auth.principal': return (values) => anyString(values, (c) => c.req.auth?.principal);
    case 'request.auth.presenter': return (values) => anyString(values, (c) => c.req.auth?.presenter);
    case 'connection.sni': return (values) => anyString(values, (c) => c.req.sni);
    case 'request.auth.audiences': return (values) => (c) => (c.req.auth?.audiences ?? []).some((a) => values.some((p) => matchIstioString(p, a)));
    default: return undefined;
  }
}

function parseClaimPath(rest: string): string[] | undefined {
  const out: string[] = [];
  const re = /\[([^\]]+)\]/y;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) return undefined;
    out.push(m[1]!);
    pos = re.lastIndex;
  }
  return out.length > 0 ? out : undefined;
}

function claimAt(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): unknown {
  let cur: unknown = claims;
  for (const k of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

// ---- engine --------------------------------------------------------------------------------------------------

function deriveCtx(req: RequestAttributes): Ctx {
  let principal = req.sourcePrincipal ?? '';
  if (principal.startsWith('spiffe://')) principal = principal.slice('spiffe://'.length);
  const id = principal ? parseSpiffeId(`spiffe://${principal}`) : undefined;
  const q = req.path.search(/[?#]/);
  const sourceIp = req.sourceIp ? canonicalizeIp(req.sourceIp) : undefined;
  const remoteIp = req.remoteIp ? canonicalizeIp(req.remoteIp) : sourceIp;
  const destinationIp = req.destinationIp ? canonicalizeIp(req.destinationIp) : undefined;
  return {
    req,
    principal,
    namespace: req.sourceNamespace ?? id?.namespace ?? '',
    serviceAccount: id?.serviceAccount ?? '',
    ...(sourceIp ? { sourceIp } : {}),
    ...(remoteIp ? { remoteIp } : {}),
    ...(destinationIp ? { destinationIp } : {}),
    path: q >= 0 ? req.path.slice(0, q) : req.path,
  };
}

/** Builds the engine from compiled policies (those not applying to this waypoint are kept but never match). */
export function createAuthorizationEngine(policies: readonly CompiledAuthorizationPolicy[], options: AuthorizationEngineOptions): AuthorizationEngine {
  const root = options.rootNamespace ?? 'istio-system';
  const className = options.gatewayClassName ?? 'istio-waypoint';
  const { waypoint } = options;
  const entries = policies.map((p) => {
    const int = internals.get(p);
    if (!int) throw new TypeError(`AuthorizationPolicy ${p.key} was not produced by compileAuthorizationPolicy`);
    return { policy: p, ...int };
  });
  // Policies targeting this waypoint (or its class) apply to every request; Service/ServiceEntry ones by service.
  const always = entries.filter((e) => e.targets.some((t) =>
    (t.kind === 'Gateway' && e.policy.namespace === waypoint.namespace && t.name === waypoint.name) ||
    (t.kind === 'GatewayClass' && e.policy.namespace === root && t.name === className)));
  const byService = new Map<string, typeof entries>();
  for (const e of entries) {
    if (always.includes(e)) continue;
    for (const t of e.targets) {
      if (t.kind !== 'Service' && t.kind !== 'ServiceEntry') continue;
      const k = `${t.kind}/${e.policy.namespace}/${t.name}`;
      const list = byService.get(k) ?? [];
      if (!list.includes(e)) list.push(e);
      byService.set(k, list);
    }
  }
  type Entry = (typeof entries)[number];
  const matches = (e: Entry, c: Ctx) => e.rules.some((r) => r(c));

  function decide(applicable: readonly Entry[], c: Ctx): Omit<AuthorizationResult, 'audited' | 'dryRun'> {
    for (const e of applicable) {
      if (e.policy.action === 'CUSTOM' && matches(e, c)) {
        return { decision: 'deny', policy: e.policy.key, reason: `denied by CUSTOM policy ${e.policy.key}: CUSTOM action is not supported by Ambit (provider ${JSON.stringify(e.provider ?? '')})` };
      }
    }
    for (const e of applicable) {
      if (e.policy.action === 'DENY' && matches(e, c)) return { decision: 'deny', policy: e.policy.key, reason: `denied by DENY policy ${e.policy.key}` };
    }
    const allow = applicable.filter((e) => e.policy.action === 'ALLOW');
    if (allow.length === 0) return { decision: 'allow', reason: 'allowed: no ALLOW policy applies' };
    for (const e of allow) if (matches(e, c)) return { decision: 'allow', policy: e.policy.key, reason: `allowed by ALLOW policy ${e.policy.key}` };
    return { decision: 'deny', reason: `denied: no ALLOW policy matched (${allow.length} applicable: ${allow.map((e) => e.policy.key).join(', ')})` };
  }

  return {
    policies,
    evaluate(req: RequestAttributes): AuthorizationResult {
      const svc = req.destinationService;
      const applicable = svc ? [...always, ...(byService.get(`${svc.kind}/${svc.namespace}/${svc.name}`) ?? [])] : always;
      if (applicable.length === 0) return { decision: 'allow', reason: 'allowed: no policy applies' };
      const c = deriveCtx(req);
      const enforced = applicable.filter((e) => !e.policy.dryRun);
      const result: { -readonly [K in keyof AuthorizationResult]: AuthorizationResult[K] } = { ...decide(enforced, c) };
      const audited = enforced.filter((e) => e.policy.action === 'AUDIT' && matches(e, c)).map((e) => e.policy.key);
      if (audited.length > 0) result.audited = audited;
      if (enforced.length !== applicable.length) result.dryRun = decide(applicable, c);
      return result;
    },
  };
}

/**
 * Compiles every object and builds the engine. An invalid object is reported and left out, unless `lastGood`
 * holds an earlier compiled version under its `ns/name`, which is kept instead (bad config never removes good).
 */
export function compileAuthorizationPolicies(
  objects: readonly KubeObject[],
  options: AuthorizationEngineOptions & { readonly lastGood?: ReadonlyMap<string, CompiledAuthorizationPolicy> },
): CompileAuthorizationResult {
  const compiled: CompiledAuthorizationPolicy[] = [];
  const diagnostics: PolicyDiagnostic[] = [];
  const rejected: string[] = [];
  for (const obj of objects) {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    try {
      const p = compileAuthorizationPolicy(obj);
      compiled.push(p);
      diagnostics.push(...p.diagnostics);
    } catch (err) {
      if (!(err instanceof PolicyConfigError)) throw err;
      diagnostics.push(...err.diagnostics);
      rejected.push(key);
      const previous = options.lastGood?.get(key);
      if (previous) compiled.push(previous);
    }
  }
  return { engine: createAuthorizationEngine(compiled, options), diagnostics, rejected };
}

