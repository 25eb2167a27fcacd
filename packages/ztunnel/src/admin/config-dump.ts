import { X509Certificate } from 'node:crypto';
import type { ProxyState } from '../state/store.js';
import type {
  Authorization, AuthorizationMatch, GatewayAddress, Service, StringMatch, Workload,
} from '../state/types.js';
import { isNetworkAddress, keyOfService } from '../state/types.js';

/**
 * `/config_dump` in ztunnel's camelCase shape (spec §5.4), written so that `istioctl ztunnel-config -f dump.json`
 * reads it: where our models are richer or shaped differently (service `vips`/`ports`, gateway addresses,
 * string matches) they are converted to the shapes istioctl's `configdump/api.go` decodes.
 */

export interface CertificateDetail {
  /** base64 of the PEM text, as ztunnel writes it (`x509_to_pem`). */
  readonly pem: string;
  /** Decimal, as ztunnel writes it and istioctl parses it. */
  readonly serialNumber: string;
  /** RFC 3339, seconds. */
  readonly validFrom: string;
  readonly expirationTime: string;
}

export interface CertificateInfo {
  /** `spiffe://td/ns/x/sa/y` */
  readonly identity: string;
  /** `Available`, `Initializing`, or `Unavailable: <why>` (ztunnel's CertState). */
  readonly state: string;
  /** Leaf first. Empty unless Available. */
  readonly certChain: readonly CertificateDetail[];
  readonly rootCerts: readonly CertificateDetail[];
}

const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Details of one PEM certificate for the dump. */
export function describeCertificate(pem: string): CertificateDetail {
  const x = new X509Certificate(pem);
  return {
    pem: Buffer.from(pem).toString('base64'),
    serialNumber: BigInt(`0x${x.serialNumber}`).toString(10),
    validFrom: rfc3339(new Date(x.validFrom)),
    expirationTime: rfc3339(new Date(x.validTo)),
  };
}

/** A certificate entry from what @ambit/pki hands out (`CertifiedKey`: leaf-first chain and roots as PEM). */
export function describeCertifiedKey(
  key: { readonly identity: string; readonly certChainPem: readonly string[]; readonly rootsPem: readonly string[] },
  state = 'Available',
): CertificateInfo {
  return {
    identity: key.identity,
    state,
    certChain: key.certChainPem.map(describeCertificate),
    rootCerts: key.rootsPem.map(describeCertificate),
  };
}

export interface ConfigDumpSources {
  /** The frozen, validated config; shown as `config` (keys that look like secrets are redacted). */
  readonly config: unknown;
  readonly state: ProxyState;
  readonly certificates: () => readonly CertificateInfo[];
  /** The local config file's content (local mode), shown as `staticConfig`. */
  readonly staticConfig?: () => unknown;
  /** Per-pod in-pod proxy state (`Pending`/`Up`...), shown as `workloadState`. */
  readonly workloadState?: () => Record<string, unknown>;
  /** Build information, shown as `version`. */
  readonly version?: Readonly<Record<string, string>>;
}

function gateway(g: GatewayAddress | undefined): { destination: string; hboneMtlsPort: number } | undefined {
  if (!g) return undefined;
  const d = g.destination;
  return {
    destination: isNetworkAddress(d) ? `${d.network}/${d.address}` : `${d.namespace}/${d.hostname}`,
    hboneMtlsPort: g.hboneMtlsPort,
  };
}

function dumpWorkload(w: Workload): Record<string, unknown> {
  return { ...w, waypoint: gateway(w.waypoint), networkGateway: gateway(w.networkGateway) };
}

function dumpService(s: Service, state: ProxyState): Record<string, unknown> {
  const ports: Record<string, number> = {};
  for (const p of s.ports) ports[String(p.servicePort)] = p.targetPort;
  const key = keyOfService(s);
  const endpoints: Record<string, unknown> = {};
  for (const e of state.endpointsOf(s)) {
    endpoints[e.workload.uid] = { workloadUid: e.workload.uid, service: key, status: e.workload.status, port: { ...e.ports } };
  }
  const { loadBalancing, vips, ...rest } = s;
  return {
    ...rest,
    vips: vips.map((v) => `${v.network}/${v.address}`),
    ports,
    endpoints,
    waypoint: gateway(s.waypoint),
    // ztunnel and istioctl call it loadBalancer.
    loadBalancer: loadBalancing,
  };
}

// ztunnel serialises its StringMatch enum with the variant names (`{"Exact": "..."}`), which istioctl decodes.
function dumpStringMatch(m: StringMatch): Record<string, unknown> {
  if ('exact' in m) return { Exact: m.exact };
  if ('prefix' in m) return { Prefix: m.prefix };
  if ('suffix' in m) return { Suffix: m.suffix };
  return { Presence: {} };
}

function dumpMatch(m: AuthorizationMatch): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m };
  for (const k of ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const) {
    const v = m[k];
    if (v) out[k] = v.map(dumpStringMatch);
  }
  return out;
}

function dumpPolicy(p: Authorization): Record<string, unknown> {
  return { ...p, rules: p.rules.map((rule) => rule.map((clause) => clause.map(dumpMatch))) };
}

const SECRET_KEY = /(token|secret|password|passwd|credentials?|authorization|privatekey|keypem)$/i;

/** Copies a JSON-able value, replacing string values of secret-looking keys: the dump is readable by anyone
 * who can port-forward to the admin port. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && typeof v === 'string' && v !== '' ? '<redacted>' : redactSecrets(v);
    }
    return out;
  }
  return value;
}

const byKey = <T>(key: (t: T) => string) => (a: T, b: T): number => key(a).localeCompare(key(b));

export function buildConfigDump(src: ConfigDumpSources): Record<string, unknown> {
  const { state } = src;
  // Sorted so two dumps of the same state diff cleanly.
  const workloads = state.listWorkloads().sort(byKey((w) => w.uid)).map(dumpWorkload);
  const services = state.listServices().sort(byKey(keyOfService)).map((s) => dumpService(s, state));
  const policies = state.listPolicies().sort(byKey((p) => `${p.namespace}/${p.name}`)).map(dumpPolicy);
  const certificates = [...src.certificates()].sort(byKey((c) => c.identity));
  return {
    workloads,
    services,
    policies,
    // ztunnel holds endpoints that arrive before their service here; our store keeps them on the workloads.
    stagedServices: {},
    staticConfig: src.staticConfig?.() ?? { workloads: [], services: [], policies: [] },
    version: src.version ?? { version: 'unknown', nodeVersion: process.version },
    config: redactSecrets(src.config),
    certificates,
    workloadState: src.workloadState?.() ?? {},
  };
}
