// networking.istio.io: VirtualService, DestinationRule, ServiceEntry, WorkloadEntry. The checks are the ones
// istiod's validating webhook makes (istio/istio pkg/config/validation), written from their behaviour.
import { isIP } from 'node:net';
import { MESSAGES } from './diagnostic.js';
import { Checker, isSet, type Json } from './checker.js';
import {
  durationField, exportToField, labelsField, percentField, regexField, stringMatchField,
} from './common.js';
import {
  checkDns1123Label, checkFqdn, checkHeaderName, checkIpOrCidr, checkPort, checkProtocol, checkWildcardDomain,
  isHttpProtocol, isTlsProtocol,
} from './primitives.js';

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
const GRPC_STATUSES = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
]);
const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);
const MESH_GATEWAY = 'mesh';

// ---- VirtualService ---------------------------------------------------------------------------------------------

export function validateVirtualService(c: Checker, spec: Json): void {
  const hosts = c.strings('spec.hosts', spec.hosts);
  const gateways = c.strings('spec.gateways', spec.gateways);
  const http = c.array('spec.http', spec.http);
  const tcp = c.array('spec.tcp', spec.tcp);
  const tls = c.array('spec.tls', spec.tls);
  const delegate = hosts.length === 0;
  if (delegate) {
    // A VirtualService without hosts is only usable as a delegate of another one.
    if (gateways.length > 0) c.error('spec.hosts', 'virtual service must have at least one host (a delegate virtual service, which has none, must have no gateways)');
    else if (tls.length > 0) c.error('spec.hosts', 'virtual service must have at least one host (a delegate virtual service, which has none, must have no tls routes)');
    else if (tcp.length > 0) c.error('spec.hosts', 'virtual service must have at least one host (a delegate virtual service, which has none, must have no tcp routes)');
    else c.warn('spec.hosts', 'no hosts: this virtual service only takes effect as the delegate of another virtual service');
  }
  for (const g of gateways) {
    if (g.value === MESH_GATEWAY) continue;
    const parts = g.value.split('/');
    if (parts.length > 2 || (parts.length === 2 && (checkDns1123Label(parts[0]!) || !parts[1]))) {
      c.error(g.path, `invalid gateway name ${JSON.stringify(g.value)}; use <namespace>/<name> or "mesh"`);
    } else if (parts.length === 1 && checkFqdn(g.value)) c.error(g.path, `invalid gateway name ${JSON.stringify(g.value)}`);
  }
  const appliesToMesh = gateways.length === 0 || gateways.some((g) => g.value === MESH_GATEWAY);
  let allHostsValid = true;
  for (const h of hosts) {
    const problem = checkWildcardDomain(h.value);
    if (problem && !isIP(h.value)) {
      c.error(h.path, problem);
      allHostsValid = false;
    } else if (appliesToMesh && h.value === '*') {
      c.error(h.path, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  }
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsOverlap(hosts[i]!.value, hosts[j]!.value)) c.error(`spec.hosts[${j}]`, `duplicate hosts in virtual service: ${hosts[i]!.value} & ${hosts[j]!.value}`);
      }
    }
  }
  if (http.length === 0 && tcp.length === 0 && tls.length === 0) c.error('spec', 'http, tcp or tls must be provided in virtual service');
  for (const { item, path } of c.objects('spec.http', spec.http)) validateHttpRoute(c, path, item, delegate);
  for (const { item, path } of c.objects('spec.tcp', spec.tcp)) {
    for (const m of c.objects(`${path}.match`, item.match)) l4Match(c, m.path, m.item);
    if (c.array(`${path}.route`, item.route).length === 0) c.error(`${path}.route`, 'TCP route is required');
    routeDestinations(c, `${path}.route`, item.route);
  }
  for (const { item, path } of c.objects('spec.tls', spec.tls)) {
    const matches = c.objects(`${path}.match`, item.match);
    if (matches.length === 0) c.error(`${path}.match`, 'TLS route must have at least one match condition');
    for (const m of matches) {
      const sni = c.strings(`${m.path}.sniHosts`, m.item.sniHosts);
      if (sni.length === 0) c.error(`${m.path}.sniHosts`, 'TLS match must have at least one SNI host');
      for (const s of sni) {
        const problem = checkWildcardDomain(s.value);
        if (problem && !isIP(s.value)) c.error(s.path, problem);
        else if (!problem && !hosts.some((h) => hostSubsetOf(s.value, h.value))) {
          c.error(s.path, `SNI host ${JSON.stringify(s.value)} is not a compatible subset of any of the virtual service hosts: [${hosts.map((h) => h.value).join(', ')}]`);
        }
      }
      l4Match(c, m.path, m.item);
    }
    if (c.array(`${path}.route`, item.route).length === 0) c.error(`${path}.route`, 'TLS route is required');
    routeDestinations(c, `${path}.route`, item.route);
  }
  exportToField(c, 'spec.exportTo', spec.exportTo);
  unreachableRules(c, http);
}

function validateHttpRoute(c: Checker, path: string, r: Json, delegateVs: boolean): void {
  const route = c.array(`${path}.route`, r.route);
  const redirect = c.object(`${path}.redirect`, r.redirect);
  const directResponse = c.object(`${path}.directResponse`, r.directResponse);
  const delegate = c.object(`${path}.delegate`, r.delegate);
  c.string(`${path}.name`, r.name);
  if (delegate) {
    if (delegateVs) c.error(`${path}.delegate`, 'delegate HTTP route cannot contain delegate');
    if (redirect) c.error(`${path}.redirect`, 'root HTTP route must not specify redirect');
    if (route.length > 0) c.error(`${path}.route`, 'root HTTP route must not specify route');
    if (!isSet(delegate.name)) c.error(`${path}.delegate.name`, 'delegate name is required');
  } else {
    if (redirect && route.length > 0) c.error(`${path}.redirect`, 'HTTP route cannot contain both route and redirect');
    if (redirect && directResponse) c.error(`${path}.directResponse`, 'HTTP route cannot contain both redirect and direct response');
    if (directResponse && route.length > 0) c.error(`${path}.directResponse`, 'HTTP route cannot contain both route and direct response');
    if (redirect && r.fault) c.error(`${path}.fault`, 'HTTP route cannot contain both fault and redirect');
    if (redirect && r.rewrite) c.error(`${path}.rewrite`, 'HTTP route rule cannot contain both rewrite and redirect');
    if (!redirect && !directResponse && route.length === 0) c.error(`${path}.route`, 'HTTP route, redirect or direct response is required');
  }
  for (const m of c.objects(`${path}.match`, r.match)) httpMatch(c, m.path, m.item, !!delegate || delegateVs);
  headerOperations(c, `${path}.headers`, r.headers);
  cors(c, `${path}.corsPolicy`, r.corsPolicy);
  fault(c, `${path}.fault`, r.fault);
  if (r.mirrorPercent !== undefined) {
    const v = c.wrapped(`${path}.mirrorPercent`, r.mirrorPercent);
    if (v !== undefined && (v < 0 || v > 100)) c.error(`${path}.mirrorPercent`, `mirror_percent must be in range 0..100 (it has ${v})`);
    c.warn(`${path}.mirrorPercent`, 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead');
  }
  percentField(c, `${path}.mirrorPercentage`, r.mirrorPercentage);
  const mirror = c.object(`${path}.mirror`, r.mirror);
  if (mirror) destination(c, `${path}.mirror`, mirror);
  for (const m of c.objects(`${path}.mirrors`, r.mirrors)) {
    const d = c.object(`${m.path}.destination`, m.item.destination);
    if (!d) c.error(`${m.path}.destination`, 'destination is required for mirrors');
    else destination(c, `${m.path}.destination`, d);
    percentField(c, `${m.path}.percentage`, m.item.percentage);
  }
  if (redirect) httpRedirect(c, `${path}.redirect`, redirect);
  if (directResponse) {
    const status = c.integer(`${path}.directResponse.status`, directResponse.status);
    if (status === undefined) c.error(`${path}.directResponse.status`, 'status is required');
    else if (status < 200 || status > 599) c.error(`${path}.directResponse.status`, `HTTP status ${status} is not in range 200-599`);
    const body = c.object(`${path}.directResponse.body`, directResponse.body);
    if (body) {
      const size = typeof body.string === 'string' ? body.string.length : typeof body.bytes === 'string' ? Math.floor((body.bytes.length * 3) / 4) : 0;
      if (size > 1024 * 1024) c.error(`${path}.directResponse.body`, 'large direct_responses may impact control plane performance, must be less than 1MB');
      else if (size > 100 * 1024) c.warn(`${path}.directResponse.body`, 'large direct_responses may impact control plane performance');
    }
  }
  retries(c, `${path}.retries`, r.retries);
  rewrite(c, `${path}.rewrite`, r.rewrite);
  httpRouteDestinations(c, `${path}.route`, r.route);
  if (r.timeout !== undefined) durationField(c, `${path}.timeout`, r.timeout, { allowZero: true });
}

function httpMatch(c: Checker, path: string, m: Json, delegating: boolean): void {
  c.string(`${path}.name`, m.name);
  for (const field of ['uri', 'scheme', 'method', 'authority'] as const) {
    const kind = stringMatchField(c, `${path}.${field}`, m[field]);
    if (delegating && kind === 'regex') c.error(`${path}.${field}`, `${field} match does not support regex match for delegating`);
  }
  for (const [key, label] of [['headers', 'header'], ['withoutHeaders', 'withoutHeaders']] as const) {
    const headers = c.object(`${path}.${key}`, m[key]);
    for (const [name, v] of Object.entries(headers ?? {})) {
      const p = `${path}.${key}[${JSON.stringify(name)}]`;
      // `@request.auth.claims.*` routes on JWT claims (gateways only); other names are header names.
      if (!name.startsWith('@request.auth.claims')) {
        const problem = checkHeaderName(name, { pseudo: true });
        if (problem) c.error(p, problem);
      }
      if (v === null) c.error(p, `${label} match ${name} cannot be null`);
      else if (isSet(v)) stringMatchField(c, p, v);
    }
  }
  const qp = c.object(`${path}.queryParams`, m.queryParams);
  for (const [name, v] of Object.entries(qp ?? {})) {
    const p = `${path}.queryParams[${JSON.stringify(name)}]`;
    if (v === null) c.error(p, `query param match ${name} cannot be null`);
    else if (isSet(v)) stringMatchField(c, p, v);
  }
  const port = c.integer(`${path}.port`, m.port);
  if (port !== undefined && port !== 0) portCheck(c, `${path}.port`, port);
  labelsField(c, `${path}.sourceLabels`, m.sourceLabels);
  const sourceNamespace = c.string(`${path}.sourceNamespace`, m.sourceNamespace);
  if (sourceNamespace && checkDns1123Label(sourceNamespace)) c.error(`${path}.sourceNamespace`, `sourceNamespace match ${sourceNamespace} is invalid`);
  c.boolean(`${path}.ignoreUriCase`, m.ignoreUriCase);
}

function l4Match(c: Checker, path: string, m: Json): void {
  for (const s of c.strings(`${path}.destinationSubnets`, m.destinationSubnets)) {
    const problem = checkIpOrCidr(s.value);
    if (problem) c.error(s.path, problem);
  }
  const port = c.integer(`${path}.port`, m.port);
  if (port !== undefined && port !== 0) portCheck(c, `${path}.port`, port);
  labelsField(c, `${path}.sourceLabels`, m.sourceLabels);
}

function headerOperations(c: Checker, path: string, v: unknown): void {
  const h = c.object(path, v);
  if (!h) return;
  for (const dir of ['request', 'response'] as const) {
    const ops = c.object(`${path}.${dir}`, h[dir]);
    if (!ops) continue;
    for (const op of ['set', 'add'] as const) {
      for (const [name] of c.stringMap(`${path}.${dir}.${op}`, ops[op])) headerOperationName(c, `${path}.${dir}.${op}[${JSON.stringify(name)}]`, name, dir === 'request');
    }
    for (const s of c.strings(`${path}.${dir}.remove`, ops.remove)) headerOperationName(c, s.path, s.value, false);
  }
}

function headerOperationName(c: Checker, path: string, name: string, allowAuthority: boolean): void {
  if (name === '') c.error(path, 'header name cannot be empty');
  else if (allowAuthority && (name.toLowerCase() === ':authority' || name.toLowerCase() === 'host')) return;
  else if (name.toLowerCase() === 'host') c.error(path, `invalid header ${JSON.stringify(name)}: cannot set Host header`);
  else if (name.startsWith(':')) c.error(path, `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`);
}

function cors(c: Checker, path: string, v: unknown): void {
  const p = c.object(path, v);
  if (!p) return;
  for (const o of c.objects(`${path}.allowOrigins`, p.allowOrigins)) stringMatchField(c, o.path, o.item);
  for (const o of c.strings(`${path}.allowOrigin`, p.allowOrigin)) if (o.value === '') c.error(o.path, 'allowOrigin must not be empty');
  for (const m of c.strings(`${path}.allowMethods`, p.allowMethods)) {
    if (!CORS_METHODS.has(m.value)) c.error(m.path, `${JSON.stringify(m.value)} is not a supported HTTP method`);
  }
  for (const key of ['allowHeaders', 'exposeHeaders'] as const) {
    for (const h of c.strings(`${path}.${key}`, p[key])) {
      if (h.value !== '*') {
        const problem = checkHeaderName(h.value);
        if (problem) c.error(h.path, problem);
      }
    }
  }
  if (p.maxAge !== undefined && durationField(c, `${path}.maxAge`, p.maxAge)) {
    if (!/^\d+s$|^\d+m$|^\d+h$/.test(String(p.maxAge))) c.error(`${path}.maxAge`, 'max_age duration is accurate only to seconds precision');
  }
  c.boolean(`${path}.allowCredentials`, p.allowCredentials);
}

function fault(c: Checker, path: string, v: unknown): void {
  const f = c.object(path, v);
  if (!f) return;
  const abort = c.object(`${path}.abort`, f.abort);
  const delay = c.object(`${path}.delay`, f.delay);
  if (!abort && !delay) c.error(path, 'HTTP fault injection must have an abort and/or a delay');
  if (abort) {
    percentField(c, `${path}.abort.percentage`, abort.percentage);
    if (abort.percent !== undefined) percentField(c, `${path}.abort.percent`, abort.percent);
    const kinds = ['httpStatus', 'grpcStatus', 'http2Error'].filter((k) => abort[k] !== undefined && abort[k] !== null);
    if (kinds.length > 1) c.error(`${path}.abort`, `only one of httpStatus, grpcStatus or http2Error may be set, got ${kinds.join(' and ')}`);
    if (kinds.length === 0) c.warn(`${path}.abort`, 'abort configured, but error type not set');
    const status = c.integer(`${path}.abort.httpStatus`, abort.httpStatus);
    if (status !== undefined && (status < 200 || status > 599)) c.error(`${path}.abort.httpStatus`, `HTTP status ${status} is not in range 200-599`);
    const grpc = c.string(`${path}.abort.grpcStatus`, abort.grpcStatus);
    if (grpc !== undefined && !GRPC_STATUSES.has(grpc)) c.error(`${path}.abort.grpcStatus`, `gRPC status ${JSON.stringify(grpc)} is not supported; use a name such as NOT_FOUND or UNAVAILABLE`);
    if (abort.http2Error !== undefined) c.error(`${path}.abort.http2Error`, 'HTTP/2 abort fault injection not supported yet');
  }
  if (delay) {
    percentField(c, `${path}.delay.percentage`, delay.percentage);
    if (delay.percent !== undefined) percentField(c, `${path}.delay.percent`, delay.percent);
    const fixed = delay.fixedDelay !== undefined && delay.fixedDelay !== null;
    const exp = delay.exponentialDelay !== undefined && delay.exponentialDelay !== null;
    if (fixed && exp) c.error(`${path}.delay`, 'only one of fixedDelay or exponentialDelay may be set');
    if (!fixed && !exp) c.error(`${path}.delay.fixedDelay`, 'fixedDelay is required for a delay fault');
    if (fixed) durationField(c, `${path}.delay.fixedDelay`, delay.fixedDelay);
    if (exp) {
      durationField(c, `${path}.delay.exponentialDelay`, delay.exponentialDelay);
      c.error(`${path}.delay.exponentialDelay`, 'exponentialDelay not supported yet');
    }
  }
}

function httpRedirect(c: Checker, path: string, r: Json): void {
  const uri = c.string(`${path}.uri`, r.uri);
  const authority = c.string(`${path}.authority`, r.authority);
  const scheme = c.string(`${path}.scheme`, r.scheme);
  const port = c.integer(`${path}.port`, r.port);
  const derive = c.enumValue(`${path}.derivePort`, r.derivePort, ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']);
  if (!uri && !authority && !scheme && port === undefined && derive === undefined) c.error(path, 'redirect must specify URI, authority, scheme, or port');
  if (port !== undefined && derive !== undefined) c.error(path, 'only one of port or derivePort may be set');
  const code = c.integer(`${path}.redirectCode`, r.redirectCode);
  if (code !== undefined && code !== 0 && (code < 300 || code > 399)) c.error(`${path}.redirectCode`, `${code} is not a valid redirect code, must be 3xx`);
  if (scheme !== undefined && scheme !== '' && scheme !== 'http' && scheme !== 'https') c.error(`${path}.scheme`, 'invalid redirect scheme, must be "http" or "https"');
  if (port !== undefined) portCheck(c, `${path}.port`, port);
}

function retries(c: Checker, path: string, v: unknown): void {
  const r = c.object(path, v);
  if (!r) return;
  const attempts = c.integer(`${path}.attempts`, r.attempts);
  if (attempts !== undefined && attempts < 0) c.error(`${path}.attempts`, `attempts cannot be negative (got ${attempts})`);
  if ((attempts ?? 0) === 0 && (isSet(r.perTryTimeout) || isSet(r.retryOn) || r.retryRemoteLocalities !== undefined)) {
    c.error(`${path}.attempts`, 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  if (r.perTryTimeout !== undefined) durationField(c, `${path}.perTryTimeout`, r.perTryTimeout);
  if (r.backoff !== undefined) durationField(c, `${path}.backoff`, r.backoff);
  const on = c.string(`${path}.retryOn`, r.retryOn);
  if (on) {
    for (const policy of on.split(',')) {
      const code = /^\d{3}$/.test(policy) ? Number(policy) : NaN;
      if (!(code >= 100 && code <= 599) && !RETRY_ON.has(policy)) c.error(`${path}.retryOn`, `${JSON.stringify(policy)} is not a valid retryOn policy`);
    }
  }
  c.boolean(`${path}.retryRemoteLocalities`, r.retryRemoteLocalities);
}

function rewrite(c: Checker, path: string, v: unknown): void {
  const r = c.object(path, v);
  if (!r) return;
  const uri = c.string(`${path}.uri`, r.uri);
  const authority = c.string(`${path}.authority`, r.authority);
  const regex = c.object(`${path}.uriRegexRewrite`, r.uriRegexRewrite);
  if (uri && regex) c.error(path, 'rewrite may only contain one of URI or UriRegexRewrite');
  if (!uri && !regex && !authority) c.error(path, 'rewrite must specify at least one of URI, UriRegexRewrite, or authority');
  if (regex) {
    const match = c.string(`${path}.uriRegexRewrite.match`, regex.match);
    const replacement = c.string(`${path}.uriRegexRewrite.rewrite`, regex.rewrite);
    if (!match || replacement === undefined || replacement === '') c.error(`${path}.uriRegexRewrite`, 'UriRegexRewrite requires both Rewrite and Match fields to be specified');
    if (match) regexField(c, `${path}.uriRegexRewrite.match`, match);
  }
}

function httpRouteDestinations(c: Checker, path: string, v: unknown): void {
  const items = c.objects(path, v);
  let total = 0;
  for (const { item, path: p } of items) {
    const d = c.object(`${p}.destination`, item.destination);
    if (!d) c.error(`${p}.destination`, 'destination is required');
    else destination(c, `${p}.destination`, d);
    headerOperations(c, `${p}.headers`, item.headers);
    total += weight(c, `${p}.weight`, item.weight);
  }
  if (items.length > 1 && total === 0) c.error(path, 'total destination weight = 0; give at least one destination a weight above 0');
}

function routeDestinations(c: Checker, path: string, v: unknown): void {
  const items = c.objects(path, v);
  let total = 0;
  for (const { item, path: p } of items) {
    const d = c.object(`${p}.destination`, item.destination);
    if (!d) c.error(`${p}.destination`, 'destination is required');
    else destination(c, `${p}.destination`, d);
    total += weight(c, `${p}.weight`, item.weight);
  }
  if (items.length > 1 && total === 0) c.error(path, 'total destination weight = 0; give at least one destination a weight above 0');
}

/**
 * Route weights: Istio (since 1.x) only requires weight >= 0 and, with several destinations, a total above 0;
 * weights are relative and need not add up to 100.
 */
function weight(c: Checker, path: string, v: unknown): number {
  const w = c.integer(path, v);
  if (w === undefined) return 0;
  if (w < 0) {
    c.error(path, `weight ${w} < 0; weights must be 0 or more`);
    return 0;
  }
  return w;
}

function destination(c: Checker, path: string, d: Json): void {
  const host = c.string(`${path}.host`, d.host);
  if (!host) c.error(`${path}.host`, 'destination host is required');
  else if (host === '*') c.error(`${path}.host`, `invalid destination host ${host}`);
  else {
    const problem = checkWildcardDomain(host);
    if (problem) c.error(`${path}.host`, problem);
  }
  const subset = c.string(`${path}.subset`, d.subset);
  if (subset !== undefined && subset !== '') {
    const problem = checkDns1123Label(subset);
    if (problem) c.error(`${path}.subset`, `subset name is invalid: ${problem}`);
  }
  const port = c.object(`${path}.port`, d.port);
  if (port) {
    const n = c.integer(`${path}.port.number`, port.number);
    if (n !== undefined) portCheck(c, `${path}.port.number`, n);
  }
}

function portCheck(c: Checker, path: string, n: number): void {
  const problem = checkPort(n);
  if (problem) c.error(path, problem);
}

/** IST0130/IST0131 as Istio's validation reports them: rules after a catch-all, and exact duplicate matches. */
function unreachableRules(c: Checker, http: unknown[]): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  http.forEach((r, i) => {
    if (!r || typeof r !== 'object') return;
    const route = r as Json;
    const name = typeof route.name === 'string' && route.name ? JSON.stringify(route.name) : `#${i}`;
    const matches = Array.isArray(route.match) ? route.match : [];
    if (matches.length === 0) {
      if (catchAll >= 0) c.report(MESSAGES.VirtualServiceUnreachableRule, `VirtualService rule ${name} not used (only the last rule can have no matches).`, `spec.http[${i}]`);
      catchAll = i;
      return;
    }
    let duplicates = 0;
    matches.forEach((m: unknown, j: number) => {
      if (catchAll >= 0) {
        c.report(MESSAGES.VirtualServiceUnreachableRule, `VirtualService rule ${name} not used (route without matches defined before).`, `spec.http[${i}]`);
        return;
      }
      const key = canonicalMatch(m);
      const dup = seen.get(key);
      if (dup !== undefined) {
        duplicates++;
        const mname = m && typeof m === 'object' && typeof (m as Json).name === 'string' ? JSON.stringify((m as Json).name) : `#${j}`;
        c.report(MESSAGES.VirtualServiceIneffectiveMatch, `VirtualService rule ${name} match ${mname} is not used (duplicate/overlapping match in rule #${dup}).`, `spec.http[${i}].match[${j}]`);
      } else seen.set(key, i);
    });
    if (catchAll < 0 && duplicates === matches.length) c.report(MESSAGES.VirtualServiceUnreachableRule, `VirtualService rule ${name} not used (all matches used by prior rules).`, `spec.http[${i}]`);
  });
}

function canonicalMatch(m: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (x && typeof x === 'object') {
      return Object.fromEntries(Object.entries(x as Json).filter(([k]) => k !== 'name').sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sort(v)]));
    }
    return x;
  };
  return JSON.stringify(sort(m));
}

/** Istio's host.Name.Matches: equal, or one wildcard covers the other. */
export function hostsOverlap(a: string, b: string): boolean {
  return hostSubsetOf(a, b) || hostSubsetOf(b, a);
}

/** `a` is covered by `b` (`foo.example.com` by `*.example.com`, anything by `*`). */
export function hostSubsetOf(a: string, b: string): boolean {
  if (a === b || b === '*') return true;
  if (b.startsWith('*')) {
    const suffix = b.slice(1);
    return a.startsWith('*') ? a.slice(1).endsWith(suffix) : a.endsWith(suffix);
  }
  return false;
}

// ---- DestinationRule --------------------------------------------------------------------------------------------

const LB_SIMPLE = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] as const;
const CLIENT_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

export function validateDestinationRule(c: Checker, spec: Json): void {
  const host = c.string('spec.host', spec.host);
  if (!host) c.error('spec.host', 'host is required');
  else {
    const problem = checkWildcardDomain(host);
    if (problem) c.error('spec.host', problem);
  }
  trafficPolicy(c, 'spec.trafficPolicy', spec.trafficPolicy);
  const names = new Set<string>();
  for (const { item, path } of c.objects('spec.subsets', spec.subsets)) {
    const name = c.string(`${path}.name`, item.name);
    if (!name) c.error(`${path}.name`, 'subset name cannot be empty');
    else {
      if (names.has(name)) c.error(`${path}.name`, `duplicate subset names: ${name}`);
      names.add(name);
      const problem = checkDns1123Label(name);
      if (problem) c.error(`${path}.name`, `subset name is invalid: ${problem}`);
    }
    labelsField(c, `${path}.labels`, item.labels);
    trafficPolicy(c, `${path}.trafficPolicy`, item.trafficPolicy);
  }
  const exportTo = exportToField(c, 'spec.exportTo', spec.exportTo);
  const ws = c.object('spec.workloadSelector', spec.workloadSelector);
  if (ws) {
    const labels = labelsField(c, 'spec.workloadSelector.matchLabels', ws.matchLabels);
    if (labels.length === 0) c.warn('spec.workloadSelector', 'workload selector specified without labels');
    const others = exportTo.filter((e) => e !== '.' && e !== c.namespace);
    if (others.length > 0) c.error('spec.exportTo', 'destination rule with workload selector cannot have exportTo beyond current namespace');
  }
}

function trafficPolicy(c: Checker, path: string, v: unknown, portLevel = false): void {
  const p = c.object(path, v);
  if (!p) return;
  const fields = portLevel
    ? ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls']
    : ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol'];
  if (!fields.some((f) => p[f] !== undefined && p[f] !== null)) {
    c.error(path, `${portLevel ? 'port traffic policy' : 'traffic policy'} must have at least one field (${fields.join(', ')})`);
    return;
  }
  if (isSet(p.tunnel) && isSet(p.proxyProtocol)) c.error(path, 'tunnel and proxyProtocol must not be set together');
  outlierDetection(c, `${path}.outlierDetection`, p.outlierDetection);
  connectionPool(c, `${path}.connectionPool`, p.connectionPool);
  loadBalancer(c, `${path}.loadBalancer`, p.loadBalancer, p.outlierDetection);
  clientTls(c, `${path}.tls`, p.tls);
  if (portLevel) {
    const port = c.object(`${path}.port`, p.port);
    if (!port) c.error(`${path}.port`, 'portTrafficPolicy must have valid port');
    else {
      const n = c.integer(`${path}.port.number`, port.number);
      if (n === undefined) c.error(`${path}.port.number`, 'port number is required');
      else portCheck(c, `${path}.port.number`, n);
    }
    return;
  }
  for (const { item, path: pp } of c.objects(`${path}.portLevelSettings`, p.portLevelSettings)) trafficPolicy(c, pp, item, true);
  const tunnel = c.object(`${path}.tunnel`, p.tunnel);
  if (tunnel) {
    const proto = c.string(`${path}.tunnel.protocol`, tunnel.protocol);
    if (proto && proto !== 'CONNECT' && proto !== 'POST') c.error(`${path}.tunnel.protocol`, 'tunnel protocol must be "CONNECT" or "POST"');
    const target = c.string(`${path}.tunnel.targetHost`, tunnel.targetHost) ?? '';
    if (!isIP(target) && checkFqdn(target)) c.error(`${path}.tunnel.targetHost`, `tunnel target host must be valid FQDN or IP address, got ${JSON.stringify(target)}`);
    const tp = c.integer(`${path}.tunnel.targetPort`, tunnel.targetPort);
    if (tp === undefined) c.error(`${path}.tunnel.targetPort`, 'tunnel target port is required');
    else portCheck(c, `${path}.tunnel.targetPort`, tp);
  }
  const pp = c.object(`${path}.proxyProtocol`, p.proxyProtocol);
  if (pp) c.enumValue(`${path}.proxyProtocol.version`, pp.version, ['V1', 'V2']);
}

function outlierDetection(c: Checker, path: string, v: unknown): void {
  const o = c.object(path, v);
  if (!o) return;
  if (o.baseEjectionTime !== undefined) durationField(c, `${path}.baseEjectionTime`, o.baseEjectionTime);
  if (o.interval !== undefined) durationField(c, `${path}.interval`, o.interval);
  if (o.consecutiveErrors !== undefined) {
    c.integer(`${path}.consecutiveErrors`, o.consecutiveErrors);
    c.warn(`${path}.consecutiveErrors`, 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead');
  }
  for (const f of ['consecutiveGatewayErrors', 'consecutive5xxErrors', 'consecutiveLocalOriginFailures'] as const) {
    const n = c.wrapped(`${path}.${f}`, o[f]);
    if (n !== undefined && (n < 0 || !Number.isInteger(n))) c.error(`${path}.${f}`, `${f} must be a non-negative integer, got ${n}`);
  }
  const split = c.boolean(`${path}.splitExternalLocalOriginErrors`, o.splitExternalLocalOriginErrors);
  const local = c.wrapped(`${path}.consecutiveLocalOriginFailures`, o.consecutiveLocalOriginFailures);
  if (!split && (local ?? 0) > 0) {
    c.error(`${path}.consecutiveLocalOriginFailures`, 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false');
  }
  for (const f of ['maxEjectionPercent', 'minHealthPercent'] as const) {
    const n = c.integer(`${path}.${f}`, o[f]);
    if (n !== undefined && (n < 0 || n > 100)) c.error(`${path}.${f}`, `percentage ${n} is not in range 0..100`);
  }
}

function connectionPool(c: Checker, path: string, v: unknown): void {
  const p = c.object(path, v);
  if (!p) return;
  const http = c.object(`${path}.http`, p.http);
  const tcp = c.object(`${path}.tcp`, p.tcp);
  if (!http && !tcp) {
    c.error(path, 'connection pool must have at least one field (http or tcp)');
    return;
  }
  const nonNegative = (base: string, o: Json, f: string): void => {
    const n = c.integer(`${base}.${f}`, o[f]);
    if (n !== undefined && n < 0) c.error(`${base}.${f}`, `${f} must be non-negative, got ${n}`);
  };
  if (http) {
    for (const f of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']) nonNegative(`${path}.http`, http, f);
    if (http.idleTimeout !== undefined) durationField(c, `${path}.http.idleTimeout`, http.idleTimeout);
    const h2 = c.enumValue(`${path}.http.h2UpgradePolicy`, http.h2UpgradePolicy, ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']);
    if (h2 === 'UPGRADE' && c.boolean(`${path}.http.useClientProtocol`, http.useClientProtocol)) {
      c.error(`${path}.http.useClientProtocol`, 'use client protocol must not be true when H2UpgradePolicy is UPGRADE');
    }
  }
  if (tcp) {
    nonNegative(`${path}.tcp`, tcp, 'maxConnections');
    if (tcp.connectTimeout !== undefined) durationField(c, `${path}.tcp.connectTimeout`, tcp.connectTimeout);
    if (tcp.maxConnectionDuration !== undefined) durationField(c, `${path}.tcp.maxConnectionDuration`, tcp.maxConnectionDuration);
    if (tcp.idleTimeout !== undefined) durationField(c, `${path}.tcp.idleTimeout`, tcp.idleTimeout, { allowZero: true });
    const ka = c.object(`${path}.tcp.tcpKeepalive`, tcp.tcpKeepalive);
    if (ka) {
      if (ka.time !== undefined) durationField(c, `${path}.tcp.tcpKeepalive.time`, ka.time);
      if (ka.interval !== undefined) durationField(c, `${path}.tcp.tcpKeepalive.interval`, ka.interval);
      nonNegative(`${path}.tcp.tcpKeepalive`, ka, 'probes');
    }
  }
}

function loadBalancer(c: Checker, path: string, v: unknown, outlier: unknown): void {
  const lb = c.object(path, v);
  if (!lb) return;
  if (isSet(lb.simple) && isSet(lb.consistentHash)) c.error(path, 'only one of simple or consistentHash may be set');
  c.enumValue(`${path}.simple`, lb.simple, LB_SIMPLE);
  const ch = c.object(`${path}.consistentHash`, lb.consistentHash);
  if (ch) {
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => ch[k] !== undefined && ch[k] !== null);
    if (keys.length > 1) c.error(`${path}.consistentHash`, `only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName may be set, got ${keys.join(' and ')}`);
    const cookie = c.object(`${path}.consistentHash.httpCookie`, ch.httpCookie);
    if (cookie) {
      if (!c.string(`${path}.consistentHash.httpCookie.name`, cookie.name)) c.error(`${path}.consistentHash.httpCookie.name`, 'name required for HttpCookie');
      if (cookie.ttl !== undefined) durationField(c, `${path}.consistentHash.httpCookie.ttl`, cookie.ttl, { allowZero: true });
    }
    if (isSet(ch.ringHash) && isSet(ch.maglev)) c.error(`${path}.consistentHash`, 'only one of ringHash or maglev may be set');
    if (ch.minimumRingSize !== undefined) {
      c.warn(`${path}.consistentHash.minimumRingSize`, "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead");
      if (isSet(ch.ringHash) || isSet(ch.maglev)) c.error(`${path}.consistentHash`, 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
    }
    const maglev = c.object(`${path}.consistentHash.maglev`, ch.maglev);
    if (maglev) {
      const size = c.integer(`${path}.consistentHash.maglev.tableSize`, maglev.tableSize);
      if (!size) c.error(`${path}.consistentHash.maglev.tableSize`, 'tableSize must be set for maglev');
      else if (size >= 5000011) c.error(`${path}.consistentHash.maglev.tableSize`, 'tableSize must be less than 5000011 for maglev');
      else if (!isPrime(size)) c.error(`${path}.consistentHash.maglev.tableSize`, `tableSize must be a prime number for maglev, got ${size}`);
    }
  }
  const locality = c.object(`${path}.localityLbSetting`, lb.localityLbSetting);
  if (locality) {
    const distribute = c.array(`${path}.localityLbSetting.distribute`, locality.distribute);
    const failover = c.array(`${path}.localityLbSetting.failover`, locality.failover);
    if (distribute.length > 0 && failover.length > 0) c.error(`${path}.localityLbSetting`, 'can not simultaneously specify \'distribute\' and \'failover\'');
    if (failover.length > 0 && !outlier) c.warn(`${path}.localityLbSetting.failover`, 'locality failover only takes effect with outlierDetection configured');
    for (const d of c.objects(`${path}.localityLbSetting.distribute`, locality.distribute)) {
      const to = c.object(`${d.path}.to`, d.item.to);
      const sum = Object.values(to ?? {}).reduce<number>((s, x) => s + (typeof x === 'number' ? x : 0), 0);
      if (to && sum !== 100) c.error(`${d.path}.to`, `total weight of a locality distribution must be 100, got ${sum}`);
    }
  }
  const warmup = c.object(`${path}.warmup`, lb.warmup);
  if (warmup) {
    if (warmup.duration === undefined) c.error(`${path}.warmup.duration`, 'duration is required');
    else durationField(c, `${path}.warmup.duration`, warmup.duration);
    const min = c.wrapped(`${path}.warmup.minimumPercent`, warmup.minimumPercent);
    if (min !== undefined && (min < 0 || min > 100)) c.error(`${path}.warmup.minimumPercent`, 'minimumPercent value should be between 0 and 100');
    const aggression = c.wrapped(`${path}.warmup.aggression`, warmup.aggression);
    if (aggression !== undefined && aggression < 1) c.error(`${path}.warmup.aggression`, 'aggression should be greater than or equal to 1');
  }
  if (lb.warmupDurationSecs !== undefined) durationField(c, `${path}.warmupDurationSecs`, lb.warmupDurationSecs);
}

function isPrime(x: number): boolean {
  if (x < 2) return false;
  if (x < 4) return true;
  if (x % 2 === 0) return false;
  for (let f = 3; f * f <= x; f += 2) if (x % f === 0) return false;
  return true;
}

function clientTls(c: Checker, path: string, v: unknown): void {
  const t = c.object(path, v);
  if (!t) return;
  const mode = c.enumValue(`${path}.mode`, t.mode, CLIENT_TLS_MODES);
  const credentialName = c.string(`${path}.credentialName`, t.credentialName);
  const cert = c.string(`${path}.clientCertificate`, t.clientCertificate);
  const key = c.string(`${path}.privateKey`, t.privateKey);
  for (const s of c.strings(`${path}.subjectAltNames`, t.subjectAltNames)) if (s.value === '') c.error(s.path, 'subjectAltNames must not be empty strings');
  c.string(`${path}.sni`, t.sni);
  c.boolean(`${path}.insecureSkipVerify`, t.insecureSkipVerify);
  if (mode === 'ISTIO_MUTUAL') {
    for (const f of ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const) {
      if (isSet(t[f])) c.error(`${path}.${f}`, `ISTIO_MUTUAL TLS cannot have associated ${f}`);
    }
  }
  if (mode === 'MUTUAL' && !credentialName) {
    if (!cert) c.error(`${path}.clientCertificate`, 'client certificate required for mutual tls');
    if (!key) c.error(`${path}.privateKey`, 'private key required for mutual tls');
  }
}

// ---- ServiceEntry / WorkloadEntry ------------------------------------------------------------------------------

const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;

export function validateServiceEntry(c: Checker, spec: Json): void {
  const hosts = c.strings('spec.hosts', spec.hosts);
  if (hosts.length === 0) c.error('spec.hosts', 'service entry must have at least one host');
  for (const h of hosts) {
    if (h.value === '*') c.error(h.path, `invalid host ${h.value}`);
    else {
      const problem = checkWildcardDomain(h.value);
      if (problem) c.error(h.path, problem);
      else if (h.value.startsWith('*') && !h.value.startsWith('*.')) c.warn(h.path, `partial wildcard ${JSON.stringify(h.value)} not allowed; use "*.${h.value.slice(1).replace(/^\./, '')}"`);
    }
  }
  const addresses = c.strings('spec.addresses', spec.addresses);
  let cidr = false;
  for (const a of addresses) {
    cidr ||= a.value.includes('/');
    const problem = checkIpOrCidr(a.value);
    if (problem) c.error(a.path, problem);
  }
  const resolution = c.enumValue('spec.resolution', spec.resolution, RESOLUTIONS) ?? (spec.resolution === undefined ? 'NONE' : undefined);
  c.enumValue('spec.location', spec.location, ['MESH_EXTERNAL', 'MESH_INTERNAL']);
  if (cidr && resolution !== 'NONE' && resolution !== 'STATIC') c.error('spec.addresses', 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  const selector = c.object('spec.workloadSelector', spec.workloadSelector);
  const endpoints = c.objects('spec.endpoints', spec.endpoints);
  if (selector && spec.endpoints !== undefined) c.error('spec.workloadSelector', 'only one of WorkloadSelector or Endpoints is allowed in Service Entry');
  if (selector) {
    const labels = labelsField(c, 'spec.workloadSelector.labels', selector.labels);
    if (labels.length === 0) c.warn('spec.workloadSelector', 'service entry: workload selector specified without labels, will be applied to all services in namespace');
  }
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  const protocols: string[] = [];
  for (const { item, path } of c.objects('spec.ports', spec.ports)) {
    const name = c.string(`${path}.name`, item.name) ?? '';
    const number = c.integer(`${path}.number`, item.number);
    const protocol = c.string(`${path}.protocol`, item.protocol) ?? '';
    protocols.push(protocol);
    if (portNames.has(name)) c.error(`${path}.name`, `service entry port name ${JSON.stringify(name)} already defined`);
    portNames.add(name);
    const nameProblem = checkDns1123Label(name);
    if (nameProblem) c.error(`${path}.name`, `invalid port name: ${nameProblem}`);
    if (number === undefined) c.error(`${path}.number`, 'port number is required');
    else {
      if (portNumbers.has(number)) c.error(`${path}.number`, `service entry port ${number} already defined`);
      portNumbers.add(number);
      portCheck(c, `${path}.number`, number);
    }
    const protoProblem = checkProtocol(protocol);
    if (protoProblem) c.error(`${path}.protocol`, protoProblem);
    const target = c.integer(`${path}.targetPort`, item.targetPort);
    if (target !== undefined && target !== 0) portCheck(c, `${path}.targetPort`, target);
    if (addresses.length === 0 && (protocol === '' || protocol.toUpperCase() === 'TCP') && resolution !== 'NONE') {
      c.warn(`${path}.protocol`, 'addresses are required for ports serving TCP (or unset) protocol when IP auto-allocation is not enabled');
    }
  }
  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) c.error('spec.endpoints', 'no endpoints should be provided for resolution type none');
      if (selector) c.warn('spec.workloadSelector', 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      for (const e of endpoints) workloadEntry(c, e.path, e.item, { servicePorts: portNames, allowFqdn: false });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
    case 'DYNAMIC_DNS':
      if (endpoints.length === 0) {
        for (const h of hosts) if (checkFqdn(h.value)) c.error(h.path, `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}`);
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) c.error('spec.endpoints', `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      for (const e of endpoints) workloadEntry(c, e.path, e.item, { servicePorts: portNames, allowFqdn: true });
      break;
    default:
      break;
  }
  if (resolution !== 'NONE' && hosts.length > 1 && protocols.some((p) => !isHttpProtocol(p) && !isTlsProtocol(p))) {
    c.error('spec.ports', 'multiple hosts provided with non-HTTP, non-TLS ports');
  }
  exportToField(c, 'spec.exportTo', spec.exportTo, { serviceEntry: true });
  for (const s of c.strings('spec.subjectAltNames', spec.subjectAltNames)) if (s.value === '') c.error(s.path, 'subjectAltNames must not be empty strings');
}

export function validateWorkloadEntry(c: Checker, spec: Json): void {
  workloadEntry(c, 'spec', spec, { allowFqdn: true });
}

function workloadEntry(c: Checker, path: string, we: Json, options: { servicePorts?: Set<string>; allowFqdn: boolean }): void {
  const address = c.string(`${path}.address`, we.address) ?? '';
  const network = c.string(`${path}.network`, we.network) ?? '';
  if (address === '') {
    if (network === '') c.error(`${path}.address`, 'address is required');
    else c.warn(`${path}.address`, `address is unset with network ${JSON.stringify(network)}`);
  }
  const ports = c.object(`${path}.ports`, we.ports) ?? {};
  if (address.startsWith('unix://')) {
    const file = address.slice('unix://'.length);
    if (!file.startsWith('@') && (!file.startsWith('/') || file.endsWith('/'))) c.error(`${path}.address`, `${file} is not an absolute path to a file`);
    if (Object.keys(ports).length > 0) c.error(`${path}.ports`, `unix endpoint ${address} must not include ports`);
  } else if (address !== '' && !isIP(address)) {
    if (!options.allowFqdn) c.error(`${path}.address`, `endpoint address ${JSON.stringify(address)} is not a valid IP address`);
    else if (checkFqdn(address)) c.error(`${path}.address`, `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`);
  }
  for (const [name, v] of Object.entries(ports)) {
    const p = `${path}.ports[${JSON.stringify(name)}]`;
    if (options.servicePorts && !options.servicePorts.has(name)) c.error(p, `endpoint port ${name} is not defined by the service entry`);
    const nameProblem = checkDns1123Label(name);
    if (nameProblem) c.error(p, `invalid port name: ${nameProblem}`);
    const n = c.integer(p, v);
    if (n !== undefined) portCheck(c, p, n);
  }
  labelsField(c, `${path}.labels`, we.labels);
  const w = c.integer(`${path}.weight`, we.weight);
  if (w !== undefined && w < 0) c.error(`${path}.weight`, `weight ${w} must not be negative`);
  const sa = c.string(`${path}.serviceAccount`, we.serviceAccount);
  if (sa && checkDns1123SubdomainLike(sa)) c.error(`${path}.serviceAccount`, `invalid service account name ${JSON.stringify(sa)}`);
}

function checkDns1123SubdomainLike(v: string): boolean {
  return v.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v);
}
