// Request-time routing: first matching route of a table, path rewrites, redirects and header operations.
import { matchString } from './fields.js';
import type { CompiledRoute, HeaderOps, PathRewrite, Redirect, RequestMatcher, RouteTable, WeightedDestination } from './types.js';

/** What a matcher looks at. Header names lower case; a repeated header is comma-joined. */
export interface RequestFacts {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authority: string;
  readonly scheme: string;
  readonly port: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly matcher: RequestMatcher | undefined;
}

export function matches(m: RequestMatcher, r: RequestFacts): boolean {
  if (m.port !== undefined && m.port !== r.port) return false;
  if (m.path && !matchString(m.path, r.path)) return false;
  if (m.method && !matchString(m.method, r.method)) return false;
  if (m.authority && !matchString(m.authority, r.authority)) return false;
  if (m.scheme && !matchString(m.scheme, r.scheme)) return false;
  for (const h of m.headers) {
    const ok = matchString(h.matcher, r.headers[h.name]);
    if (ok === Boolean(h.invert)) return false;
  }
  for (const q of m.queryParams) {
    // Gateway API and Istio: the first value of a repeated parameter is matched.
    const v = r.query.get(q.name);
    if (!matchString(q.matcher, v ?? undefined)) return false;
  }
  return true;
}

/** First route whose match blocks (OR) accept the request; undefined: no route (NR). */
export function selectRoute(table: RouteTable, r: RequestFacts): RouteMatch | undefined {
  for (const route of table.routes) {
    if (route.matches.length === 0) return { route, matcher: undefined };
    for (const m of route.matches) if (matches(m, r)) return { route, matcher: m };
  }
  return undefined;
}

/** Weighted choice (weights need not sum to 100); `random` is uniform in [0, 1). */
export function pickWeighted(destinations: readonly WeightedDestination[], random: () => number = Math.random): WeightedDestination | undefined {
  let total = 0;
  for (const d of destinations) total += d.weight;
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const d of destinations) {
    x -= d.weight;
    if (x < 0 && d.weight > 0) return d;
  }
  return destinations.filter((d) => d.weight > 0).at(-1);
}

/** The prefix a route's match block matched, for prefix rewrites ("/" when the block has no path match). */
function matchedPrefix(m: RequestMatcher | undefined, path: string): string {
  const p = m?.path;
  if (!p) return '/';
  if (p.kind === 'prefix' || p.kind === 'pathPrefix') return p.value;
  if (p.kind === 'exact') return p.value;
  return path;
}

/** Applies a path rewrite to `path` (no query). */
export function rewritePath(rw: PathRewrite, path: string, matcher: RequestMatcher | undefined): string {
  switch (rw.kind) {
    case 'full': return rw.value;
    case 'regex': return rw.replace(path);
    case 'prefix': {
      const prefix = rw.matched || matchedPrefix(matcher, path);
      const gatewayStyle = matcher?.path?.kind === 'pathPrefix';
      if (!gatewayStyle) {
        // Envoy prefix_rewrite: plain string replacement of the matched prefix.
        return path.startsWith(prefix) ? rw.value + path.slice(prefix.length) : path;
      }
      // Gateway API ReplacePrefixMatch is element-wise: `/strip-prefix` -> `/` turns `/strip-prefix/three` into `/three`.
      const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
      let rest = p === '/' ? path.slice(1) : path.slice(p.length);
      if (rest.startsWith('/')) rest = rest.slice(1);
      const base = rw.value.endsWith('/') ? rw.value.slice(0, -1) : rw.value;
      const out = rest ? `${base}/${rest}` : base;
      return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
    }
  }
}

/** Location header of a redirect, from the request as received. */
export function redirectLocation(rd: Redirect, r: RequestFacts, matcher: RequestMatcher | undefined, rawQuery: string): string {
  const scheme = rd.scheme ?? r.scheme;
  const authority = rd.authority ?? hostOnly(r.authority);
  let port: number | undefined;
  if (rd.port !== undefined) port = rd.port;
  else if (rd.portFromScheme) port = undefined;
  else if (rd.authority === undefined) port = portOf(r.authority);
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostPort = port !== undefined && port !== defaultPort ? `${authority}:${port}` : authority;
  const path = rd.path ? rewritePath(rd.path, r.path, matcher) : r.path;
  return `${scheme}://${hostPort}${path}${rawQuery}`;
}

function hostOnly(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const i = authority.lastIndexOf(':');
  return i > 0 ? authority.slice(0, i) : authority;
}

function portOf(authority: string): number | undefined {
  const m = /:(\d+)$/.exec(authority);
  return m && !authority.endsWith(']') ? Number(m[1]) : undefined;
}

/** Header operations on a lower-case header map, in Envoy's order: remove... set, add. */
export function applyHeaderOps(headers: Record<string, string | string[] | undefined>, ops: HeaderOps): void {
  for (const [k, v] of ops.set) headers[k] = v;
  for (const [k, v] of ops.add) {
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v].join(',') : `${prev},${v}`;
  }
  for (const k of ops.remove) delete headers[k];
}
