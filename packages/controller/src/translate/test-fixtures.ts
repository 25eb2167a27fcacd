// Realistic Kubernetes/Istio objects for the translation tests (shapes as the API server returns them).
import type { KubeObject } from '@ambit/api';
import { createContext, type TranslateContext } from './context.js';
import { resolveMeshSettings, type MeshSettings } from './mesh.js';
import { createMemoryIndex, type ObjectIndex } from './object-index.js';

export const MESH: MeshSettings = { clusterId: 'Kubernetes' };

export function namespace(name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export interface PodOptions {
  ip?: string;
  ips?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ready?: boolean;
  serviceAccount?: string;
  node?: string;
  hostNetwork?: boolean;
  phase?: string;
  ports?: { name: string; containerPort: number }[];
  owner?: { kind: string; name: string };
  deleting?: boolean;
}

export function pod(ns: string, name: string, o: PodOptions = {}): KubeObject {
  const ips = o.ips ?? (o.ip ? [o.ip] : []);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name, namespace: ns, uid: `uid-${name}`,
      labels: o.labels ?? {},
      annotations: o.annotations ?? {},
      ...(o.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: o.owner.kind, name: o.owner.name, uid: 'x', controller: true }] } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      nodeName: o.node ?? 'node-1',
      serviceAccountName: o.serviceAccount ?? 'default',
      hostNetwork: o.hostNetwork ?? false,
      containers: [{ name: 'app', image: 'echo', ports: o.ports ?? [] }],
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips.length ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

export interface ServiceOptions {
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: { name?: string; port: number; targetPort?: number | string; appProtocol?: string; protocol?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ipFamilies?: string[];
  type?: string;
  trafficDistribution?: string;
}

export function service(ns: string, name: string, o: ServiceOptions = {}): KubeObject {
  const clusterIPs = o.clusterIPs ?? (o.clusterIP ? [o.clusterIP] : []);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels: o.labels ?? {}, annotations: o.annotations ?? {} },
    spec: {
      type: o.type ?? 'ClusterIP',
      ...(o.selector ? { selector: o.selector } : {}),
      ...(clusterIPs.length ? { clusterIP: clusterIPs[0], clusterIPs } : {}),
      ipFamilies: o.ipFamilies ?? ['IPv4'],
      ports: (o.ports ?? [{ name: 'http', port: 80, targetPort: 8080 }]).map((p) => ({ protocol: 'TCP', ...p })),
      ...(o.trafficDistribution ? { trafficDistribution: o.trafficDistribution } : {}),
    },
  };
}

export function waypointGateway(ns: string, name: string, o: { waypointFor?: string; hostname?: boolean; allowedFrom?: string; className?: string } = {}): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: ns, labels: o.waypointFor ? { 'istio.io/waypoint-for': o.waypointFor } : {} },
    spec: {
      gatewayClassName: o.className ?? 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', ...(o.allowedFrom ? { allowedRoutes: { namespaces: { from: o.allowedFrom } } } : {}) }],
    },
    status: o.hostname === false ? {} : { addresses: [{ type: 'Hostname', value: `${name}.${ns}.svc.cluster.local` }] },
  };
}

export function authorizationPolicy(ns: string, name: string, spec: any, annotations: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: ns, generation: 3, annotations }, spec };
}

export function peerAuthentication(ns: string, name: string, spec: any, created = '2026-01-01T00:00:00Z'): KubeObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace: ns, creationTimestamp: created }, spec };
}

/** A fresh index holding `objects`, and a context over it with the default mesh (or `mesh`). */
export function contextWith(objects: KubeObject[], mesh: MeshSettings = MESH): { index: ObjectIndex; ctx: TranslateContext } {
  const index = createMemoryIndex();
  for (const o of objects) index.set(o);
  return { index, ctx: createContext(index, resolveMeshSettings(mesh)) };
}
