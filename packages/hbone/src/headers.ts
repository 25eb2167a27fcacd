import { randomBytes } from 'node:crypto';
import { isIP, isIPv6 } from 'node:net';
import { BAGGAGE_KEYS } from '@ambit/api';

export interface Authority {
  host: string;
  port: number;
  /** true when host is an IP literal (brackets removed for IPv6). */
  isIp: boolean;
}

/** `ip:port`, IPv6 in brackets, as HBONE's :authority carries it. */
export function formatAuthority(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses `ip:port`, `[v6]:port` or `hostname:port`; undefined if malformed. */
export function parseAuthority(value: string | undefined): Authority | undefined {
  if (!value) return undefined;
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0 || value[end + 1] !== ':') return undefined;
    host = value.slice(1, end);
    if (!isIPv6(host)) return undefined;
    portText = value.slice(end + 2);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0) return undefined;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) return undefined; // unbracketed IPv6
    if (!isIP(host) && !/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/.test(host)) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port, isIp: isIP(host) !== 0 };
}

/** Source workload facts for the `baggage` header. */
export interface BaggageFacts {
  clusterName?: string;
  namespace?: string;
  /** deployment | cronjob | pod | job */
  workloadType?: string;
  workloadName?: string;
  serviceName?: string;
  serviceVersion?: string;
  region?: string;
  zone?: string;
}

/** Comma-joined key=value pairs in Istio's order, empty values skipped (spec §1.3). */
export function formatBaggage(f: BaggageFacts): string {
  const pairs: Array<[string, string | undefined]> = [
    [BAGGAGE_KEYS.clusterName, f.clusterName],
    [BAGGAGE_KEYS.namespaceName, f.namespace],
    [f.workloadType ? `${BAGGAGE_KEYS.workloadTypePrefix}${f.workloadType}.name` : '', f.workloadType ? f.workloadName : undefined],
    [BAGGAGE_KEYS.serviceName, f.serviceName],
    [BAGGAGE_KEYS.serviceVersion, f.serviceVersion],
    [BAGGAGE_KEYS.cloudRegion, f.region],
    [BAGGAGE_KEYS.cloudZone, f.zone],
  ];
  return pairs.filter(([k, v]) => k && v).map(([k, v]) => `${k}=${v}`).join(',');
}

export function parseBaggage(value: string | undefined): BaggageFacts {
  const out: BaggageFacts = {};
  if (!value) return out;
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).split(';')[0]!.trim();
    if (!v) continue;
    if (k === BAGGAGE_KEYS.clusterName) out.clusterName = v;
    else if (k === BAGGAGE_KEYS.namespaceName) out.namespace = v;
    else if (k === BAGGAGE_KEYS.serviceName) out.serviceName = v;
    else if (k === BAGGAGE_KEYS.serviceVersion) out.serviceVersion = v;
    else if (k === BAGGAGE_KEYS.cloudRegion) out.region = v;
    else if (k === BAGGAGE_KEYS.cloudZone) out.zone = v;
    else {
      const m = /^k8s\.(deployment|cronjob|pod|job|daemonset|statefulset|replicaset)\.name$/.exec(k);
      if (m) { out.workloadType = m[1]; out.workloadName = v; }
    }
  }
  return out;
}

/** `for="<ip:port>"`, plus `;host=<service hostname>` when the destination was a service. */
export function formatForwarded(sourceAddress: string, sourcePort: number, serviceHost?: string): string {
  const f = `for="${formatAuthority(sourceAddress, sourcePort)}"`;
  return serviceHost ? `${f};host=${serviceHost}` : f;
}

export function parseForwarded(value: string | undefined): { for?: string; host?: string } {
  const out: { for?: string; host?: string } = {};
  if (!value) return out;
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (k === 'for') out.for = v;
    else if (k === 'host') out.host = v;
  }
  return out;
}

/** A fresh W3C traceparent, random per connection, unsampled: `00-<32 hex>-<16 hex>-00`. */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;
}

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
export function parseTraceparent(value: string | undefined): { traceId: string; parentId: string; flags: string } | undefined {
  const m = value ? TRACEPARENT_RE.exec(value) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}
