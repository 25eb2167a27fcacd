import { DEFAULT_CLUSTER_ID, DEFAULT_SERVICE_ACCOUNT, DEFAULT_TRUST_DOMAIN } from '@ambit/api';
import { canonicalizeIp, parseCidr } from './ip.js';
import type {
  ApplicationTunnel,
  Authorization,
  AuthorizationAction,
  AuthorizationInput,
  AuthorizationMatch,
  AuthorizationScope,
  GatewayAddress,
  HealthStatus,
  IpFamilies,
  LoadBalancing,
  LoadBalancingHealthPolicy,
  LoadBalancingMode,
  LoadBalancingScope,
  Locality,
  NetworkAddress,
  NetworkMode,
  PortMap,
  Protocol,
  Service,
  ServiceAccountMatch,
  ServiceInput,
  ServicePort,
  StringMatch,
  Workload,
  WorkloadInput,
} from './types.js';
import { keyOfPolicy, keyOfService } from './types.js';

/**
 * Validation of updater inputs: each function returns the validated, defaulted, frozen model or the first problem
 * found, as a message naming the entry and the field, e.g.
 * `workload "default/sleep-1" (uid Kubernetes//Pod/default/sleep-1): workloadIps[0] "10.0.1.x" is not an IP address`.
 * Inputs may come straight from YAML, so nothing about their types is trusted.
 */
export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

class FieldError extends Error {}
const fail = (field: string, problem: string): never => {
  throw new FieldError(`${field} ${problem}`);
};
const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

function str(v: unknown, field: string, opts: { required?: boolean; fallback?: string } = {}): string {
  if (v === undefined || v === null || v === '') {
    if (opts.required) fail(field, 'is required');
    return opts.fallback ?? '';
  }
  if (typeof v !== 'string') fail(field, `${show(v)} is not a string`);
  return v as string;
}
function bool(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') fail(field, `${show(v)} is not a boolean`);
  return v as boolean;
}
function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(field, `${show(v)} is not a list`);
  return v as unknown[];
}
function record(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(field, `${show(v)} is not a map`);
  return v as Record<string, unknown>;
}
function port(v: unknown, field: string, opts: { allowZero?: boolean } = {}): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (opts.allowZero ? 0 : 1) || n > 65535) {
    fail(field, `${show(v)} is not a port number (${opts.allowZero ? 0 : 1}..65535)`);
  }
  return n as number;
}
function oneOf<T extends string>(v: unknown, field: string, values: readonly T[], fallback: T): T {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v !== 'string' || !values.includes(v as T)) fail(field, `${show(v)} is not one of ${values.join(', ')}`);
  return v as T;
}
function ip(v: unknown, field: string): string {
  const c = typeof v === 'string' ? canonicalizeIp(v) : undefined;
  if (!c) fail(field, `${show(v)} is not an IP address`);
  return c!;
}
function namespacedName(v: unknown, field: string, what: string): string {
  const s = str(v, field, { required: true });
  const i = s.indexOf('/');
  if (i <= 0 || i === s.length - 1) fail(field, `${show(s)} is not of the form "<namespace>/<${what}>"`);
  return s;
}

function run<T>(describe: () => string, body: () => T): Validated<T> {
  try {
    return { ok: true, value: body() };
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, message: `${describe()}: ${e.message}` };
    throw e;
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o as object)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function describeWorkload(w: Partial<WorkloadInput> | undefined): string {
  const r = (w ?? {}) as Record<string, unknown>;
  const nsName = `${typeof r.namespace === 'string' ? r.namespace : '?'}/${typeof r.name === 'string' ? r.name : '?'}`;
  return `workload "${nsName}" (uid ${typeof r.uid === 'string' && r.uid ? r.uid : 'missing'})`;
}
export function describeService(s: Partial<ServiceInput> | undefined): string {
  const r = (s ?? {}) as Record<string, unknown>;
  return `service "${typeof r.namespace === 'string' ? r.namespace : '?'}/${typeof r.hostname === 'string' ? r.hostname : '?'}"`;
}
export function describePolicy(p: Partial<AuthorizationInput> | undefined): string {
  const r = (p ?? {}) as Record<string, unknown>;
  return `policy "${typeof r.namespace === 'string' ? r.namespace : '?'}/${typeof r.name === 'string' ? r.name : '?'}"`;
}

const PROTOCOLS = ['HBONE', 'TCP'] as const satisfies readonly Protocol[];
const STATUSES = ['Healthy', 'Unhealthy'] as const satisfies readonly HealthStatus[];
const NETWORK_MODES = ['Standard', 'HostNetwork'] as const satisfies readonly NetworkMode[];
const SCOPES = ['Global', 'Namespace', 'WorkloadSelector'] as const satisfies readonly AuthorizationScope[];
const ACTIONS = ['Allow', 'Deny'] as const satisfies readonly AuthorizationAction[];
const LB_SCOPES = ['Network', 'Region', 'Zone', 'Subzone', 'Node', 'Cluster'] as const satisfies readonly LoadBalancingScope[];
const LB_MODES = ['Standard', 'Strict', 'Failover', 'Passthrough'] as const satisfies readonly LoadBalancingMode[];
const LB_HEALTH = ['OnlyHealthy', 'AllowAll'] as const satisfies readonly LoadBalancingHealthPolicy[];
const IP_FAMILIES = ['Automatic', 'IPv4Only', 'IPv6Only', 'Dual'] as const satisfies readonly IpFamilies[];

function gatewayAddress(v: unknown, field: string): GatewayAddress | undefined {
  if (v === undefined || v === null) return undefined;
  const r = record(v, field);
  const d = record(r.destination, `${field}.destination`);
  let destination: GatewayAddress['destination'];
  if ('address' in d) {
    destination = { network: str(d.network, `${field}.destination.network`), address: ip(d.address, `${field}.destination.address`) };
  } else if ('hostname' in d) {
    destination = {
      namespace: str(d.namespace, `${field}.destination.namespace`, { required: true }),
      hostname: str(d.hostname, `${field}.destination.hostname`, { required: true }),
    };
  } else {
    return fail(`${field}.destination`, 'needs either {network, address} or {namespace, hostname}');
  }
  const hboneMtlsPort = r.hboneMtlsPort === undefined ? 15008 : port(r.hboneMtlsPort, `${field}.hboneMtlsPort`);
  return { destination, hboneMtlsPort };
}

function portMap(v: unknown, field: string): PortMap {
  const out: Record<number, number> = {};
  for (const [k, t] of Object.entries(record(v, field))) {
    const sp = port(k, `${field} key`);
    out[sp] = port(t, `${field}[${k}]`, { allowZero: true });
  }
  return out;
}

export function validateWorkload(input: WorkloadInput): Validated<Workload> {
  return run(() => describeWorkload(input), () => {
    const r = record(input, 'workload');
    const uid = str(r.uid, 'uid', { required: true });
    const name = str(r.name, 'name', { required: true });
    const namespace = str(r.namespace, 'namespace', { required: true });
    const workloadIps = list(r.workloadIps, 'workloadIps').map((a, i) => ip(a, `workloadIps[${i}]`));
    const services: Record<string, PortMap> = {};
    for (const [k, v] of Object.entries(record(r.services, 'services'))) {
      const key = namespacedName(k, `services key`, 'hostname');
      services[key] = portMap(v, `services["${k}"]`);
    }
    const loc = record(r.locality, 'locality');
    const locality: Locality = {
      region: str(loc.region, 'locality.region'),
      zone: str(loc.zone, 'locality.zone'),
      subzone: str(loc.subzone, 'locality.subzone'),
    };
    let applicationTunnel: ApplicationTunnel | undefined;
    if (r.applicationTunnel !== undefined && r.applicationTunnel !== null) {
      const at = record(r.applicationTunnel, 'applicationTunnel');
      applicationTunnel = {
        protocol: oneOf(at.protocol, 'applicationTunnel.protocol', ['NONE', 'PROXY'] as const, 'NONE'),
        ...(at.port === undefined || at.port === 0 ? {} : { port: port(at.port, 'applicationTunnel.port') }),
      };
    }
    let capacity = 1;
    if (r.capacity !== undefined && r.capacity !== null) {
      if (typeof r.capacity !== 'number' || !Number.isInteger(r.capacity) || r.capacity < 0 || r.capacity > 0xffffffff) {
        fail('capacity', `${show(r.capacity)} is not an unsigned 32-bit integer`);
      }
      capacity = r.capacity as number;
    }
    const waypoint = gatewayAddress(r.waypoint, 'waypoint');
    const networkGateway = gatewayAddress(r.networkGateway, 'networkGateway');
    const w: Workload = {
      uid,
      name,
      namespace,
      trustDomain: str(r.trustDomain, 'trustDomain', { fallback: DEFAULT_TRUST_DOMAIN }),
      serviceAccount: str(r.serviceAccount, 'serviceAccount', { fallback: DEFAULT_SERVICE_ACCOUNT }),
      workloadIps,
      hostname: str(r.hostname, 'hostname'),
      network: str(r.network, 'network'),
      node: str(r.node, 'node'),
      clusterId: str(r.clusterId, 'clusterId', { fallback: DEFAULT_CLUSTER_ID }),
      locality,
      protocol: oneOf(r.protocol, 'protocol', PROTOCOLS, 'TCP'),
      networkMode: oneOf(r.networkMode, 'networkMode', NETWORK_MODES, 'Standard'),
      ...(waypoint ? { waypoint } : {}),
      ...(networkGateway ? { networkGateway } : {}),
      nativeTunnel: bool(r.nativeTunnel, 'nativeTunnel'),
      ...(applicationTunnel ? { applicationTunnel } : {}),
      canonicalName: str(r.canonicalName, 'canonicalName'),
      canonicalRevision: str(r.canonicalRevision, 'canonicalRevision'),
      workloadName: str(r.workloadName, 'workloadName'),
      workloadType: str(r.workloadType, 'workloadType', { fallback: 'pod' }).toLowerCase(),
      status: oneOf(r.status, 'status', STATUSES, 'Healthy'),
      capacity,
      services,
      authorizationPolicies: list(r.authorizationPolicies, 'authorizationPolicies').map((p, i) =>
        namespacedName(p, `authorizationPolicies[${i}]`, 'name'),
      ),
    };
    return deepFreeze(w);
  });
}

export function validateService(input: ServiceInput): Validated<Service> {
  return run(() => describeService(input), () => {
    const r = record(input, 'service');
    const name = str(r.name, 'name', { required: true });
    const namespace = str(r.namespace, 'namespace', { required: true });
    const hostname = str(r.hostname, 'hostname', { required: true });
    if (hostname.includes('/')) fail('hostname', `${show(hostname)} must not contain "/"`);
    const vips: NetworkAddress[] = list(r.vips, 'vips').map((v, i) => {
      const a = record(v, `vips[${i}]`);
      return { network: str(a.network, `vips[${i}].network`), address: ip(a.address, `vips[${i}].address`) };
    });
    const seen = new Set<number>();
    const ports: ServicePort[] = list(r.ports, 'ports').map((v, i) => {
      const p = record(v, `ports[${i}]`);
      const servicePort = port(p.servicePort, `ports[${i}].servicePort`);
      if (seen.has(servicePort)) fail(`ports[${i}].servicePort`, `${servicePort} is listed twice`);
      seen.add(servicePort);
      return { servicePort, targetPort: p.targetPort === undefined ? 0 : port(p.targetPort, `ports[${i}].targetPort`, { allowZero: true }) };
    });
    let loadBalancing: LoadBalancing | undefined;
    if (r.loadBalancing !== undefined && r.loadBalancing !== null) {
      const lb = record(r.loadBalancing, 'loadBalancing');
      loadBalancing = {
        routingPreferences: list(lb.routingPreferences, 'loadBalancing.routingPreferences').map((s, i) =>
          oneOf(s, `loadBalancing.routingPreferences[${i}]`, LB_SCOPES, 'Network'),
        ),
        mode: oneOf(lb.mode, 'loadBalancing.mode', LB_MODES, 'Standard'),
        healthPolicy: oneOf(lb.healthPolicy, 'loadBalancing.healthPolicy', LB_HEALTH, 'OnlyHealthy'),
      };
    }
    const waypoint = gatewayAddress(r.waypoint, 'waypoint');
    const s: Service = {
      name,
      namespace,
      hostname,
      vips,
      ports,
      subjectAltNames: list(r.subjectAltNames, 'subjectAltNames').map((v, i) => str(v, `subjectAltNames[${i}]`, { required: true })),
      ...(waypoint ? { waypoint } : {}),
      ...(loadBalancing ? { loadBalancing } : {}),
      ipFamilies: oneOf(r.ipFamilies, 'ipFamilies', IP_FAMILIES, 'Automatic'),
      canonical: bool(r.canonical, 'canonical'),
    };
    return deepFreeze(s);
  });
}

function stringMatch(v: unknown, field: string, opts: { principal?: boolean } = {}): StringMatch {
  const r = record(v, field);
  const keys = Object.keys(r);
  if (keys.length !== 1) fail(field, `${show(v)} must have exactly one of exact, prefix, suffix, presence`);
  const k = keys[0]!;
  if (k === 'presence') return { presence: true };
  if (k !== 'exact' && k !== 'prefix' && k !== 'suffix') fail(field, `has unknown match type ${show(k)} (exact, prefix, suffix, presence)`);
  const s = str(r[k], `${field}.${k}`, { required: k === 'exact' });
  // Principals are compared without the scheme (ztunnel strips "spiffe://" from the peer identity). A value with
  // the scheme would never match, which silently weakens a DENY; refuse it instead.
  if (opts.principal && s.startsWith('spiffe://')) {
    fail(`${field}.${k}`, `${show(s)} must not start with "spiffe://" (principals look like "cluster.local/ns/<ns>/sa/<sa>")`);
  }
  return k === 'exact' ? { exact: s } : k === 'prefix' ? { prefix: s } : { suffix: s };
}

function serviceAccountMatch(v: unknown, field: string): ServiceAccountMatch {
  const r = record(v, field);
  return {
    namespace: str(r.namespace, `${field}.namespace`, { required: true }),
    serviceAccount: str(r.serviceAccount, `${field}.serviceAccount`, { required: true }),
  };
}

const MATCH_FIELDS = [
  'namespaces', 'notNamespaces', 'principals', 'notPrincipals', 'serviceAccounts', 'notServiceAccounts',
  'sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps', 'destinationPorts', 'notDestinationPorts',
] as const;

function authorizationMatch(v: unknown, field: string): AuthorizationMatch {
  const r = record(v, field);
  for (const k of Object.keys(r)) {
    if (!(MATCH_FIELDS as readonly string[]).includes(k)) fail(`${field}.${k}`, `is not a known match field (${MATCH_FIELDS.join(', ')})`);
  }
  const out: Record<string, unknown> = {};
  for (const k of MATCH_FIELDS) {
    const items = list(r[k], `${field}.${k}`);
    if (items.length === 0) continue;
    const f = (i: number): string => `${field}.${k}[${i}]`;
    switch (k) {
      case 'namespaces':
      case 'notNamespaces':
        out[k] = items.map((x, i) => stringMatch(x, f(i)));
        break;
      case 'principals':
      case 'notPrincipals':
        out[k] = items.map((x, i) => stringMatch(x, f(i), { principal: true }));
        break;
      case 'serviceAccounts':
      case 'notServiceAccounts':
        out[k] = items.map((x, i) => serviceAccountMatch(x, f(i)));
        break;
      case 'sourceIps':
      case 'notSourceIps':
      case 'destinationIps':
      case 'notDestinationIps':
        out[k] = items.map((x, i) => {
          const c = parseCidr(x as string);
          if (typeof c === 'string') fail(f(i), `${show(x)} ${c}`);
          return x;
        });
        break;
      case 'destinationPorts':
      case 'notDestinationPorts':
        out[k] = items.map((x, i) => port(x, f(i), { allowZero: true }));
        break;
    }
  }
  return out as AuthorizationMatch;
}

export function validateAuthorization(input: AuthorizationInput): Validated<Authorization> {
  return run(() => describePolicy(input), () => {
    const r = record(input, 'policy');
    const name = str(r.name, 'name', { required: true });
    const namespace = str(r.namespace, 'namespace', { required: true });
    if (name.includes('/') || namespace.includes('/')) fail('name', 'and namespace must not contain "/"');
    const scope = oneOf(r.scope, 'scope', SCOPES, 'Global');
    if (r.scope === undefined || r.scope === null || r.scope === '') fail('scope', `is required (${SCOPES.join(', ')})`);
    const action = oneOf(r.action, 'action', ACTIONS, 'Allow');
    if (r.action === undefined || r.action === null || r.action === '') fail('action', `is required (${ACTIONS.join(', ')})`);
    const rules = list(r.rules, 'rules').map((rule, i) =>
      list(rule, `rules[${i}]`).map((clause, j) =>
        list(clause, `rules[${i}][${j}]`).map((m, k) => authorizationMatch(m, `rules[${i}][${j}][${k}]`)),
      ),
    );
    const a: Authorization = { name, namespace, scope, action, rules, dryRun: bool(r.dryRun, 'dryRun') };
    return deepFreeze(a);
  });
}

/** Keys (xDS names) of inputs, best effort for messages about inputs that fail validation. */
export function keyOfWorkloadInput(w: WorkloadInput): string {
  return typeof w?.uid === 'string' && w.uid ? w.uid : `${String(w?.namespace ?? '?')}/${String(w?.name ?? '?')}`;
}
export function keyOfServiceInput(s: ServiceInput): string {
  return keyOfService({ namespace: String(s?.namespace ?? '?'), hostname: String(s?.hostname ?? '?') });
}
export function keyOfPolicyInput(p: AuthorizationInput): string {
  return keyOfPolicy({ namespace: String(p?.namespace ?? '?'), name: String(p?.name ?? '?') });
}
