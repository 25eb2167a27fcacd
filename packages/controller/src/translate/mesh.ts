// Mesh-wide settings the translation needs, and the few Istio names it uses that @ambit/api does not define yet.
import { DEFAULT_TRUST_DOMAIN } from '@ambit/api';

/** What the controller knows about the mesh it serves (meshConfig + cluster facts). */
export interface MeshSettings {
  /** Cluster id, first segment of every workload uid (`Kubernetes` by default in Istio). */
  clusterId: string;
  /** Network of this cluster's workloads and VIPs; '' is the default network. */
  network?: string;
  /** SPIFFE trust domain; workloads carry '' when it is `cluster.local` (as istiod sends them). */
  trustDomain?: string;
  /** Mesh root namespace: selectorless policies there are mesh-wide. */
  rootNamespace?: string;
  /** Kubernetes cluster domain: Service hostnames are `<name>.<ns>.svc.<clusterDomain>`. */
  clusterDomain?: string;
  /**
   * Send `istio.io/dry-run: "true"` AuthorizationPolicies with dry_run set (istiod's
   * AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY). Off by default, like istiod: dry-run policies are not sent.
   */
  enableDryRunAuthorizationPolicy?: boolean;
}

export type ResolvedMeshSettings = Readonly<Required<MeshSettings>>;

export function resolveMeshSettings(mesh: MeshSettings): ResolvedMeshSettings {
  if (!mesh.clusterId) throw new Error('MeshSettings.clusterId: must not be empty (workload uids start with it)');
  return Object.freeze({
    clusterId: mesh.clusterId,
    network: mesh.network ?? '',
    trustDomain: mesh.trustDomain || DEFAULT_TRUST_DOMAIN,
    rootNamespace: mesh.rootNamespace || 'istio-system',
    clusterDomain: mesh.clusterDomain || 'cluster.local',
    enableDryRunAuthorizationPolicy: mesh.enableDryRunAuthorizationPolicy ?? false,
  });
}

/** Istio names used only by the translation (candidates for @ambit/api LABELS/ANNOTATIONS). */
export const TRANSLATE_NAMES = Object.freeze({
  /** On waypoint/east-west gateway resources; such objects never get a waypoint themselves. */
  gatewayManaged: 'gateway.istio.io/managed',
  gatewayManagedValue: 'istio.io-mesh-controller',
  /** `networking.istio.io/tunnel: http` on a workload: it speaks HBONE natively. */
  tunnel: 'networking.istio.io/tunnel',
  /** EndpointSlice -> owning Service. */
  endpointSliceServiceName: 'kubernetes.io/service-name',
  podTemplateHash: 'pod-template-hash',
} as const);

/** Status condition types istiod writes on AuthorizationPolicy. */
export const CONDITION_TYPES = Object.freeze({
  ztunnelAccepted: 'ZtunnelAccepted',
  waypointAccepted: 'WaypointAccepted',
  /** On Service and ServiceEntry: whether its use-waypoint reference is bound. */
  waypointBound: 'istio.io/WaypointBound',
} as const);
