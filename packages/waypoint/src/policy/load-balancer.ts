// DestinationRule loadBalancer (Envoy's ROUND_ROBIN, LEAST_REQUEST, RANDOM, original-destination PASSTHROUGH and
// consistent hashing on a ring) and Istio's traffic-policy merge for subsets and ports.
import { describeObject } from '@ambit/api';
import { compileConnectionPool, type ConnectionPoolSettings } from './connection-pool.js';
import { DiagnosticSink } from './diagnostics.js';
import { headerValue, isRecord, readDurationMs, readInt, warnUnknownFields } from './fields.js';
import { compileOutlierDetection, type OutlierSettings } from './outlier.js';
import { compileTlsOrigination, type TlsOriginationSettings } from './tls-origination.js';

/** DestinationRule `loadBalancer`, compiled. */
export type LoadBalancerSettings =
  | { readonly kind: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' }
  | {
      readonly kind: 'CONSISTENT_HASH';
      readonly hashOn:
        | { readonly header: string }
        | { readonly cookie: { readonly name: string; readonly path?: string; readonly ttlSeconds?: number } }
        | { readonly sourceIp: true }
        | { readonly queryParameter: string };
      /** Istio's minimumRingSize / ringHash.minimumRingSize / maglev.tableSize (default 1024): validated and kept for
       * config dumps; placement uses RING_POINTS_PER_WEIGHT points per unit of weight (minimal movement). */
      readonly ringSize: number;
    };

/** Istio's default: LEAST_REQUEST. */
export const DEFAULT_LOAD_BALANCER: LoadBalancerSettings = Object.freeze({ kind: 'LEAST_REQUEST' });

/**
 * Validates `loadBalancer` (undefined: the default). `localityLbSetting` and `warmup*` are accepted and ignored
 * (warning): Ambit has no locality-weighted balancing and no slow start. `maglev` is served by the ring hash
 * (same stickiness contract: a key keeps its endpoint, minimal movement when endpoints change).
 * Throws PolicyConfigError naming the field.
 */
export function compileLoadBalancer(loadBalancer: unknown, where: { readonly object: string; readonly field: string }): LoadBalancerSettings {
  if (loadBalancer === undefined || loadBalancer === null) return DEFAULT_LOAD_BALANCER;
  const sink = new DiagnosticSink(where.object);
  const f = where.field;
  if (!isRecord(loadBalancer)) { sink.error(f, 'must be an object'); sink.throwIfErrors(); }
  const lb = loadBalancer as Record<string, any>;
  warnUnknownFields(lb, ['simple', 'consistentHash', 'localityLbSetting', 'warmupDurationSecs', 'warmup'], f, sink);
  for (const k of ['localityLbSetting', 'warmupDurationSecs', 'warmup']) if (lb[k] !== undefined) sink.warning(`${f}.${k}`, 'ignored by Ambit');
  let out: LoadBalancerSettings = DEFAULT_LOAD_BALANCER;
  if (lb.simple !== undefined && lb.consistentHash !== undefined) sink.error(f, 'only one of simple or consistentHash may be set');
  else if (lb.simple !== undefined) {
    const map: Record<string, LoadBalancerSettings['kind']> = {
      UNSPECIFIED: 'LEAST_REQUEST', ROUND_ROBIN: 'ROUND_ROBIN', LEAST_REQUEST: 'LEAST_REQUEST', LEAST_CONN: 'LEAST_REQUEST', RANDOM: 'RANDOM', PASSTHROUGH: 'PASSTHROUGH',
    };
    const kind = map[lb.simple];
    if (!kind) sink.error(`${f}.simple`, `must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH, got ${JSON.stringify(lb.simple)}`);
    else out = { kind } as LoadBalancerSettings;
  } else if (lb.consistentHash !== undefined) {
    const at = `${f}.consistentHash`;
    const ch = lb.consistentHash;
    if (!isRecord(ch)) sink.error(at, 'must be an object');
    else {
      warnUnknownFields(ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize'], at, sink);
      const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => ch[k] !== undefined && ch[k] !== false);
      let hashOn: Extract<LoadBalancerSettings, { kind: 'CONSISTENT_HASH' }>['hashOn'] | undefined;
      if (keys.length !== 1) sink.error(at, 'exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName must be set');
      else if (keys[0] === 'httpHeaderName') {
        if (typeof ch.httpHeaderName !== 'string' || ch.httpHeaderName === '') sink.error(`${at}.httpHeaderName`, 'must be a header name');
        else hashOn = { header: ch.httpHeaderName.toLowerCase() };
      } else if (keys[0] === 'httpQueryParameterName') {
        if (typeof ch.httpQueryParameterName !== 'string' || ch.httpQueryParameterName === '') sink.error(`${at}.httpQueryParameterName`, 'must be a parameter name');
        else hashOn = { queryParameter: ch.httpQueryParameterName };
      } else if (keys[0] === 'useSourceIp') {
        if (ch.useSourceIp !== true) sink.error(`${at}.useSourceIp`, 'must be true');
        else hashOn = { sourceIp: true };
      } else {
        const c = ch.httpCookie;
        if (!isRecord(c) || typeof c.name !== 'string' || c.name === '') sink.error(`${at}.httpCookie.name`, 'is required');
        else {
          const ttlMs = c.ttl === undefined ? undefined : readDurationMs(c.ttl, `${at}.httpCookie.ttl`, sink, { allowZero: true });
          hashOn = { cookie: { name: c.name, ...(typeof c.path === 'string' ? { path: c.path } : {}), ...(ttlMs !== undefined ? { ttlSeconds: Math.floor(ttlMs / 1000) } : {}) } };
        }
      }
      let ringSize = 1024;
      if (ch.ringHash !== undefined && ch.maglev !== undefined) sink.error(at, 'only one of ringHash or maglev may be set');
      const size = ch.ringHash?.minimumRingSize ?? ch.maglev?.tableSize ?? ch.minimumRingSize;
      if (size !== undefined) ringSize = readInt(size, `${at}.${ch.ringHash ? 'ringHash.minimumRingSize' : ch.maglev ? 'maglev.tableSize' : 'minimumRingSize'}`, sink, 1, 8_388_608) ?? ringSize;
      if (ch.maglev !== undefined) sink.warning(`${at}.maglev`, 'served by the ring hash (stable, minimal movement); Maglev table placement is not reproduced');
      if (hashOn) out = { kind: 'CONSISTENT_HASH', hashOn, ringSize };
    }
  }
  sink.throwIfErrors();
  return Object.freeze(out);
}

export interface LbEndpoint {
  /** `ip:port` or any stable id; what hashes and round robin key on. */
  readonly address: string;
  /** Relative weight (default 1). Honoured by ROUND_ROBIN, RANDOM and the hash ring. */
  readonly weight?: number;
}

/** Request facts for hash policies and LEAST_REQUEST. */
export interface LbContext {
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Request target with query string (queryParameter hashing). */
  readonly path?: string;
  readonly sourceIp?: string;
  /** Active requests to an endpoint (LEAST_REQUEST). */
  readonly activeRequests?: (address: string) => number;
  /** Endpoints to avoid (retry previous_hosts); used when others are available. */
  readonly exclude?: ReadonlySet<string>;
}

export type LbPick<E extends LbEndpoint> =
  | { readonly kind: 'endpoint'; readonly endpoint: E; readonly setCookie?: string }
  /** PASSTHROUGH: connect to the request's original destination address. */
  | { readonly kind: 'passthrough' }
  | { readonly kind: 'none' };

export interface LoadBalancer {
  readonly settings: LoadBalancerSettings;
  pick<E extends LbEndpoint>(endpoints: readonly E[], ctx?: LbContext): LbPick<E>;
}

/** 32-bit FNV-1a with a murmur3 finalizer: fast, well mixed for ring placement. */
export function hashKey(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

interface Ring { readonly hashes: Uint32Array; readonly owners: string[] }

/** Ring points per unit of weight. Fixed, not derived from the endpoint count, so that adding an endpoint moves
 * only the keys that land on its points (Envoy scales points to minimumRingSize / hosts, which also moves keys
 * between the existing hosts). */
export const RING_POINTS_PER_WEIGHT = 160;

function buildRing(endpoints: readonly LbEndpoint[]): Ring {
  const points: [number, string][] = [];
  for (const e of endpoints) {
    const n = Math.max(1, Math.round(RING_POINTS_PER_WEIGHT * (e.weight ?? 1)));
    for (let i = 0; i < n; i++) points.push([hashKey(`${e.address}_${i}`), e.address]);
  }
  points.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return { hashes: Uint32Array.from(points.map((p) => p[0])), owners: points.map((p) => p[1]) };
}

function ringLookup(ring: Ring, h: number): string {
  let lo = 0;
  let hi = ring.hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.hashes[mid]! < h) lo = mid + 1; else hi = mid;
  }
  return ring.owners[lo === ring.hashes.length ? 0 : lo]!;
}

/**
 * A balancer for one cluster. ROUND_ROBIN is smooth weighted round robin; RANDOM is weighted; LEAST_REQUEST is
 * Envoy's power of two choices on `ctx.activeRequests`; CONSISTENT_HASH hashes the header / cookie / source IP /
 * query parameter onto a ring (no key: a random endpoint; a cookie policy with a ttl generates the cookie and
 * returns `setCookie` for the response). `random` in [0, 1) is injectable for tests.
 */
export function createLoadBalancer(settings: LoadBalancerSettings, options: { readonly random?: () => number } = {}): LoadBalancer {
  const random = options.random ?? Math.random;
  const current = new Map<string, number>();
  let ringCache: { key: string; ring: Ring } | undefined;

  const pickIndex = (n: number) => Math.min(n - 1, Math.floor(random() * n));
  function weightedRandom<E extends LbEndpoint>(eps: readonly E[]): E {
    const total = eps.reduce((s, e) => s + (e.weight ?? 1), 0);
    let r = random() * total;
    for (const e of eps) { r -= e.weight ?? 1; if (r < 0) return e; }
    return eps[eps.length - 1]!;
  }
  function roundRobin<E extends LbEndpoint>(eps: readonly E[]): E {
    // Smooth weighted round robin (nginx): deterministic, interleaved, equal weights give plain rotation.
    let total = 0;
    let best: E | undefined;
    let bestW = -Infinity;
    for (const e of eps) {
      const w = e.weight ?? 1;
      total += w;
      const cw = (current.get(e.address) ?? 0) + w;
      current.set(e.address, cw);
      if (cw > bestW) { bestW = cw; best = e; }
    }
    current.set(best!.address, bestW - total);
    if (current.size > eps.length * 4) for (const k of [...current.keys()]) if (!eps.some((e) => e.address === k)) current.delete(k);
    return best!;
  }
  function ringFor(eps: readonly LbEndpoint[]): Ring {
    const key = eps.map((e) => `${e.address}*${e.weight ?? 1}`).join(',');
    if (ringCache?.key !== key) ringCache = { key, ring: buildRing(eps) };
    return ringCache.ring;
  }

  return {
    settings,
    pick<E extends LbEndpoint>(endpoints: readonly E[], ctx: LbContext = {}): LbPick<E> {
      if (settings.kind === 'PASSTHROUGH') return { kind: 'passthrough' };
      let eps = endpoints;
      if (ctx.exclude && ctx.exclude.size > 0) {
        const rest = endpoints.filter((e) => !ctx.exclude!.has(e.address));
        if (rest.length > 0) eps = rest;
      }
      if (eps.length === 0) return { kind: 'none' };
      if (eps.length === 1) {
        if (settings.kind !== 'CONSISTENT_HASH') return { kind: 'endpoint', endpoint: eps[0]! };
      }
      switch (settings.kind) {
        case 'ROUND_ROBIN': return { kind: 'endpoint', endpoint: roundRobin(eps) };
        case 'RANDOM': return { kind: 'endpoint', endpoint: weightedRandom(eps) };
        case 'LEAST_REQUEST': {
          const a = eps[pickIndex(eps.length)]!;
          const b = eps[pickIndex(eps.length)]!;
          const load = ctx.activeRequests ?? (() => 0);
          return { kind: 'endpoint', endpoint: load(b.address) < load(a.address) ? b : a };
        }
        case 'CONSISTENT_HASH': {
          const on = settings.hashOn;
          let key: string | undefined;
          let setCookie: string | undefined;
          if ('header' in on) key = headerValue(ctx.headers, on.header);
          else if ('queryParameter' in on) {
            const q = ctx.path?.indexOf('?') ?? -1;
            key = q >= 0 ? new URLSearchParams(ctx.path!.slice(q + 1)).get(on.queryParameter) ?? undefined : undefined;
          } else if ('sourceIp' in on) key = ctx.sourceIp;
          else {
            key = readCookie(headerValue(ctx.headers, 'cookie'), on.cookie.name);
            if (key === undefined && on.cookie.ttlSeconds !== undefined) {
              // Envoy derives the generated value from the client address; random when it is unknown.
              key = hashKey(ctx.sourceIp ?? String(random())).toString(16).padStart(8, '0') + hashKey(`${ctx.sourceIp ?? random()}#`).toString(16).padStart(8, '0');
              setCookie = `${on.cookie.name}="${key}"` + (on.cookie.ttlSeconds > 0 ? `; Max-Age=${on.cookie.ttlSeconds}` : '') +
                (on.cookie.path ? `; Path=${on.cookie.path}` : '') + '; HttpOnly';
            }
          }
          const ring = ringFor(eps);
          const addr = ringLookup(ring, key === undefined ? Math.floor(random() * 2 ** 32) : hashKey(key));
          const endpoint = eps.find((e) => e.address === addr)!;
          return setCookie ? { kind: 'endpoint', endpoint, setCookie } : { kind: 'endpoint', endpoint };
        }
      }
    },
  };
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/;\s*/)) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** The effective traffic policy for one destination (raw Istio JSON fields, unvalidated; compile them next). */
export interface EffectiveTrafficPolicy {
  readonly connectionPool?: unknown;
  readonly loadBalancer?: unknown;
  readonly outlierDetection?: unknown;
  readonly tls?: unknown;
  /** Where each came from, for messages: `spec.trafficPolicy.portLevelSettings[0]`, `spec.subsets[1].trafficPolicy`. */
  readonly fields: { readonly connectionPool?: string; readonly loadBalancer?: string; readonly outlierDetection?: string; readonly tls?: string };
  /** The named subset does not exist in the DestinationRule (the top-level policy was used). */
  readonly subsetMissing?: boolean;
}

/** The compiled effective policy. */
export interface CompiledTrafficPolicy {
  readonly connectionPool: ConnectionPoolSettings;
  readonly loadBalancer: LoadBalancerSettings;
  readonly outlierDetection?: OutlierSettings;
  readonly tls?: TlsOriginationSettings;
}

/**
 * Istio's MergeTrafficPolicy: top-level fields; the top-level portLevelSettings entry for `port` replaces all four
 * (unset ones fall back to defaults, not to the top level); the subset's trafficPolicy fields override one by one;
 * the subset's own portLevelSettings entry for `port` again replaces all four.
 */
export function resolveTrafficPolicy(destinationRule: { readonly spec?: any }, subset?: string, port?: number): EffectiveTrafficPolicy {
  const spec = isRecord(destinationRule.spec) ? destinationRule.spec : {};
  type Mutable = { connectionPool?: unknown; loadBalancer?: unknown; outlierDetection?: unknown; tls?: unknown; fields: Record<string, string> };
  const FIELDS = ['connectionPool', 'loadBalancer', 'outlierDetection', 'tls'] as const;
  const out: Mutable = { fields: {} };
  const take = (policy: Record<string, any>, at: string, replaceAll: boolean) => {
    for (const k of FIELDS) {
      if (policy[k] !== undefined) { out[k] = policy[k]; out.fields[k] = `${at}.${k}`; }
      else if (replaceAll) { delete out[k]; delete out.fields[k]; }
    }
  };
  const portLevel = (policy: Record<string, any>, at: string) => {
    if (port === undefined || !Array.isArray(policy.portLevelSettings)) return;
    const i = policy.portLevelSettings.findIndex((p: any) => isRecord(p) && isRecord(p.port) && Number(p.port.number) === port);
    // Port-level settings do not inherit: the four fields are replaced, unset ones fall back to the defaults.
    if (i >= 0) take(policy.portLevelSettings[i], `${at}.portLevelSettings[${i}]`, true);
  };
  const top = isRecord(spec.trafficPolicy) ? spec.trafficPolicy : undefined;
  if (top) { take(top, 'spec.trafficPolicy', false); portLevel(top, 'spec.trafficPolicy'); }
  let subsetMissing = false;
  if (subset !== undefined) {
    const subsets: unknown[] = Array.isArray(spec.subsets) ? spec.subsets : [];
    const i = subsets.findIndex((s) => isRecord(s) && s.name === subset);
    if (i < 0) subsetMissing = true;
    else {
      const sp = (subsets[i] as Record<string, any>).trafficPolicy;
      if (isRecord(sp)) { take(sp, `spec.subsets[${i}].trafficPolicy`, false); portLevel(sp, `spec.subsets[${i}].trafficPolicy`); }
    }
  }
  const { fields, ...rest } = out;
  return { ...rest, fields, ...(subsetMissing ? { subsetMissing } : {}) };
}

/** resolveTrafficPolicy + compile of each field. Throws PolicyConfigError naming the DestinationRule and field. */
export function compileTrafficPolicy(destinationRule: { readonly kind?: string; readonly metadata: { name: string; namespace?: string }; readonly spec?: any }, subset?: string, port?: number): CompiledTrafficPolicy {
  const object = describeObject({ kind: destinationRule.kind ?? 'DestinationRule', metadata: destinationRule.metadata });
  const eff = resolveTrafficPolicy(destinationRule, subset, port);
  const at = (k: keyof EffectiveTrafficPolicy['fields']) => ({ object, field: eff.fields[k] ?? `spec.trafficPolicy.${k}` });
  const outlierDetection = compileOutlierDetection(eff.outlierDetection, at('outlierDetection'));
  const tls = compileTlsOrigination(eff.tls, at('tls'));
  return {
    connectionPool: compileConnectionPool(eff.connectionPool, at('connectionPool')),
    loadBalancer: compileLoadBalancer(eff.loadBalancer, at('loadBalancer')),
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(tls ? { tls } : {}),
  };
}
