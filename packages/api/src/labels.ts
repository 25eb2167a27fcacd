/** Labels and annotations with Istio's names (spec §5.1). Each is defined here once. */
export const LABELS = Object.freeze({
  dataplaneMode: 'istio.io/dataplane-mode',
  useWaypoint: 'istio.io/use-waypoint',
  useWaypointNamespace: 'istio.io/use-waypoint-namespace',
  waypointFor: 'istio.io/waypoint-for',
  ingressUseWaypoint: 'istio.io/ingress-use-waypoint',
  rev: 'istio.io/rev',
  dryRun: 'istio.io/dry-run',
  gatewayName: 'gateway.networking.k8s.io/gateway-name',
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
  appKubernetesName: 'app.kubernetes.io/name',
  appKubernetesVersion: 'app.kubernetes.io/version',
  app: 'app',
  version: 'version',
  network: 'topology.istio.io/network',
  sidecarInject: 'sidecar.istio.io/inject',
  istioInjection: 'istio-injection',
  serviceAccountOverride: 'gateway.istio.io/service-account',
  nameOverride: 'gateway.istio.io/name-override',
  serviceType: 'networking.istio.io/service-type',
} as const);

export const ANNOTATIONS = Object.freeze({
  redirection: 'ambient.istio.io/redirection',
  bypassInboundCapture: 'ambient.istio.io/bypass-inbound-capture',
  dnsCapture: 'ambient.istio.io/dns-capture',
  waypointInboundBinding: 'ambient.istio.io/waypoint-inbound-binding',
  trafficDistribution: 'networking.istio.io/traffic-distribution',
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
  sidecarStatus: 'sidecar.istio.io/status',
} as const);

/** Values of `istio.io/dataplane-mode`. */
export const DATAPLANE_MODE = Object.freeze({ ambient: 'ambient', none: 'none' } as const);
/** Values of `ambient.istio.io/redirection`. */
export const REDIRECTION = Object.freeze({ enabled: 'enabled', pending: 'pending' } as const);
/** Values of `istio.io/waypoint-for`. */
export const WAYPOINT_FOR = Object.freeze({ service: 'service', workload: 'workload', all: 'all', none: 'none' } as const);
/** GatewayClass of waypoints. */
export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';
/** ConfigMap carrying the mesh root in every namespace, and its key. */
export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CERT_CONFIGMAP_KEY = 'root-cert.pem';
