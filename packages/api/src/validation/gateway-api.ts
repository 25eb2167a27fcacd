// gateway.networking.k8s.io Gateway, HTTPRoute, GRPCRoute: the structural rules a local file skips when it never
// meets the apiserver's CRD schema and CEL rules, plus the waypoint-specific ones (HBONE listener on 15008).
import { LABELS, WAYPOINT_FOR, WAYPOINT_GATEWAY_CLASS } from '../labels.js';
import { PORTS } from '../ports.js';
import { Checker, type Json } from './checker.js';
import { regexField } from './common.js';
import { checkDns1123Label, checkHeaderName, checkPort } from './primitives.js';

/** Gateway API duration (GEP-2257): up to four `<number><h|m|s|ms>` parts, e.g. `1h30m`, `500ms`. */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export function validateGateway(c: Checker, spec: Json): void {
  const className = c.string('spec.gatewayClassName', spec.gatewayClassName);
  if (!className) c.error('spec.gatewayClassName', 'gatewayClassName is required');
  const listeners = c.objects('spec.listeners', spec.listeners);
  if (listeners.length === 0) c.error('spec.listeners', 'at least one listener is required');
  const names = new Set<string>();
  for (const { item, path } of listeners) {
    const name = c.string(`${path}.name`, item.name);
    if (!name) c.error(`${path}.name`, 'listener name is required');
    else {
      if (names.has(name)) c.error(`${path}.name`, `listener name ${JSON.stringify(name)} must be unique within the Gateway`);
      names.add(name);
    }
    const port = c.integer(`${path}.port`, item.port);
    if (port === undefined) c.error(`${path}.port`, 'listener port is required');
    else if (checkPort(port)) c.error(`${path}.port`, checkPort(port)!);
    if (!c.string(`${path}.protocol`, item.protocol)) c.error(`${path}.protocol`, 'listener protocol is required');
    const routes = c.object(`${path}.allowedRoutes`, item.allowedRoutes);
    const ns = routes ? c.object(`${path}.allowedRoutes.namespaces`, routes.namespaces) : undefined;
    if (ns) {
      const from = c.enumValue(`${path}.allowedRoutes.namespaces.from`, ns.from, ['All', 'Same', 'Selector']);
      if (from === 'Selector' && !ns.selector) c.error(`${path}.allowedRoutes.namespaces.selector`, 'selector is required when from is Selector');
    }
  }
  if (className === WAYPOINT_GATEWAY_CLASS) {
    const name = c.obj.metadata.name;
    if (name === 'none') c.error('metadata.name', 'a waypoint cannot be called "none": istio.io/use-waypoint=none opts out of waypoints');
    const hbone = listeners.some(({ item }) => item.protocol === 'HBONE' && item.port === PORTS.hbone);
    if (!hbone && listeners.length > 0) {
      c.error('spec.listeners', `a waypoint (gatewayClassName ${WAYPOINT_GATEWAY_CLASS}) needs a listener with protocol HBONE on port ${PORTS.hbone}, e.g. {name: mesh, port: ${PORTS.hbone}, protocol: HBONE}`);
    }
    const forLabel = c.obj.metadata.labels?.[LABELS.waypointFor];
    if (forLabel !== undefined && !(Object.values(WAYPOINT_FOR) as string[]).includes(forLabel)) {
      c.error(`metadata.labels[${JSON.stringify(LABELS.waypointFor)}]`, `unknown value ${JSON.stringify(forLabel)}; must be one of ${Object.values(WAYPOINT_FOR).join(', ')}`);
    }
  }
}

function parentRefs(c: Checker, spec: Json): void {
  for (const { item, path } of c.objects('spec.parentRefs', spec.parentRefs)) {
    if (!c.string(`${path}.name`, item.name)) c.error(`${path}.name`, 'parentRef name is required');
    const group = c.string(`${path}.group`, item.group) ?? 'gateway.networking.k8s.io';
    const kind = c.string(`${path}.kind`, item.kind) ?? 'Gateway';
    const ok = (group === '' && kind === 'Service') || (group === 'gateway.networking.k8s.io' && kind === 'Gateway') || (group === 'networking.istio.io' && kind === 'ServiceEntry');
    if (!ok) c.error(path, `parentRef must be a Gateway (gateway.networking.k8s.io), a Service (group "") or a ServiceEntry (networking.istio.io), got ${group || 'core'}/${kind}`);
    const port = c.integer(`${path}.port`, item.port);
    if (port !== undefined && checkPort(port)) c.error(`${path}.port`, checkPort(port)!);
  }
}

function backendRefs(c: Checker, path: string, v: unknown): void {
  for (const { item, path: p } of c.objects(path, v)) {
    if (!c.string(`${p}.name`, item.name)) c.error(`${p}.name`, 'backendRef name is required');
    const group = c.string(`${p}.group`, item.group) ?? '';
    const kind = c.string(`${p}.kind`, item.kind) ?? 'Service';
    const port = c.integer(`${p}.port`, item.port);
    if (group === '' && kind === 'Service' && port === undefined) c.error(`${p}.port`, 'port is required for a Service backendRef');
    if (port !== undefined && checkPort(port)) c.error(`${p}.port`, checkPort(port)!);
    const w = c.integer(`${p}.weight`, item.weight);
    if (w !== undefined && (w < 0 || w > 1_000_000)) c.error(`${p}.weight`, `weight ${w} must be in range 0..1000000`);
    filters(c, `${p}.filters`, item.filters, 'http');
  }
}

function headerMatches(c: Checker, path: string, v: unknown): void {
  const seen = new Set<string>();
  for (const { item, path: p } of c.objects(path, v)) {
    const name = c.string(`${p}.name`, item.name);
    if (!name) c.error(`${p}.name`, 'header name is required');
    else {
      const problem = checkHeaderName(name);
      if (problem) c.error(`${p}.name`, problem);
      if (seen.has(name.toLowerCase())) c.error(`${p}.name`, `header ${JSON.stringify(name)} is matched twice; header names must be unique within a match`);
      seen.add(name.toLowerCase());
    }
    const type = c.enumValue(`${p}.type`, item.type, ['Exact', 'RegularExpression']) ?? 'Exact';
    const value = c.string(`${p}.value`, item.value);
    if (value === undefined) c.error(`${p}.value`, 'value is required');
    else if (type === 'RegularExpression') regexField(c, `${p}.value`, value);
  }
}

function filters(c: Checker, path: string, v: unknown, flavour: 'http' | 'grpc'): { redirect: boolean; rewrite: boolean } {
  let redirect = false;
  let rewrite = false;
  const types = flavour === 'http'
    ? ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'CORS', 'ExtensionRef'] as const
    : ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'] as const;
  for (const { item, path: p } of c.objects(path, v)) {
    const type = c.enumValue(`${p}.type`, item.type, types);
    if (!type) {
      if (item.type === undefined) c.error(`${p}.type`, 'filter type is required');
      continue;
    }
    const field = type[0]!.toLowerCase() + type.slice(1);
    const key = type === 'URLRewrite' ? 'urlRewrite' : type === 'CORS' ? 'cors' : field;
    if (item[key] === undefined) c.error(`${p}.${key}`, `filter of type ${type} requires ${key}`);
    if (type === 'RequestRedirect') {
      redirect = true;
      const r = c.object(`${p}.requestRedirect`, item.requestRedirect);
      if (r) {
        c.enumValue(`${p}.requestRedirect.scheme`, r.scheme, ['http', 'https']);
        const code = c.integer(`${p}.requestRedirect.statusCode`, r.statusCode);
        if (code !== undefined && ![301, 302, 303, 307, 308].includes(code)) c.error(`${p}.requestRedirect.statusCode`, `statusCode ${code} must be one of 301, 302, 303, 307, 308`);
        const port = c.integer(`${p}.requestRedirect.port`, r.port);
        if (port !== undefined && checkPort(port)) c.error(`${p}.requestRedirect.port`, checkPort(port)!);
        pathModifier(c, `${p}.requestRedirect.path`, r.path);
      }
    }
    if (type === 'URLRewrite') {
      rewrite = true;
      const r = c.object(`${p}.urlRewrite`, item.urlRewrite);
      if (r) pathModifier(c, `${p}.urlRewrite.path`, r.path);
    }
    if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') {
      const m = c.object(`${p}.${key}`, item[key]);
      if (m) {
        for (const op of ['set', 'add'] as const) {
          for (const h of c.objects(`${p}.${key}.${op}`, m[op])) {
            const name = c.string(`${h.path}.name`, h.item.name);
            if (!name || checkHeaderName(name)) c.error(`${h.path}.name`, name ? checkHeaderName(name)! : 'header name is required');
            if (c.string(`${h.path}.value`, h.item.value) === undefined) c.error(`${h.path}.value`, 'header value is required');
          }
        }
        for (const s of c.strings(`${p}.${key}.remove`, m.remove)) if (checkHeaderName(s.value)) c.error(s.path, checkHeaderName(s.value)!);
      }
    }
    if (type === 'RequestMirror') {
      const m = c.object(`${p}.requestMirror`, item.requestMirror);
      if (m) {
        if (!c.object(`${p}.requestMirror.backendRef`, m.backendRef)) c.error(`${p}.requestMirror.backendRef`, 'backendRef is required');
        if (m.percent !== undefined && m.fraction !== undefined) c.error(`${p}.requestMirror`, 'only one of percent or fraction may be set');
        const pct = c.integer(`${p}.requestMirror.percent`, m.percent);
        if (pct !== undefined && (pct < 0 || pct > 100)) c.error(`${p}.requestMirror.percent`, `percent ${pct} is not in range 0..100`);
        const f = c.object(`${p}.requestMirror.fraction`, m.fraction);
        if (f) {
          const num = c.integer(`${p}.requestMirror.fraction.numerator`, f.numerator) ?? 0;
          const den = c.integer(`${p}.requestMirror.fraction.denominator`, f.denominator) ?? 100;
          if (den <= 0 || num < 0 || num > den) c.error(`${p}.requestMirror.fraction`, 'numerator must be 0..denominator and denominator above 0');
        }
      }
    }
  }
  if (redirect && rewrite) c.error(path, 'may specify either a RequestRedirect or a URLRewrite filter, but not both');
  return { redirect, rewrite };
}

function pathModifier(c: Checker, path: string, v: unknown): void {
  const m = c.object(path, v);
  if (!m) return;
  const type = c.enumValue(`${path}.type`, m.type, ['ReplaceFullPath', 'ReplacePrefixMatch']);
  if (type === 'ReplaceFullPath' && m.replaceFullPath === undefined) c.error(`${path}.replaceFullPath`, 'replaceFullPath must be specified when type is ReplaceFullPath');
  if (type === 'ReplacePrefixMatch' && m.replacePrefixMatch === undefined) c.error(`${path}.replacePrefixMatch`, 'replacePrefixMatch must be specified when type is ReplacePrefixMatch');
  if (type === 'ReplaceFullPath' && m.replacePrefixMatch !== undefined) c.error(`${path}.replacePrefixMatch`, 'replacePrefixMatch must not be set when type is ReplaceFullPath');
  if (type === 'ReplacePrefixMatch' && m.replaceFullPath !== undefined) c.error(`${path}.replaceFullPath`, 'replaceFullPath must not be set when type is ReplacePrefixMatch');
}

function gatewayDuration(c: Checker, path: string, v: unknown): number | undefined {
  const s = c.string(path, v);
  if (s === undefined) return undefined;
  if (!GATEWAY_DURATION.test(s)) {
    c.error(path, `invalid duration ${JSON.stringify(s)}; Gateway API durations are up to four <number><h|m|s|ms> parts, e.g. "500ms", "10s", "1h30m"`);
    return undefined;
  }
  let ms = 0;
  for (const m of s.matchAll(/([0-9]+)(h|ms|m|s)/g)) ms += Number(m[1]) * ({ h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as Record<string, number>)[m[2]!]!;
  return ms;
}

export function validateHttpRoute(c: Checker, spec: Json): void {
  parentRefs(c, spec);
  for (const h of c.strings('spec.hostnames', spec.hostnames)) {
    if (!/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(h.value)) c.error(h.path, `invalid hostname ${JSON.stringify(h.value)}`);
  }
  const ruleNames = new Set<string>();
  for (const { item: rule, path } of c.objects('spec.rules', spec.rules)) {
    const name = c.string(`${path}.name`, rule.name);
    if (name !== undefined) {
      if (ruleNames.has(name)) c.error(`${path}.name`, `rule name ${JSON.stringify(name)} must be unique within the route`);
      ruleNames.add(name);
      const problem = checkDns1123Label(name);
      if (problem) c.error(`${path}.name`, problem);
    }
    for (const { item: m, path: mp } of c.objects(`${path}.matches`, rule.matches)) {
      const p = c.object(`${mp}.path`, m.path);
      if (p) {
        const type = c.enumValue(`${mp}.path.type`, p.type, ['Exact', 'PathPrefix', 'RegularExpression']) ?? 'PathPrefix';
        const value = c.string(`${mp}.path.value`, p.value) ?? '/';
        if (type === 'RegularExpression') regexField(c, `${mp}.path.value`, value);
        else {
          if (!value.startsWith('/')) c.error(`${mp}.path.value`, `value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix'], got ${JSON.stringify(value)}`);
          if (/\/\/|\/\.\.?(\/|$)|%2f|%2F|#/.test(value)) c.error(`${mp}.path.value`, `value must not contain '//', '/./', '/../', '%2f' or '#' when type one of ['Exact', 'PathPrefix'], got ${JSON.stringify(value)}`);
        }
      }
      headerMatches(c, `${mp}.headers`, m.headers);
      headerMatchesAsQuery(c, `${mp}.queryParams`, m.queryParams);
      c.enumValue(`${mp}.method`, m.method, HTTP_METHODS);
    }
    filters(c, `${path}.filters`, rule.filters, 'http');
    backendRefs(c, `${path}.backendRefs`, rule.backendRefs);
    const t = c.object(`${path}.timeouts`, rule.timeouts);
    if (t) {
      const request = gatewayDuration(c, `${path}.timeouts.request`, t.request);
      const backend = gatewayDuration(c, `${path}.timeouts.backendRequest`, t.backendRequest);
      if (request !== undefined && backend !== undefined && request !== 0 && backend > request) {
        c.error(`${path}.timeouts.backendRequest`, 'backendRequest timeout cannot be longer than request timeout');
      }
    }
    const retry = c.object(`${path}.retry`, rule.retry);
    if (retry) {
      const attempts = c.integer(`${path}.retry.attempts`, retry.attempts);
      if (attempts !== undefined && attempts < 0) c.error(`${path}.retry.attempts`, `attempts cannot be negative (got ${attempts})`);
      for (const [i, code] of c.array(`${path}.retry.codes`, retry.codes).entries()) {
        const n = c.integer(`${path}.retry.codes[${i}]`, code);
        if (n !== undefined && (n < 400 || n > 599)) c.error(`${path}.retry.codes[${i}]`, `retry code ${n} must be in range 400..599`);
      }
      gatewayDuration(c, `${path}.retry.backoff`, retry.backoff);
    }
  }
}

function headerMatchesAsQuery(c: Checker, path: string, v: unknown): void {
  const seen = new Set<string>();
  for (const { item, path: p } of c.objects(path, v)) {
    const name = c.string(`${p}.name`, item.name);
    if (!name) c.error(`${p}.name`, 'query parameter name is required');
    else {
      if (seen.has(name)) c.error(`${p}.name`, `query parameter ${JSON.stringify(name)} is matched twice`);
      seen.add(name);
    }
    const type = c.enumValue(`${p}.type`, item.type, ['Exact', 'RegularExpression']) ?? 'Exact';
    const value = c.string(`${p}.value`, item.value);
    if (value === undefined) c.error(`${p}.value`, 'value is required');
    else if (type === 'RegularExpression') regexField(c, `${p}.value`, value);
  }
}

export function validateGrpcRoute(c: Checker, spec: Json): void {
  parentRefs(c, spec);
  for (const { item: rule, path } of c.objects('spec.rules', spec.rules)) {
    for (const { item: m, path: mp } of c.objects(`${path}.matches`, rule.matches)) {
      const method = c.object(`${mp}.method`, m.method);
      if (method) {
        const type = c.enumValue(`${mp}.method.type`, method.type, ['Exact', 'RegularExpression']) ?? 'Exact';
        const service = c.string(`${mp}.method.service`, method.service);
        const name = c.string(`${mp}.method.method`, method.method);
        if (!service && !name) c.error(`${mp}.method`, 'one or both of service or method must be specified');
        if (type === 'Exact') {
          if (service && !/^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/.test(service)) c.error(`${mp}.method.service`, `service ${JSON.stringify(service)} must be a valid fully qualified gRPC service name`);
          if (name && !/^[A-Za-z_][A-Za-z_0-9]*$/.test(name)) c.error(`${mp}.method.method`, `method ${JSON.stringify(name)} must be a valid gRPC method name`);
        } else {
          if (service) regexField(c, `${mp}.method.service`, service);
          if (name) regexField(c, `${mp}.method.method`, name);
        }
      }
      headerMatches(c, `${mp}.headers`, m.headers);
    }
    filters(c, `${path}.filters`, rule.filters, 'grpc');
    backendRefs(c, `${path}.backendRefs`, rule.backendRefs);
  }
}
