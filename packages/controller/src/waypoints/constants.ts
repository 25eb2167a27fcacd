// Names the waypoint deployer shares with Istio (pilot/pkg/config/kube/gateway: deploymentcontroller.go,
// gatewayclass.go and the istio-discovery chart's files/waypoint.yaml), so Istio tooling recognises our objects.
import { LABELS, PORTS, WAYPOINT_GATEWAY_CLASS } from '@ambit/api';

export { WAYPOINT_GATEWAY_CLASS };
/** controllerName of the `istio-waypoint` GatewayClass (Istio's ManagedGatewayMeshController). */
export const WAYPOINT_CONTROLLER_NAME = 'istio.io/mesh-controller';
/** `gateway.istio.io/managed` on every generated object; its value is the controller name with `/` -> `-`. */
export const MANAGED_LABEL = 'gateway.istio.io/managed';
export const MANAGED_LABEL_VALUE = WAYPOINT_CONTROLLER_NAME.replaceAll('/', '-');
export const MANAGED_SELECTOR = `${MANAGED_LABEL}=${MANAGED_LABEL_VALUE}`;
export const GATEWAY_CLASS_NAME_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
export const GATEWAY_NAME_LABEL = LABELS.gatewayName;
/** Description Istio gives the class it creates. */
export const WAYPOINT_CLASS_DESCRIPTION = 'The default Istio waypoint GatewayClass';
/** Server-side apply field manager of everything the deployer writes. */
export const FIELD_MANAGER = 'ambit-waypoint-controller';
/** The waypoint listener Istio expects: port 15008, protocol HBONE. */
export const WAYPOINT_LISTENER_PORT = PORTS.hbone;
export const WAYPOINT_LISTENER_PROTOCOL = 'HBONE';
/** Istio's listener message for anything else. */
export const UNEXPECTED_LISTENER_MESSAGE = `Expected a single listener on port ${WAYPOINT_LISTENER_PORT} with protocol "${WAYPOINT_LISTENER_PROTOCOL}"`;
/** Container name Istio uses, so `kubectl logs deploy/<waypoint> -c istio-proxy` keeps working. */
export const WAYPOINT_CONTAINER_NAME = 'istio-proxy';
/** Istio's volume names and mount paths. */
export const TOKEN_VOLUME = 'istio-token';
export const TOKEN_DIR = '/var/run/secrets/tokens';
export const TOKEN_FILE = 'istio-token';
export const TOKEN_AUDIENCE = 'istio-ca';
export const TOKEN_EXPIRATION_SECONDS = 43200;
export const ROOT_CERT_VOLUME = 'istiod-ca-cert';
export const ROOT_CERT_DIR = '/var/run/secrets/istio';
/** Gateway annotations that are instructions to the controller, not metadata to copy onto the objects. */
export const NON_COPIED_ANNOTATIONS: readonly string[] = [
  'kubectl.kubernetes.io/last-applied-configuration',
  LABELS.nameOverride,
  LABELS.serviceAccountOverride,
  'gateway.istio.io/controller-version',
];
export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

/** Gateway API group/version of the kinds we read and write. */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = 'v1';
