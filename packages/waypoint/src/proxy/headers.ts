// Header handling as a proxy must (RFC 9110 §7.6.1, Envoy's behaviour): hop-by-hop headers and every header named
// in Connection are dropped in both directions; pseudo headers never cross protocols.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'http2-settings',
]);

export type HeaderMap = Record<string, string | string[] | undefined>;

/** Request or response headers without hop-by-hop and pseudo headers; `te: trailers` is kept (gRPC needs it). */
export function endToEndHeaders(headers: IncomingHttpHeaders): HeaderMap {
  const named = new Set<string>();
  const conn = headers.connection;
  if (typeof conn === 'string') for (const t of conn.split(',')) named.add(t.trim().toLowerCase());
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(':')) continue;
    if (k === 'te') {
      if (typeof v === 'string' && v.split(',').some((t) => t.trim().toLowerCase() === 'trailers')) out.te = 'trailers';
      continue;
    }
    if (HOP_BY_HOP.has(k) || named.has(k)) continue;
    // Node joins repeated request headers with ", " except set-cookie (array); keep as given.
    out[k] = v;
  }
  return out;
}

/** One header as a single string (repeated values comma-joined), for matching. */
export function headerText(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
}

/** Flat lower-case string view for route matching. */
export function matchView(headers: HeaderMap): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of Object.keys(headers)) out[k] = headerText(headers, k);
  return out;
}

/** Response headers to send downstream (HTTP/2 forbids connection-specific ones). */
export function toOutgoing(headers: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !k.startsWith(':')) out[k] = v;
  return out;
}
