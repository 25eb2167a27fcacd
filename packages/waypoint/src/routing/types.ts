import type { FaultPolicy } from '../policy/index.js';

/**
 * The waypoint's compiled routing model. VirtualService, DestinationRule, HTTPRoute and GRPCRoute objects are
 * compiled into these plain, frozen structures once per configuration change (routing/compile.ts); the data path
 * only reads them. Host names are FQDNs (`reviews.default.svc.cluster.local`) after compilation.
 */

/** How one string is compared: exact, prefix, RE2 full match, or presence of the value. */
export type StringMatcher =
  | { readonly kind: 'exact'; readonly value: string; readonly ignoreCase?: boolean }
  | { readonly kind: 'prefix'; readonly value: string; readonly ignoreCase?: boolean }
  /** Gateway API PathPrefix: element-wise (`/v2` matches `/v2` and `/v2/x`, not `/v2x`). */
  | { readonly kind: 'pathPrefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string; readonly test: (s: string) => boolean }
  | { readonly kind: 'present' };

export interface HeaderMatcher {
  /** Lower case. */
  readonly name: string;
  readonly matcher: StringMatcher;
  /** true: the request must NOT match (VirtualService withoutHeaders). */
  readonly invert?: boolean;
}

/** One match block: every field set must match (AND). */
export interface RequestMatcher {
  readonly path?: StringMatcher;
  readonly method?: StringMatcher;
  readonly authority?: StringMatcher;
  readonly scheme?: StringMatcher;
  readonly headers: readonly HeaderMatcher[];
  readonly queryParams: readonly { readonly name: string; readonly matcher: StringMatcher }[];
  /** VirtualService match `port`: the destination (service) port. */
  readonly port?: number;
}

export interface HeaderOps {
  /** Lower-case name -> value; replaces any existing value. */
  readonly set: readonly (readonly [string, string])[];
  /** Appended to an existing value (comma-joined), or set when absent. */
  readonly add: readonly (readonly [string, string])[];
  /** Lower-case names. */
  readonly remove: readonly string[];
}

export const NO_HEADER_OPS: HeaderOps = Object.freeze({ set: [], add: [], remove: [] });

export interface Destination {
  /** FQDN of the destination service (or ServiceEntry host). */
  readonly host: string;
  /** Service port; undefined = the port the request came in on. */
  readonly port?: number;
  /** DestinationRule subset name. */
  readonly subset?: string;
}

export interface WeightedDestination extends Destination {
  readonly weight: number;
  /** Per-backend header operations (VS route[].headers, HTTPRoute backendRefs[].filters). */
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
}

export type PathRewrite =
  | { readonly kind: 'full'; readonly value: string }
  /** Replaces the matched prefix (`matched`) by `value`. */
  | { readonly kind: 'prefix'; readonly matched: string; readonly value: string }
  /** VirtualService rewrite.uriRegexRewrite: RE2 replace. */
  | { readonly kind: 'regex'; readonly replace: (path: string) => string };

export interface Redirect {
  /** Path of the Location (query kept); undefined keeps the request path. */
  readonly path?: PathRewrite;
  readonly authority?: string;
  readonly port?: number;
  /** Derive the port from the scheme (VS derivePort FROM_PROTOCOL_DEFAULT / HTTPRoute scheme without port). */
  readonly portFromScheme?: boolean;
  readonly scheme?: string;
  readonly status: number;
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly attempts: number;
  /** Envoy retry_on conditions: 5xx, gateway-error, connect-failure, refused-stream, reset, retriable-4xx, ... */
  readonly retryOn: ReadonlySet<string>;
  /** Status codes retried (retriable-status-codes, or HTTPRoute retry.codes). */
  readonly statusCodes: ReadonlySet<number>;
  readonly perTryTimeoutMs?: number;
  /** Base interval of the exponential backoff between attempts. */
  readonly backoffMs: number;
}

export interface MirrorPolicy {
  readonly destination: Destination;
  /** 0..100 */
  readonly percent: number;
}

export type RouteAction =
  | { readonly kind: 'forward'; readonly destinations: readonly WeightedDestination[] }
  | { readonly kind: 'redirect'; readonly redirect: Redirect }
  | { readonly kind: 'direct'; readonly status: number; readonly body?: string };

/** One route: match blocks (OR; empty = everything) and what to do. */
export interface CompiledRoute {
  /** `VirtualService default/reviews spec.http[1]` or `HTTPRoute default/r spec.rules[0].matches[1]`. */
  readonly origin: string;
  /** VS http[].name or HTTPRoute rule name, when set. */
  readonly name?: string;
  readonly matches: readonly RequestMatcher[];
  readonly action: RouteAction;
  readonly rewrite?: { readonly path?: PathRewrite; readonly authority?: string };
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
  readonly mirrors: readonly MirrorPolicy[];
  /** Whole request, all attempts. undefined: none. */
  readonly timeoutMs?: number;
  /** undefined: the default policy applies; attempts 0: retries off. */
  readonly retries?: RetryPolicy;
  /** The VirtualService `fault` block, compiled by policy/faults.ts. */
  readonly fault?: FaultPolicy;
}

export type RouteSource = 'VirtualService' | 'HTTPRoute' | 'GRPCRoute';

/** The routes that apply to one service port, in evaluation order. */
export interface RouteTable {
  readonly source: RouteSource;
  readonly routes: readonly CompiledRoute[];
}

export interface Subset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The subset's trafficPolicy, as written (merged over the rule's by policy/). */
  readonly trafficPolicy?: unknown;
}

export interface CompiledDestinationRule {
  readonly origin: string;
  readonly host: string;
  readonly subsets: ReadonlyMap<string, Subset>;
  /** spec.trafficPolicy as written (connectionPool, outlierDetection, loadBalancer, portLevelSettings). */
  readonly trafficPolicy?: unknown;
  /** The object as accepted (name, namespace, spec): policy/ merges and compiles its traffic policies per cluster. */
  readonly source: { readonly kind: 'DestinationRule'; readonly metadata: { readonly name: string; readonly namespace?: string }; readonly spec: unknown };
}

/** A service as the router sees it. */
export interface ServiceKey {
  readonly hostname: string;
  readonly namespace: string;
  readonly name: string;
}

/** Facts about the request's origin that select routes (Gateway API consumer routes). */
export interface RouteSelectionContext {
  /** Namespace of the source workload (from its verified identity). */
  readonly sourceNamespace?: string;
}

/** A compiled configuration: what the data path reads. Immutable; a new one replaces it atomically. */
export interface CompiledConfig {
  readonly version: number;
  /** Routes for a service port; undefined: no route object applies (default pass-through). */
  routesFor(service: ServiceKey, port: number, ctx?: RouteSelectionContext): RouteTable | undefined;
  destinationRuleFor(host: string): CompiledDestinationRule | undefined;
  /** Objects in force (name -> resourceVersion/generation text), for the config dump. */
  readonly objects: readonly string[];
}

/** One configuration problem: names the object and the field. */
export interface Diagnostic {
  /** xDS resource name `<Kind>/<ns>/<name>`. */
  readonly name: string;
  /** `VirtualService default/reviews: spec.http[0].route[1].weight: must be 0..100` */
  readonly message: string;
}
