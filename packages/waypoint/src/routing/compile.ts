// Compiles one configuration object (VirtualService, DestinationRule, HTTPRoute, GRPCRoute) into its routing
// piece. Pure: no I/O, no state. Throws FieldError naming the field; the caller turns it into a diagnostic and
// keeps the object's last good piece.
import type { KubeObject } from '@ambit/api';
import {
  bool, duration, fail, int, istioStringMatch, list, num, obj, re2, re2Replacer, str, type Obj,
} from './fields.js';
import type {
  CompiledDestinationRule, CompiledRoute, Destination, HeaderMatcher, HeaderOps, MirrorPolicy, PathRewrite, Redirect,
  RequestMatcher, RetryPolicy, RouteAction, StringMatcher, Subset, WeightedDestination,
} from './types.js';
import { NO_HEADER_OPS } from './types.js';
import { compileFault } from '../policy/index.js';

export interface CompileOptions {
  /** DNS domain of services: `cluster.local`. */
  readonly domainSuffix: string;
  /** This waypoint's Gateway (HTTPRoute parentRefs to it apply to every service it serves). */
  readonly gatewayName?: string;
  readonly gatewayNamespace?: string;
}

/** Where an HTTPRoute/GRPCRoute attaches. */
export type RouteParent =
  | { readonly kind: 'service'; readonly host: string; readonly namespace: string; readonly port?: number }
  | { readonly kind: 'gateway'; readonly hostnames: readonly string[]; readonly port?: number };

/** One entry of a Gateway API route table, sortable by the Gateway API precedence rules. */
export interface GatewayRouteEntry {
  readonly route: CompiledRoute;
  /** Precedence facts of the entry's single match. */
  readonly rank: {
    readonly exactPath: boolean;
    readonly prefixLength: number;
    readonly method: boolean;
    readonly headers: number;
    readonly queryParams: number;
  };
  readonly created: string;
  readonly key: string;
  readonly ruleIndex: number;
  readonly matchIndex: number;
}

export type CompiledPiece =
  | { readonly kind: 'VirtualService'; readonly hosts: readonly string[]; readonly routes: readonly CompiledRoute[]; readonly created: string; readonly key: string }
  | { readonly kind: 'DestinationRule'; readonly rule: CompiledDestinationRule; readonly created: string }
  | { readonly kind: 'GatewayRoute'; readonly routeKind: 'HTTPRoute' | 'GRPCRoute'; readonly namespace: string; readonly parents: readonly RouteParent[]; readonly entries: readonly GatewayRouteEntry[] }
  /** Kinds compiled elsewhere (policy/) or carrying no routing (Gateway, ServiceEntry, Telemetry, ...). */
  | { readonly kind: 'Other'; readonly objectKind: string };

export function fqdn(host: string, namespace: string, domainSuffix: string): string {
  const h = host.toLowerCase();
  if (h.includes('*') || h.includes('.')) return h;
  return `${h}.${namespace}.svc.${domainSuffix}`;
}

export function compileObject(o: KubeObject, options: CompileOptions): CompiledPiece {
  const ns = o.metadata.namespace ?? 'default';
  const spec = obj(o.spec, 'spec');
  const created = o.metadata.creationTimestamp ?? '';
  const key = `${ns}/${o.metadata.name}`;
  switch (o.kind) {
    case 'VirtualService': {
      if (!spec) fail('spec', 'is required');
      return compileVirtualService(spec, ns, key, created, options);
    }
    case 'DestinationRule': {
      if (!spec) fail('spec', 'is required');
      const rule = compileDestinationRule(spec, ns, `DestinationRule ${key}`, options);
      return { kind: 'DestinationRule', rule: { ...rule, source: { kind: 'DestinationRule', metadata: { name: o.metadata.name, namespace: ns }, spec: o.spec } }, created };
    }
    case 'HTTPRoute':
    case 'GRPCRoute': {
      if (!spec) fail('spec', 'is required');
      return compileGatewayRoute(o.kind, spec, ns, key, created, options);
    }
    default:
      return { kind: 'Other', objectKind: o.kind ?? 'unknown' };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// VirtualService

function compileVirtualService(spec: Obj, ns: string, key: string, created: string, options: CompileOptions): CompiledPiece {
  const hostsRaw = list(spec.hosts, 'spec.hosts');
  if (hostsRaw.length === 0) fail('spec.hosts', 'must list at least one host');
  const hosts = hostsRaw.map((h, i) => fqdn(str(h, `spec.hosts[${i}]`, { required: true })!, ns, options.domainSuffix));
  const gateways = list(spec.gateways, 'spec.gateways').map((g, i) => str(g, `spec.gateways[${i}]`, { required: true })!);
  // A VirtualService bound only to ingress gateways does not apply in the mesh (and so not to a waypoint).
  if (gateways.length > 0 && !gateways.includes('mesh')) return { kind: 'VirtualService', hosts: [], routes: [], created, key };
  if (spec.tcp !== undefined || spec.tls !== undefined) {
    // Accepted: TCP/TLS routes of the same host are not routed by this waypoint (opaque TCP passes through).
  }
  const routes = list(spec.http, 'spec.http').map((h, i) => compileHttpRoute(obj(h, `spec.http[${i}]`)!, `spec.http[${i}]`, ns, key, options));
  return { kind: 'VirtualService', hosts, routes, created, key };
}

function compileHttpRoute(h: Obj, at: string, ns: string, key: string, options: CompileOptions): CompiledRoute {
  const origin = `VirtualService ${key} ${at}`;
  const matches = list(h.match, `${at}.match`).map((m, i) => compileIstioMatch(obj(m, `${at}.match[${i}]`)!, `${at}.match[${i}]`));
  const redirectObj = obj(h.redirect, `${at}.redirect`);
  const directObj = obj(h.directResponse, `${at}.directResponse`);
  const routeList = list(h.route, `${at}.route`);
  const set = [redirectObj && 'redirect', directObj && 'directResponse', routeList.length > 0 && 'route'].filter(Boolean);
  if (set.length === 0) fail(at, 'must set one of route, redirect or directResponse');
  if (set.length > 1) fail(at, `must set only one of route, redirect or directResponse, got ${set.join(' and ')}`);
  let action: RouteAction;
  if (redirectObj) action = { kind: 'redirect', redirect: compileIstioRedirect(redirectObj, `${at}.redirect`) };
  else if (directObj) {
    const status = int(directObj.status, `${at}.directResponse.status`, 200, 599);
    if (status === undefined) fail(`${at}.directResponse.status`, 'is required');
    const body = obj(directObj.body, `${at}.directResponse.body`);
    const text = body ? str(body.string, `${at}.directResponse.body.string`) ?? (typeof body.bytes === 'string' ? Buffer.from(body.bytes, 'base64').toString('utf8') : undefined) : undefined;
    action = { kind: 'direct', status, ...(text !== undefined ? { body: text } : {}) };
  } else {
    const destinations = routeList.map((r, i) => {
      const rr = obj(r, `${at}.route[${i}]`)!;
      const d = compileIstioDestination(rr.destination, `${at}.route[${i}].destination`, ns, options);
      const weight = int(rr.weight, `${at}.route[${i}].weight`, 0, 100);
      const headers = obj(rr.headers, `${at}.route[${i}].headers`);
      return {
        ...d,
        weight: weight ?? (routeList.length === 1 ? 100 : 0),
        requestHeaders: istioHeaderOps(headers?.request, `${at}.route[${i}].headers.request`),
        responseHeaders: istioHeaderOps(headers?.response, `${at}.route[${i}].headers.response`),
      } satisfies WeightedDestination;
    });
    const total = destinations.reduce((n, d) => n + d.weight, 0);
    if (destinations.length > 1 && total === 0) fail(`${at}.route`, 'weights sum to 0: set weight on the destinations');
    if (destinations.length > 1 && total !== 100) fail(`${at}.route`, `weights must sum to 100, got ${total}`);
    action = { kind: 'forward', destinations };
  }
  const rewriteObj = obj(h.rewrite, `${at}.rewrite`);
  let rewrite: CompiledRoute['rewrite'];
  if (rewriteObj) {
    if (action.kind !== 'forward') fail(`${at}.rewrite`, 'cannot be combined with redirect or directResponse');
    const uri = str(rewriteObj.uri, `${at}.rewrite.uri`);
    const regex = obj(rewriteObj.uriRegexRewrite, `${at}.rewrite.uriRegexRewrite`);
    if (uri !== undefined && regex) fail(`${at}.rewrite`, 'set only one of uri and uriRegexRewrite');
    const authority = str(rewriteObj.authority, `${at}.rewrite.authority`);
    let path: PathRewrite | undefined;
    if (uri !== undefined) path = { kind: 'prefix', matched: '', value: uri };
    if (regex) {
      const m = str(regex.match, `${at}.rewrite.uriRegexRewrite.match`, { required: true })!;
      const r = str(regex.rewrite, `${at}.rewrite.uriRegexRewrite.rewrite`) ?? '';
      path = { kind: 'regex', replace: re2Replacer(m, r, `${at}.rewrite.uriRegexRewrite.match`) };
    }
    rewrite = { ...(path ? { path } : {}), ...(authority ? { authority } : {}) };
  }
  const headers = obj(h.headers, `${at}.headers`);
  const mirrors: MirrorPolicy[] = [];
  if (h.mirror !== undefined && h.mirror !== null) {
    const pct = obj(h.mirrorPercentage, `${at}.mirrorPercentage`);
    const percent = pct ? num(pct.value, `${at}.mirrorPercentage.value`, 0, 100) ?? 0
      : int(h.mirrorPercent, `${at}.mirrorPercent`, 0, 100) ?? 100;
    mirrors.push({ destination: compileIstioDestination(h.mirror, `${at}.mirror`, ns, options), percent });
  }
  list(h.mirrors, `${at}.mirrors`).forEach((m, i) => {
    const mo = obj(m, `${at}.mirrors[${i}]`)!;
    const pct = obj(mo.percentage, `${at}.mirrors[${i}].percentage`);
    mirrors.push({
      destination: compileIstioDestination(mo.destination, `${at}.mirrors[${i}].destination`, ns, options),
      percent: pct ? num(pct.value, `${at}.mirrors[${i}].percentage.value`, 0, 100) ?? 0 : 100,
    });
  });
  const timeoutMs = duration(h.timeout, `${at}.timeout`);
  const retriesObj = obj(h.retries, `${at}.retries`);
  let retries: RetryPolicy | undefined;
  if (retriesObj) {
    const attempts = int(retriesObj.attempts, `${at}.retries.attempts`, 0, 100) ?? 0;
    const perTry = duration(retriesObj.perTryTimeout, `${at}.retries.perTryTimeout`);
    const on = str(retriesObj.retryOn, `${at}.retries.retryOn`) ?? '5xx,connect-failure,refused-stream,unavailable,cancelled,gateway-error';
    const retryOn = new Set<string>();
    const statusCodes = new Set<number>();
    for (const part of on.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (/^\d{3}$/.test(part)) statusCodes.add(Number(part));
      else if (RETRY_ON.has(part)) retryOn.add(part);
      else fail(`${at}.retries.retryOn`, `unknown condition "${part}"; use Envoy retry_on names (${[...RETRY_ON].join(', ')}) or status codes`);
    }
    retries = { attempts, retryOn, statusCodes, ...(perTry ? { perTryTimeoutMs: perTry } : {}), backoffMs: 25 };
  }
  const name = str(h.name, `${at}.name`);
  return {
    origin,
    ...(name ? { name } : {}),
    matches,
    action,
    ...(rewrite ? { rewrite } : {}),
    requestHeaders: istioHeaderOps(headers?.request, `${at}.headers.request`),
    responseHeaders: istioHeaderOps(headers?.response, `${at}.headers.response`),
    mirrors,
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(retries ? { retries } : {}),
    ...(h.fault !== undefined && h.fault !== null ? { fault: compileFault(h.fault, { object: `VirtualService ${key}`, field: `${at}.fault` }) } : {}),
  };
}

const RETRY_ON = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);

function compileIstioMatch(m: Obj, at: string): RequestMatcher {
  const ignoreCase = bool(m.ignoreUriCase, `${at}.ignoreUriCase`) ?? false;
  const headers: HeaderMatcher[] = [];
  for (const [name, v] of Object.entries(obj(m.headers, `${at}.headers`) ?? {})) {
    headers.push({ name: name.toLowerCase(), matcher: istioStringMatch(v, `${at}.headers.${name}`, { allowEmpty: true }) });
  }
  for (const [name, v] of Object.entries(obj(m.withoutHeaders, `${at}.withoutHeaders`) ?? {})) {
    headers.push({ name: name.toLowerCase(), matcher: istioStringMatch(v, `${at}.withoutHeaders.${name}`, { allowEmpty: true }), invert: true });
  }
  const queryParams = Object.entries(obj(m.queryParams, `${at}.queryParams`) ?? {}).map(([name, v]) => ({
    name, matcher: istioStringMatch(v, `${at}.queryParams.${name}`, { allowEmpty: true }),
  }));
  const opt = (field: string, ic = false): StringMatcher | undefined =>
    m[field] === undefined || m[field] === null ? undefined : istioStringMatch(m[field], `${at}.${field}`, { ignoreCase: ic });
  const path = opt('uri', ignoreCase);
  const method = opt('method');
  const authority = opt('authority');
  const scheme = opt('scheme');
  const port = int(m.port, `${at}.port`, 1, 65535);
  return {
    ...(path ? { path } : {}), ...(method ? { method } : {}), ...(authority ? { authority } : {}), ...(scheme ? { scheme } : {}),
    headers, queryParams, ...(port ? { port } : {}),
  };
}

function compileIstioDestination(v: unknown, at: string, ns: string, options: CompileOptions): Destination {
  const d = obj(v, at);
  if (!d) fail(at, 'is required');
  const host = str(d.host, `${at}.host`, { required: true })!;
  const subset = str(d.subset, `${at}.subset`);
  const port = obj(d.port, `${at}.port`);
  const number = port ? int(port.number, `${at}.port.number`, 1, 65535) : undefined;
  return { host: fqdn(host, ns, options.domainSuffix), ...(subset ? { subset } : {}), ...(number ? { port: number } : {}) };
}

function compileIstioRedirect(r: Obj, at: string): Redirect {
  const uri = str(r.uri, `${at}.uri`);
  const authority = str(r.authority, `${at}.authority`);
  const port = int(r.port, `${at}.port`, 1, 65535);
  const derive = str(r.derivePort, `${at}.derivePort`);
  if (derive !== undefined && derive !== 'FROM_PROTOCOL_DEFAULT' && derive !== 'FROM_REQUEST_PORT') fail(`${at}.derivePort`, 'must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT');
  if (port !== undefined && derive !== undefined) fail(at, 'set only one of port and derivePort');
  const scheme = str(r.scheme, `${at}.scheme`);
  const status = int(r.redirectCode, `${at}.redirectCode`, 300, 399) ?? 301;
  return {
    ...(uri !== undefined ? { path: { kind: 'full', value: uri } as PathRewrite } : {}),
    ...(authority ? { authority } : {}), ...(port ? { port } : {}), ...(derive === 'FROM_PROTOCOL_DEFAULT' ? { portFromScheme: true } : {}),
    ...(scheme ? { scheme } : {}), status,
  };
}

function istioHeaderOps(v: unknown, at: string): HeaderOps {
  const o = obj(v, at);
  if (!o) return NO_HEADER_OPS;
  const pairs = (field: string): [string, string][] => Object.entries(obj(o[field], `${at}.${field}`) ?? {}).map(([k, val]) => {
    if (typeof val !== 'string') fail(`${at}.${field}.${k}`, `must be a string, got ${JSON.stringify(val)}`);
    return [k.toLowerCase(), val];
  });
  return {
    set: pairs('set'),
    add: pairs('add'),
    remove: list(o.remove, `${at}.remove`).map((n, i) => str(n, `${at}.remove[${i}]`, { required: true })!.toLowerCase()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// DestinationRule

function compileDestinationRule(spec: Obj, ns: string, origin: string, options: CompileOptions): Omit<CompiledDestinationRule, 'source'> {
  const host = fqdn(str(spec.host, 'spec.host', { required: true })!, ns, options.domainSuffix);
  const subsets = new Map<string, Subset>();
  list(spec.subsets, 'spec.subsets').forEach((s, i) => {
    const so = obj(s, `spec.subsets[${i}]`)!;
    const name = str(so.name, `spec.subsets[${i}].name`, { required: true })!;
    if (subsets.has(name)) fail(`spec.subsets[${i}].name`, `subset "${name}" is defined twice`);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(so.labels, `spec.subsets[${i}].labels`) ?? {})) {
      if (typeof v !== 'string') fail(`spec.subsets[${i}].labels.${k}`, 'must be a string');
      labels[k] = v;
    }
    const tp = obj(so.trafficPolicy, `spec.subsets[${i}].trafficPolicy`);
    subsets.set(name, { name, labels, ...(tp ? { trafficPolicy: tp } : {}) });
  });
  const tp = obj(spec.trafficPolicy, 'spec.trafficPolicy');
  return { origin, host, subsets, ...(tp ? { trafficPolicy: tp } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Gateway API HTTPRoute / GRPCRoute

function compileGatewayRoute(kind: 'HTTPRoute' | 'GRPCRoute', spec: Obj, ns: string, key: string, created: string, options: CompileOptions): CompiledPiece {
  const hostnames = list(spec.hostnames, 'spec.hostnames').map((h, i) => str(h, `spec.hostnames[${i}]`, { required: true })!.toLowerCase());
  const parents: RouteParent[] = [];
  list(spec.parentRefs, 'spec.parentRefs').forEach((p, i) => {
    const at = `spec.parentRefs[${i}]`;
    const po = obj(p, at)!;
    // An explicit empty group is the core group (Service); an absent one is Gateway API's.
    const group = po.group === '' ? '' : str(po.group, `${at}.group`) ?? 'gateway.networking.k8s.io';
    const pkind = str(po.kind, `${at}.kind`) ?? 'Gateway';
    const name = str(po.name, `${at}.name`, { required: true })!;
    const pns = str(po.namespace, `${at}.namespace`) ?? ns;
    const port = int(po.port, `${at}.port`, 1, 65535);
    if ((group === '' || group === 'core') && pkind === 'Service') {
      parents.push({ kind: 'service', host: `${name}.${pns}.svc.${options.domainSuffix}`, namespace: pns, ...(port ? { port } : {}) });
    } else if (group === 'networking.istio.io' && pkind === 'ServiceEntry') {
      parents.push({ kind: 'service', host: name, namespace: pns, ...(port ? { port } : {}) });
    } else if (group === 'gateway.networking.k8s.io' && pkind === 'Gateway') {
      // Only our own Gateway concerns this waypoint; other gateways' routes are not an error, just not ours.
      if (options.gatewayName && name === options.gatewayName && pns === (options.gatewayNamespace ?? pns)) {
        parents.push({ kind: 'gateway', hostnames, ...(port ? { port } : {}) });
      }
    } else {
      fail(`${at}.kind`, `unsupported parent ${group || 'core'}/${pkind}; a waypoint serves parentRefs to a Service or to its Gateway`);
    }
  });
  const entries: GatewayRouteEntry[] = [];
  const rules = list(spec.rules, 'spec.rules');
  rules.forEach((r, ri) => {
    const at = `spec.rules[${ri}]`;
    const ro = obj(r, at)!;
    const name = str(ro.name, `${at}.name`);
    const base = compileGatewayRule(kind, ro, at, ns, key, options);
    const matchList = list(ro.matches, `${at}.matches`);
    const compiled = matchList.length === 0
      ? [{ matcher: { path: { kind: 'pathPrefix', value: '/' }, headers: [], queryParams: [] } as RequestMatcher, at: `${at}` }]
      : matchList.map((m, mi) => ({ matcher: kind === 'HTTPRoute' ? compileHttpRouteMatch(obj(m, `${at}.matches[${mi}]`)!, `${at}.matches[${mi}]`) : compileGrpcRouteMatch(obj(m, `${at}.matches[${mi}]`)!, `${at}.matches[${mi}]`), at: `${at}.matches[${mi}]` }));
    compiled.forEach(({ matcher, at: mat }, mi) => {
      const path = matcher.path;
      const exactPath = path?.kind === 'exact';
      const prefixLength = path && (path.kind === 'pathPrefix' || path.kind === 'prefix') ? path.value.length : path?.kind === 'regex' ? 0 : 0;
      let rewrite = base.rewrite;
      // ReplacePrefixMatch replaces what the match's PathPrefix matched.
      if (rewrite?.path?.kind === 'prefix') {
        if (path?.kind !== 'pathPrefix') fail(`${at}.filters`, 'URLRewrite/RequestRedirect ReplacePrefixMatch requires a PathPrefix match');
        rewrite = { ...rewrite, path: { kind: 'prefix', matched: path.value, value: rewrite.path.value } };
      }
      let action = base.action;
      if (action.kind === 'redirect' && action.redirect.path?.kind === 'prefix') {
        if (path?.kind !== 'pathPrefix') fail(`${at}.filters`, 'RequestRedirect ReplacePrefixMatch requires a PathPrefix match');
        action = { kind: 'redirect', redirect: { ...action.redirect, path: { kind: 'prefix', matched: path.value, value: action.redirect.path.value } } };
      }
      entries.push({
        route: { ...base, origin: `${kind} ${key} ${mat}`, ...(name ? { name } : {}), matches: [matcher], action, ...(rewrite ? { rewrite } : {}) },
        rank: { exactPath, prefixLength, method: matcher.method !== undefined, headers: matcher.headers.length, queryParams: matcher.queryParams.length },
        created, key, ruleIndex: ri, matchIndex: mi,
      });
    });
  });
  return { kind: 'GatewayRoute', routeKind: kind, namespace: ns, parents, entries };
}

function gatewayHeaderOps(v: unknown, at: string): HeaderOps {
  const o = obj(v, at);
  if (!o) return NO_HEADER_OPS;
  const pairs = (field: string): [string, string][] => list(o[field], `${at}.${field}`).map((e, i) => {
    const eo = obj(e, `${at}.${field}[${i}]`)!;
    return [str(eo.name, `${at}.${field}[${i}].name`, { required: true })!.toLowerCase(), str(eo.value, `${at}.${field}[${i}].value`) ?? ''];
  });
  return {
    set: pairs('set'),
    add: pairs('add'),
    remove: list(o.remove, `${at}.remove`).map((n, i) => str(n, `${at}.remove[${i}]`, { required: true })!.toLowerCase()),
  };
}

function gatewayPathModifier(v: unknown, at: string): PathRewrite | undefined {
  const o = obj(v, at);
  if (!o) return undefined;
  const type = str(o.type, `${at}.type`, { required: true });
  if (type === 'ReplaceFullPath') return { kind: 'full', value: str(o.replaceFullPath, `${at}.replaceFullPath`) ?? '/' };
  if (type === 'ReplacePrefixMatch') return { kind: 'prefix', matched: '', value: str(o.replacePrefixMatch, `${at}.replacePrefixMatch`) ?? '/' };
  return fail(`${at}.type`, `must be ReplaceFullPath or ReplacePrefixMatch, got "${type}"`);
}

function gatewayBackend(v: unknown, at: string, ns: string, options: CompileOptions, requirePort: boolean): Destination {
  const b = obj(v, at)!;
  const group = str(b.group, `${at}.group`) ?? '';
  const bkind = str(b.kind, `${at}.kind`) ?? 'Service';
  const name = str(b.name, `${at}.name`, { required: true })!;
  const bns = str(b.namespace, `${at}.namespace`) ?? ns;
  const port = int(b.port, `${at}.port`, 1, 65535);
  let host: string;
  if ((group === '' || group === 'core') && bkind === 'Service') host = `${name}.${bns}.svc.${options.domainSuffix}`;
  else if (group === 'networking.istio.io' && bkind === 'Hostname') host = name;
  else if (group === 'networking.istio.io' && bkind === 'ServiceEntry') host = name;
  else return fail(`${at}.kind`, `unsupported backend ${group || 'core'}/${bkind}`);
  if (requirePort && port === undefined && bkind === 'Service') fail(`${at}.port`, 'is required for a Service backend');
  return { host, ...(port ? { port } : {}) };
}

interface GatewayFilters {
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  redirect?: Redirect;
  rewrite?: { path?: PathRewrite; authority?: string };
  mirrors: MirrorPolicy[];
}

function gatewayFilters(kind: 'HTTPRoute' | 'GRPCRoute', v: unknown, at: string, ns: string, options: CompileOptions): GatewayFilters {
  const out: GatewayFilters = { requestHeaders: NO_HEADER_OPS, responseHeaders: NO_HEADER_OPS, mirrors: [] };
  const seen = new Set<string>();
  list(v, at).forEach((f, i) => {
    const fat = `${at}[${i}]`;
    const fo = obj(f, fat)!;
    const type = str(fo.type, `${fat}.type`, { required: true })!;
    if (type !== 'RequestMirror' && seen.has(type)) fail(`${fat}.type`, `${type} may appear only once per rule`);
    seen.add(type);
    switch (type) {
      case 'RequestHeaderModifier':
        out.requestHeaders = gatewayHeaderOps(fo.requestHeaderModifier, `${fat}.requestHeaderModifier`);
        break;
      case 'ResponseHeaderModifier':
        out.responseHeaders = gatewayHeaderOps(fo.responseHeaderModifier, `${fat}.responseHeaderModifier`);
        break;
      case 'RequestRedirect': {
        if (kind === 'GRPCRoute') fail(`${fat}.type`, 'RequestRedirect is not a GRPCRoute filter');
        const r = obj(fo.requestRedirect, `${fat}.requestRedirect`) ?? {};
        const status = int(r.statusCode, `${fat}.requestRedirect.statusCode`, 300, 399) ?? 302;
        if (![301, 302, 303, 307, 308].includes(status)) fail(`${fat}.requestRedirect.statusCode`, 'must be 301, 302, 303, 307 or 308');
        const scheme = str(r.scheme, `${fat}.requestRedirect.scheme`);
        if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') fail(`${fat}.requestRedirect.scheme`, 'must be http or https');
        const hostname = str(r.hostname, `${fat}.requestRedirect.hostname`);
        const port = int(r.port, `${fat}.requestRedirect.port`, 1, 65535);
        const path = gatewayPathModifier(r.path, `${fat}.requestRedirect.path`);
        out.redirect = {
          ...(path ? { path } : {}), ...(hostname ? { authority: hostname } : {}), ...(port ? { port } : {}),
          ...(scheme ? { scheme } : {}), ...(scheme && !port ? { portFromScheme: true } : {}), status,
        };
        break;
      }
      case 'URLRewrite': {
        if (kind === 'GRPCRoute') fail(`${fat}.type`, 'URLRewrite is not a GRPCRoute filter');
        const r = obj(fo.urlRewrite, `${fat}.urlRewrite`) ?? {};
        const hostname = str(r.hostname, `${fat}.urlRewrite.hostname`);
        const path = gatewayPathModifier(r.path, `${fat}.urlRewrite.path`);
        out.rewrite = { ...(path ? { path } : {}), ...(hostname ? { authority: hostname } : {}) };
        break;
      }
      case 'RequestMirror': {
        const r = obj(fo.requestMirror, `${fat}.requestMirror`) ?? {};
        const destination = gatewayBackend(r.backendRef, `${fat}.requestMirror.backendRef`, ns, options, true);
        let percent = int(r.percent, `${fat}.requestMirror.percent`, 0, 100);
        const fraction = obj(r.fraction, `${fat}.requestMirror.fraction`);
        if (fraction) {
          if (percent !== undefined) fail(`${fat}.requestMirror`, 'set only one of percent and fraction');
          const n = int(fraction.numerator, `${fat}.requestMirror.fraction.numerator`, 0, 2 ** 31)!;
          const d = int(fraction.denominator, `${fat}.requestMirror.fraction.denominator`, 1, 2 ** 31) ?? 100;
          if (n > d) fail(`${fat}.requestMirror.fraction`, 'numerator must not exceed denominator');
          percent = (n / d) * 100;
        }
        out.mirrors.push({ destination, percent: percent ?? 100 });
        break;
      }
      default:
        fail(`${fat}.type`, `filter ${type} is not supported by this waypoint (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror)`);
    }
  });
  if (out.redirect && out.rewrite) fail(at, 'RequestRedirect and URLRewrite cannot be used together');
  return out;
}

function compileGatewayRule(kind: 'HTTPRoute' | 'GRPCRoute', ro: Obj, at: string, ns: string, key: string, options: CompileOptions): CompiledRoute {
  const filters = gatewayFilters(kind, ro.filters, `${at}.filters`, ns, options);
  const backends = list(ro.backendRefs, `${at}.backendRefs`).map((b, i) => {
    const bat = `${at}.backendRefs[${i}]`;
    const bo = obj(b, bat)!;
    const dest = gatewayBackend(bo, bat, ns, options, true);
    const bf = gatewayFilters(kind, bo.filters, `${bat}.filters`, ns, options);
    if (bf.redirect || bf.rewrite || bf.mirrors.length) fail(`${bat}.filters`, 'only RequestHeaderModifier and ResponseHeaderModifier are supported on a backendRef');
    return { ...dest, weight: int(bo.weight, `${bat}.weight`, 0, 1_000_000) ?? 1, requestHeaders: bf.requestHeaders, responseHeaders: bf.responseHeaders } satisfies WeightedDestination;
  });
  let action: RouteAction;
  if (filters.redirect) {
    if (backends.length) fail(at, 'RequestRedirect cannot be combined with backendRefs');
    action = { kind: 'redirect', redirect: filters.redirect };
  } else if (backends.length === 0 || backends.every((b) => b.weight === 0)) {
    // Gateway API: no backend to forward to and no filter that answers -> 500.
    action = { kind: 'direct', status: 500 };
  } else {
    action = { kind: 'forward', destinations: backends };
  }
  const timeouts = obj(ro.timeouts, `${at}.timeouts`);
  const request = duration(timeouts?.request, `${at}.timeouts.request`);
  const backendRequest = duration(timeouts?.backendRequest, `${at}.timeouts.backendRequest`);
  if (request && backendRequest && backendRequest > request) fail(`${at}.timeouts.backendRequest`, 'must not exceed timeouts.request');
  const retryObj = obj(ro.retry, `${at}.retry`);
  let retries: RetryPolicy | undefined;
  if (retryObj || backendRequest) {
    const codes = list(retryObj?.codes, `${at}.retry.codes`).map((c, i) => int(c, `${at}.retry.codes[${i}]`, 400, 599)!);
    const attempts = retryObj ? int(retryObj.attempts, `${at}.retry.attempts`, 0, 100) ?? 1 : DEFAULT_RETRIES.attempts;
    retries = {
      attempts,
      // Gateway API: connection errors are always retried; status codes only those listed.
      retryOn: new Set(['connect-failure', 'refused-stream', 'reset']),
      statusCodes: retryObj ? new Set(codes) : DEFAULT_RETRIES.statusCodes,
      ...(backendRequest ? { perTryTimeoutMs: backendRequest } : {}),
      backoffMs: duration(retryObj?.backoff, `${at}.retry.backoff`) ?? DEFAULT_RETRIES.backoffMs,
    };
  }
  return {
    origin: `${kind} ${key} ${at}`,
    matches: [],
    action,
    ...(filters.rewrite ? { rewrite: filters.rewrite } : {}),
    requestHeaders: filters.requestHeaders,
    responseHeaders: filters.responseHeaders,
    mirrors: filters.mirrors,
    ...(request ? { timeoutMs: request } : {}),
    ...(retries ? { retries } : {}),
  };
}

function gatewayStringMatch(type: string | undefined, value: string, at: string, pathMatch = false): StringMatcher {
  switch (type ?? 'Exact') {
    case 'Exact': return { kind: 'exact', value };
    case 'PathPrefix':
      if (!pathMatch) break;
      if (!value.startsWith('/')) fail(`${at}.value`, 'a path must start with "/"');
      return { kind: 'pathPrefix', value };
    case 'RegularExpression': return { kind: 'regex', value, test: re2(value, `${at}.value`) };
  }
  return fail(`${at}.type`, `unsupported match type "${type}"`);
}

function compileHttpRouteMatch(m: Obj, at: string): RequestMatcher {
  const p = obj(m.path, `${at}.path`);
  const path = p ? gatewayStringMatch(str(p.type, `${at}.path.type`) ?? 'PathPrefix', str(p.value, `${at}.path.value`) ?? '/', `${at}.path`, true) : { kind: 'pathPrefix', value: '/' } as StringMatcher;
  const seen = new Set<string>();
  const headers: HeaderMatcher[] = list(m.headers, `${at}.headers`).map((h, i) => {
    const ho = obj(h, `${at}.headers[${i}]`)!;
    const name = str(ho.name, `${at}.headers[${i}].name`, { required: true })!.toLowerCase();
    // Gateway API: only the first match of a repeated (case-insensitive) header name counts.
    if (seen.has(name)) return undefined;
    seen.add(name);
    return { name, matcher: gatewayStringMatch(str(ho.type, `${at}.headers[${i}].type`), str(ho.value, `${at}.headers[${i}].value`) ?? '', `${at}.headers[${i}]`) };
  }).filter((h): h is HeaderMatcher => h !== undefined);
  const queryParams = list(m.queryParams, `${at}.queryParams`).map((q, i) => {
    const qo = obj(q, `${at}.queryParams[${i}]`)!;
    return { name: str(qo.name, `${at}.queryParams[${i}].name`, { required: true })!, matcher: gatewayStringMatch(str(qo.type, `${at}.queryParams[${i}].type`), str(qo.value, `${at}.queryParams[${i}].value`) ?? '', `${at}.queryParams[${i}]`) };
  });
  const method = str(m.method, `${at}.method`);
  return { path, headers, queryParams, ...(method ? { method: { kind: 'exact', value: method.toUpperCase() } as StringMatcher } : {}) };
}

function compileGrpcRouteMatch(m: Obj, at: string): RequestMatcher {
  const mo = obj(m.method, `${at}.method`);
  let path: StringMatcher | undefined;
  if (mo) {
    const type = str(mo.type, `${at}.method.type`) ?? 'Exact';
    const service = str(mo.service, `${at}.method.service`);
    const method = str(mo.method, `${at}.method.method`);
    if (!service && !method) fail(`${at}.method`, 'must set service or method');
    if (type === 'Exact') {
      if (service && /[/]/.test(service)) fail(`${at}.method.service`, 'must not contain "/"');
      if (method && /[/]/.test(method)) fail(`${at}.method.method`, 'must not contain "/"');
      path = service && method ? { kind: 'exact', value: `/${service}/${method}` }
        : service ? { kind: 'prefix', value: `/${service}/` }
        : { kind: 'regex', value: `/[^/]+/${method}`, test: re2(`/[^/]+/${escapeRe(method!)}`, `${at}.method.method`) };
    } else if (type === 'RegularExpression') {
      const pattern = `/${service ?? '[^/]+'}/${method ?? '[^/]+'}`;
      path = { kind: 'regex', value: pattern, test: re2(pattern, `${at}.method`) };
    } else fail(`${at}.method.type`, `must be Exact or RegularExpression, got "${type}"`);
  }
  const headers: HeaderMatcher[] = list(m.headers, `${at}.headers`).map((h, i) => {
    const ho = obj(h, `${at}.headers[${i}]`)!;
    return { name: str(ho.name, `${at}.headers[${i}].name`, { required: true })!.toLowerCase(), matcher: gatewayStringMatch(str(ho.type, `${at}.headers[${i}].type`), str(ho.value, `${at}.headers[${i}].value`) ?? '', `${at}.headers[${i}]`) };
  });
  return { ...(path ? { path } : {}), headers, queryParams: [] };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Gateway API precedence (exact path > longer prefix > method > more headers > more query params > oldest > name). */
export function compareGatewayEntries(a: GatewayRouteEntry, b: GatewayRouteEntry): number {
  if (a.rank.exactPath !== b.rank.exactPath) return a.rank.exactPath ? -1 : 1;
  if (a.rank.prefixLength !== b.rank.prefixLength) return b.rank.prefixLength - a.rank.prefixLength;
  if (a.rank.method !== b.rank.method) return a.rank.method ? -1 : 1;
  if (a.rank.headers !== b.rank.headers) return b.rank.headers - a.rank.headers;
  if (a.rank.queryParams !== b.rank.queryParams) return b.rank.queryParams - a.rank.queryParams;
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  return a.matchIndex - b.matchIndex;
}

/** Istio's default retry policy for mesh routes without one: 2 retries on connect failure, refused stream, unavailable, cancelled and 503. */
export const DEFAULT_RETRIES: RetryPolicy = Object.freeze({
  attempts: 2,
  retryOn: new Set(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']),
  statusCodes: new Set([503]),
  backoffMs: 25,
});
