// Istio's explicit protocol selection: a Service port declares its protocol by `appProtocol` (wins) or by its name
// (`<protocol>[-<suffix>]`), a ServiceEntry port by `protocol`. The waypoint must not sniff a port declared as an
// opaque protocol: server-first protocols (MySQL, Redis, SMTP, ...) wait for the server's greeting, and Istio's
// default protocolDetectionTimeout (0s) would wait for the client forever.
import type { KubeObject } from './config-objects.js';

export type DeclaredProtocol = 'http' | 'http2' | 'grpc' | 'grpc-web' | 'https' | 'tcp' | 'tls' | 'mongo' | 'mysql' | 'redis' | 'udp';

const KNOWN: ReadonlyMap<string, DeclaredProtocol> = new Map<string, DeclaredProtocol>([
  ['http', 'http'], ['http_proxy', 'http'], ['http2', 'http2'], ['h2c', 'http2'], ['kubernetes.io/h2c', 'http2'],
  ['grpc', 'grpc'], ['grpc-web', 'grpc-web'], ['https', 'https'], ['kubernetes.io/ws', 'http'], ['kubernetes.io/wss', 'https'],
  ['tcp', 'tcp'], ['tls', 'tls'], ['mongo', 'mongo'], ['mysql', 'mysql'], ['redis', 'redis'], ['udp', 'udp'],
]);

/** Protocols proxied as opaque bytes (no HTTP parsing): what Istio's sidecars and waypoints do with them. */
const OPAQUE: ReadonlySet<DeclaredProtocol> = new Set<DeclaredProtocol>(['https', 'tcp', 'tls', 'mongo', 'mysql', 'redis']);

/** The protocol a Kubernetes Service port declares, or undefined (auto: detected from the client's first bytes). */
export function declaredServicePortProtocol(port: { name?: string; appProtocol?: string }): DeclaredProtocol | undefined {
  if (typeof port.appProtocol === 'string' && port.appProtocol !== '') {
    const byApp = KNOWN.get(port.appProtocol.toLowerCase());
    if (byApp) return byApp;
  }
  if (typeof port.name !== 'string') return undefined;
  const lower = port.name.toLowerCase();
  // grpc-web is a protocol of its own, not grpc with a suffix.
  if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return 'grpc-web';
  return KNOWN.get(lower.split('-')[0]!);
}

/** A ServiceEntry port's `protocol` (upper-case in Istio's API; any case accepted). */
export function declaredServiceEntryPortProtocol(port: { protocol?: string }): DeclaredProtocol | undefined {
  return typeof port.protocol === 'string' ? KNOWN.get(port.protocol.toLowerCase()) : undefined;
}

export function isOpaqueProtocol(p: DeclaredProtocol | undefined): boolean {
  return p !== undefined && OPAQUE.has(p);
}

/**
 * What a waypoint needs of a Kubernetes Service: its name and the declared protocol of each port, as a configuration
 * object (spec.ports with name, port, appProtocol). Undefined when no TCP port declares an opaque protocol: then the
 * waypoint detects every port's protocol and needs nothing of the Service beyond the workload API.
 */
export function waypointServiceView(svc: KubeObject): KubeObject | undefined {
  const ports = (Array.isArray(svc.spec?.ports) ? svc.spec.ports : []) as { name?: string; port?: number; appProtocol?: string; protocol?: string }[];
  const opaque = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP' && Number.isInteger(p.port) && isOpaqueProtocol(declaredServicePortProtocol(p)));
  if (opaque.length === 0) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace ?? 'default', ...(svc.metadata.generation !== undefined ? { generation: svc.metadata.generation } : {}) },
    spec: { ports: opaque.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })) },
  };
}
