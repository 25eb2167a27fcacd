// Builds the data path's CompiledConfig from the compiled pieces of every accepted object.
import type { CompiledPiece, GatewayRouteEntry, RouteParent } from './compile.js';
import { compareGatewayEntries } from './compile.js';
import type {
  CompiledConfig, CompiledDestinationRule, CompiledRoute, RouteSelectionContext, RouteTable, ServiceKey,
} from './types.js';

interface GatewayAttachment {
  readonly parent: RouteParent;
  readonly namespace: string;
  readonly routeKind: 'HTTPRoute' | 'GRPCRoute';
  readonly entries: readonly GatewayRouteEntry[];
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

export function indexConfig(pieces: ReadonlyMap<string, CompiledPiece>, version: number): CompiledConfig {
  // VirtualServices: exact hosts first, then wildcards; the oldest VirtualService of a host wins (Istio).
  const vsExact = new Map<string, { created: string; key: string; routes: readonly CompiledRoute[] }[]>();
  const vsWildcard: { pattern: string; created: string; key: string; routes: readonly CompiledRoute[] }[] = [];
  const drs = new Map<string, { created: string; rule: CompiledDestinationRule }>();
  const attachments: GatewayAttachment[] = [];
  for (const piece of pieces.values()) {
    if (piece.kind === 'VirtualService') {
      for (const h of piece.hosts) {
        if (h.includes('*')) vsWildcard.push({ pattern: h, created: piece.created, key: piece.key, routes: piece.routes });
        else {
          const l = vsExact.get(h) ?? [];
          l.push({ created: piece.created, key: piece.key, routes: piece.routes });
          vsExact.set(h, l);
        }
      }
    } else if (piece.kind === 'DestinationRule') {
      const prev = drs.get(piece.rule.host);
      if (!prev || piece.created < prev.created) drs.set(piece.rule.host, { created: piece.created, rule: piece.rule });
    } else if (piece.kind === 'GatewayRoute') {
      for (const parent of piece.parents) attachments.push({ parent, namespace: piece.namespace, routeKind: piece.routeKind, entries: piece.entries });
    }
  }
  const byAge = <T extends { created: string; key: string }>(a: T, b: T): number =>
    a.created !== b.created ? (a.created < b.created ? -1 : 1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  for (const l of vsExact.values()) l.sort(byAge);
  vsWildcard.sort((a, b) => b.pattern.length - a.pattern.length || byAge(a, b));

  const cache = new Map<string, RouteTable | null>();

  function gatewayTable(service: ServiceKey, port: number, sourceNamespace: string | undefined): RouteTable | undefined {
    const applies = attachments.filter((a) => {
      if (a.parent.port !== undefined && a.parent.port !== port) return false;
      if (a.parent.kind === 'service') return a.parent.host === service.hostname;
      return a.parent.hostnames.length === 0 || a.parent.hostnames.some((h) => hostMatches(h, service.hostname));
    });
    if (applies.length === 0) return undefined;
    // Mesh consumer routes (in the client's namespace, not the service's) replace the producer's routes for
    // those clients; routes of other consumer namespaces do not apply at all.
    const producer = applies.filter((a) => a.parent.kind === 'gateway' || a.namespace === service.namespace);
    const consumer = sourceNamespace && sourceNamespace !== service.namespace
      ? applies.filter((a) => a.parent.kind === 'service' && a.namespace === sourceNamespace) : [];
    const chosen = consumer.length > 0 ? consumer : producer;
    if (chosen.length === 0) return undefined;
    const entries = [...new Set(chosen.flatMap((a) => a.entries))].sort(compareGatewayEntries);
    const source = chosen.every((a) => a.routeKind === 'GRPCRoute') ? 'GRPCRoute' : 'HTTPRoute';
    return { source, routes: entries.map((e) => e.route) };
  }

  return Object.freeze({
    version,
    objects: [...pieces.keys()].sort(),
    routesFor(service: ServiceKey, port: number, ctx: RouteSelectionContext = {}): RouteTable | undefined {
      const key = `${service.hostname}|${service.namespace}|${port}|${ctx.sourceNamespace ?? ''}`;
      const hit = cache.get(key);
      if (hit !== undefined) return hit ?? undefined;
      // Gateway API routes win over a VirtualService for the same service (Istio warns against mixing them).
      let table = gatewayTable(service, port, ctx.sourceNamespace);
      if (!table) {
        const vs = vsExact.get(service.hostname)?.[0] ?? vsWildcard.find((w) => hostMatches(w.pattern, service.hostname));
        if (vs) table = { source: 'VirtualService', routes: vs.routes };
      }
      if (cache.size > 10_000) cache.clear();
      cache.set(key, table ?? null);
      return table;
    },
    destinationRuleFor(host: string): CompiledDestinationRule | undefined {
      return drs.get(host)?.rule;
    },
  });
}
